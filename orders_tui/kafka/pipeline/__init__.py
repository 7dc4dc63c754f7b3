"""The pipeline, a core loop (`loop`) and the roles it drives, one module each."""

from orders_tui.kafka.pipeline.drain import DrainResult
from orders_tui.kafka.pipeline.loop import Pipeline
from orders_tui.kafka.pipeline.records import Finished
from orders_tui.kafka.pipeline.tuning import CONSUMER_DEFAULTS

__all__ = ["CONSUMER_DEFAULTS", "DrainResult", "Finished", "Pipeline"]
