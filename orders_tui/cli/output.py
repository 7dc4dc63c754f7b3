"""What the commands say on stderr, and how a command's code is loaded."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orders_tui.kafka.config import KafkaSettings

PROG = "orders-tui"


def say(line: str) -> None:
    """One line on stderr, for what a person running headless should know. It may quote
    what others chose (a member id, a broker's message): control characters are shown,
    never sent to the terminal."""
    from orders_tui.visible import visible

    print(f"{PROG}: {visible(line)}", file=sys.stderr, flush=True)


def lazy(module: str, name: str) -> Callable[[argparse.Namespace, KafkaSettings], int]:
    """A command's run function, imported when it runs: --help and the other commands do
    not load the Kafka readers and Avro decoders it needs (60 ms)."""

    def run(args: argparse.Namespace, settings: KafkaSettings) -> int:
        return getattr(importlib.import_module(module), name)(args, settings)

    return run
