"""`orders-tui retries`: the parser; what it runs is in retry_commands, imported when it
runs."""

from __future__ import annotations

import argparse

from orders_tui.cli.options import add_connection_flags, add_group_retry_flags
from orders_tui.cli.output import lazy


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "retries",
        help="what waits on a group's retry topics (and on the old shared ones)",
        description="Records a consumer group has not consumed yet on its retry topics "
        "(<topic>-<group>-retry-N) and on the retry topics every group shared before "
        "(<topic>-retry-N), which the group's next consume drains. Reads committed "
        "offsets; joins nothing.",
    )
    add_group_retry_flags(p, "the group's")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=lazy("orders_tui.cli.retry_commands", "run_retries"))
    add_connection_flags(p, top_level=False)
