"""Where the schemas live, installed or in the source tree."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path

SCHEMA_NAME = "order.avsc"


STATUS_SCHEMA_NAME = "member_status.avsc"


def schema_path(name: str = SCHEMA_NAME) -> Path:
    """The wheel carries the schemas in the package; a source checkout has them at the
    top."""
    packaged = resources.files("orders_tui") / "schemas" / name
    if packaged.is_file():
        return Path(str(packaged))
    return Path(__file__).resolve().parents[2] / "schemas" / name


@cache
def order_schema() -> dict:
    return json.loads(schema_path().read_text(encoding="utf-8"))


@cache
def member_status_schema() -> dict:
    return json.loads(schema_path(STATUS_SCHEMA_NAME).read_text(encoding="utf-8"))
