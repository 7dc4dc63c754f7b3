"""Where the Order schema lives, installed or in the source tree."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

SCHEMA_NAME = "order.avsc"


def schema_path() -> Path:
    """The wheel carries the schema in the package; a source checkout has it at the top."""
    packaged = resources.files("orders_tui") / "schemas" / SCHEMA_NAME
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_NAME


@cache
def order_schema() -> dict:
    return json.loads(schema_path().read_text(encoding="utf-8"))
