"""orders-tui: a terminal dashboard for Kafka order pipelines."""

__version__ = "0.1.0"
