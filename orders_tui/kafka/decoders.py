"""The decoder a command reads orders with: our own schema's, or every writer schema the
registry holds. Apart from config.py, which the registry's client imports."""

from __future__ import annotations

from orders_tui.domain.codec import Decoder
from orders_tui.kafka.config import KafkaSettings


def make_decoder(settings: KafkaSettings, schema_id: int) -> Decoder:
    """The decoder a command reads orders with. Without a registry, `schema_id` is the
    one Confluent id read, as our own schema's; with one, every id's writer schema is
    fetched from it (once), `schema_id` meaning nothing there."""
    registry = settings.registry
    if registry is None:
        return Decoder((schema_id,))
    from orders_tui.kafka.registry import LOOKUP_TIMEOUT, Registry  # 0.2 s to import

    subject = registry.subject_for(settings.topic)  # named first where an id has several
    return Decoder((), Registry(registry, timeout=LOOKUP_TIMEOUT, retries=0, subject=subject))
