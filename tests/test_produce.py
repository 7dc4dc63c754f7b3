import itertools
import json
import os
import pty
import resource
import subprocess
import sys

import pytest

from orders_tui.cli.main import main
from orders_tui.domain.codec import decode
from orders_tui.domain.order import MAX_PRICE, MIN_PRICE
from tests.kafka_helpers import read_all

pytestmark = pytest.mark.kafka


def _produce(settings, *flags: str) -> list[str]:
    return [
        "produce", "-b", settings.bootstrap_servers, "--topic", settings.topic,
        "--dlq-topic", settings.dlq_topic, *flags,
    ]  # fmt: skip


def test_produce_1000_orders_land_on_the_topic_as_avro(settings, capsys):
    assert main([*_produce(settings, "-n", "1000", "--seed", "7", "--json")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["delivered"] == 1000
    assert summary["failed"] == 0
    assert abs(summary["rate"] - 1000 / summary["seconds"]) <= 0.01 * summary["rate"]

    records = read_all(settings.bootstrap_servers, settings.topic, expected=1000)
    assert len(records) == 1000
    orders = [decode(r.value()) for r in records]
    assert [r.key().decode() for r in records] == [o.orderId for o in orders]
    assert all(MIN_PRICE <= o.price <= MAX_PRICE for o in orders)
    assert len({o.orderId for o in orders}) == 1000

    # The same seed gives the same orders.
    assert main([*_produce(settings, "-n", "1000", "--seed", "7", "--json")]) == 0
    again = read_all(settings.bootstrap_servers, settings.topic, expected=2000)
    by_id = {}
    for record in again:
        by_id.setdefault(record.key(), []).append(decode(record.value()))
    assert len(by_id) == 1000
    assert all(first == second for first, second in by_id.values())


def test_produce_prints_a_summary_line(settings, capsys):
    assert main(_produce(settings, "-n", "3")) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith(f"delivered 3, failed 0 to {settings.topic}")


def test_produce_creates_missing_topics(bootstrap, capsys):
    import uuid

    from confluent_kafka.admin import AdminClient

    topic, dlq = f"fresh-{uuid.uuid4().hex[:6]}", f"fresh-dlq-{uuid.uuid4().hex[:6]}"
    argv = ["produce", "-b", bootstrap, "--topic", topic, "--dlq-topic", dlq, "-n", "2"]
    assert main([*argv, "--partitions", "2"]) == 0
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10).topics
    assert len(topics[topic].partitions) == 2
    assert len(topics[dlq].partitions) == 2


def test_rate_is_held_by_the_records_timestamps(settings, capsys):
    """31 orders at 10/s span 3.0 s on the broker (within 5 %), evenly: no burst, no
    stall, whether or not delivery reports arrive in between."""
    assert main(_produce(settings, "-n", "31", "--rate", "10", "--json")) == 0
    records = read_all(settings.bootstrap_servers, settings.topic, expected=31)
    stamps = sorted(r.timestamp()[1] for r in records)  # ms, set when each was produced
    assert len(stamps) == 31
    assert 2850 <= stamps[-1] - stamps[0] <= 3150
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert max(gaps) <= 150 and min(gaps) >= 50, gaps


def _process_cpu(argv: list[str]) -> float:
    """CPU seconds (user + system) of `orders-tui` run to its end as a process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-m", "orders_tui", *argv], check=True, capture_output=True,
                   timeout=60)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def test_a_paced_run_costs_about_what_its_orders_cost_not_a_core(settings):
    """`--rate 3000` sent one order at a time, with sub-millisecond waits between: 4.07 s
    of CPU for 5 s of sending (81 % of a core). Paced in ticks, 9,000 orders over 3 s cost
    little more than the same 9,000 sent at once. Process CPU time, with a wide margin
    (30 % of a core over the 3 s; measured: 0.05 s more, and 2.8 s more before)."""
    at_once = _process_cpu(_produce(settings, "-n", "9000"))
    paced = _process_cpu(_produce(settings, "-n", "9000", "--rate", "3000"))
    assert paced - at_once < 0.3 * 3.0, (paced, at_once)


def test_refused_orders_are_counted_and_exit_1_naming_the_first_error(settings, capsys):
    """Orders the broker refuses (over the topic's max.message.bytes) are counted as
    failed, without a Python call per delivered order: the counts match what the topic
    holds, and the exit code and stderr say so."""
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

    resource = ConfigResource(
        ConfigResource.Type.TOPIC, settings.topic,
        incremental_configs=[ConfigEntry("max.message.bytes", "60",
                                         incremental_operation=AlterConfigOpType.SET)],
    )  # fmt: skip
    admin = AdminClient({"bootstrap.servers": settings.bootstrap_servers})
    for future in admin.incremental_alter_configs([resource]).values():
        future.result()
    assert main(_produce(settings, "-n", "400", "--seed", "3", "--json")) == 1
    out, err = capsys.readouterr()
    summary = json.loads(out)
    on_topic = len(read_all(settings.bootstrap_servers, settings.topic))
    assert summary["delivered"] == on_topic
    assert summary["failed"] == 400 - on_topic > 0
    assert err.startswith(f"orders-tui: {summary['failed']} orders failed: Broker: Message")


def _run_on_a_terminal(argv: list[str]) -> tuple[str, str]:
    """Runs orders-tui with stderr on a pseudo-terminal; returns (stdout, what the
    terminal received)."""
    controller, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "orders_tui", *argv],
                               stdout=subprocess.PIPE, stderr=terminal, text=True)  # fmt: skip
    os.close(terminal)
    received = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the process exited and closed its end
            break
        if not chunk:
            break
        received += chunk
    os.close(controller)
    out = process.communicate(timeout=60)[0]
    assert process.returncode == 0
    return out, received.decode(errors="replace")


def test_a_progress_bar_shows_on_a_terminal_only_and_json_is_one_object(settings):
    # 1.5 s at 100/s: the bar redraws several times while the orders go out.
    out, terminal = _run_on_a_terminal(_produce(settings, "-n", "150", "--rate", "100"))
    assert "producing" in terminal and "/150" in terminal
    assert out.startswith("delivered 150, failed 0")
    out, terminal = _run_on_a_terminal(_produce(settings, "-n", "150", "--rate", "300",
                                                "--json"))  # fmt: skip
    assert "producing" not in terminal
    summary = json.loads(out)
    assert (summary["delivered"], summary["failed"]) == (150, 0)
    assert 0.4 < summary["seconds"] < 3
    assert summary["rate"] == pytest.approx(150 / summary["seconds"], rel=0.05)
    piped = subprocess.run([sys.executable, "-m", "orders_tui",
                            *_produce(settings, "-n", "150", "--rate", "300")],
                           capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert "producing" not in piped.stderr  # stderr piped: no bar
