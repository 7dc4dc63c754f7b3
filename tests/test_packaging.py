"""The wheel: an installed orders-tui finds its schemas without the source tree."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from hatchling.builders.wheel import WheelBuilder

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_the_schemas_and_runs_without_the_source_tree(tmp_path):
    [wheel] = WheelBuilder(str(ROOT)).build(directory=str(tmp_path / "dist"), versions=["standard"])
    with zipfile.ZipFile(wheel) as archive:
        for name in ("order.avsc", "member_status.avsc"):
            packaged = archive.read(f"orders_tui/schemas/{name}")
            assert packaged == (ROOT / "schemas" / name).read_bytes()
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
                    "--target", str(site), wheel], check=True, timeout=120)  # fmt: skip
    elsewhere = tmp_path / "elsewhere"  # no schemas/ here or above
    elsewhere.mkdir()
    found = subprocess.run(
        [sys.executable, "-c", "import orders_tui.domain.schema as s; "
         "print(s.schema_path()); print(s.order_schema()['name'])"],
        cwd=elsewhere, env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout.split()  # fmt: skip
    assert found == [str(site / "orders_tui" / "schemas" / "order.avsc"), "Order"]
