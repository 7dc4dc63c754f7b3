"""The `--outcomes` log: one JSON line per finished order, appended across runs."""

import json

from orders_tui.cli.consume import open_outcome_log as _open_outcome_log
from orders_tui.kafka.pipeline import Finished


def test_a_line_cut_short_by_a_killed_run_does_not_spoil_the_next_record(tmp_path):
    log = tmp_path / "outcomes.jsonl"
    log.write_text('{"partition": 0, "offset": 1}\n{"partition": 0, "off')
    write = _open_outcome_log(str(log))
    write([Finished(0, 2, "id-2", "processed", 1, 12.5, "")])
    lines = log.read_text().split("\n")
    assert lines[1] == '{"partition": 0, "off'
    assert json.loads(lines[2])["order_id"] == "id-2"
    assert lines[3] == ""
