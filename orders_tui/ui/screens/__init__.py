"""Screens over the dashboard: a DLQ entry, help."""
