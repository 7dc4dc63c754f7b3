"""The schema registry, for real: Apicurio Registry (scripts/registry-local) and the real
broker. Records are written and read back with confluent-kafka's own Avro serializer and
deserializer, so what orders-tui writes and reads is checked by code that is not its own."""

from __future__ import annotations

import copy
import io
import json
import struct
import threading
import time
from dataclasses import replace

import fastavro
import pytest
from confluent_kafka import Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from orders_tui.cli.consume import format_summary
from orders_tui.domain.retry import Backoff
from orders_tui.domain.schema import order_schema
from orders_tui.kafka.config import RegistrySettings
from orders_tui.kafka.dlq import DlqEntry
from orders_tui.kafka.engine_config import EngineConfig
from orders_tui.kafka.pipeline import Finished, Pipeline
from tests.expectations import dead_lettered
from tests.kafka_helpers import cli, read_all

pytestmark = pytest.mark.kafka

V2 = copy.deepcopy(order_schema())
V2["fields"].append({"name": "currency", "type": "string", "default": "EUR"})
REFUND = {
    "type": "record", "name": "Refund", "namespace": "billing",
    "fields": [{"name": "orderId", "type": "string"}, {"name": "product", "type": "string"},
               {"name": "price", "type": "long"}, {"name": "reason", "type": "string"}],
}  # fmt: skip


def with_registry(settings, url: str):
    return replace(settings, registry=RegistrySettings(url))


def send(settings, values: list[tuple[str, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for key, value in values:
        producer.produce(settings.topic, value, key.encode())
    assert producer.flush(30) == 0


def serializer(url: str, schema: dict, subject: str | None = None) -> AvroSerializer:
    config = {"auto.register.schemas": True}
    if subject is not None:
        config["subject.name.strategy"] = lambda _ctx, _name: subject
    return AvroSerializer(SchemaRegistryClient({"url": url}), json.dumps(schema), conf=config)


def written(settings, ser: AvroSerializer, records: list[dict]) -> list[tuple[str, bytes]]:
    context = SerializationContext(settings.topic, MessageField.VALUE)
    return [(r["orderId"], ser(r, context)) for r in records]


def read_back(settings, url: str) -> dict[str, dict]:
    """Every order on the topic, decoded by confluent-kafka's deserializer (reader schema:
    the writer's), by orderId."""
    deserializer = AvroDeserializer(SchemaRegistryClient({"url": url}))
    context = SerializationContext(settings.topic, MessageField.VALUE)
    return {
        record["orderId"]: record
        for record in (deserializer(m.value(), context)
                       for m in read_all(settings.bootstrap_servers, settings.topic))
    }  # fmt: skip


def orders(prefix: str, count: int, **extra: object) -> list[dict]:
    """Orders the rules process at once (prices 100-900), with fields of their own."""
    return [{"orderId": f"{prefix}-{i}", "product": f"{prefix} product {i}",
             "price": 100.0 + 8 * i, **extra} for i in range(count)]  # fmt: skip


def run(settings, group, **flags) -> tuple[Pipeline, list[Finished]]:
    finished: list[Finished] = []
    config = EngineConfig(group=group, backoff=Backoff(base=0.05, cap=0.2))
    return Pipeline(settings, config, on_finished=finished.extend, **flags), finished


def test_v1_and_v2_producers_interleaved_are_all_processed_with_their_fields(
    settings, group, registry_url
):
    produced = cli(
        settings, "produce", "-n", "30", "--seed", "5", "--schema-registry", registry_url
    )
    assert produced.returncode == 0, produced.stderr
    assert f"orders-value v1 at {registry_url}".replace("orders-value", settings.topic + "-value") \
        in produced.stderr  # fmt: skip
    send(
        settings, written(settings, serializer(registry_url, V2), orders("v2", 30, currency="USD"))
    )
    again = cli(settings, "produce", "-n", "30", "--seed", "6", "--schema-registry", registry_url)
    assert again.returncode == 0, again.stderr

    expected = read_back(settings, registry_url)
    assert len(expected) == 90 and sum(r.get("currency") == "USD" for r in expected.values()) == 30
    pipeline, finished = run(with_registry(settings, registry_url), group)
    stats = pipeline.run(idle_exit=2.0)

    seen = {f.order_id: f for f in finished}
    assert len(finished) == len(seen) == 90  # each once
    for order_id, record in expected.items():
        assert (seen[order_id].product, seen[order_id].price) == (record["product"],
                                                                   record["price"])  # fmt: skip
    assert "deserialization" not in stats.dead_lettered_by_type
    dead = {f.order_id for f in finished if f.outcome == "dead_lettered"}
    assert dead == {i for i, r in expected.items() if dead_lettered(_order(r))}
    subject = f"{settings.topic}-value"
    counts = {label.partition(" (id ")[0]: n for label, n in stats.schemas_seen.items()}
    assert counts == {f"{subject} v1": 60, f"{subject} v2": 30}
    summary = format_summary(stats.summary(time.time())).splitlines()
    assert summary[-2].startswith(f"schemas: {subject} v1 (id ") and summary[-2].endswith(" 30")


def _order(record: dict):
    from orders_tui.domain.order import Order

    return Order(record["orderId"], record["product"], record["price"])


def test_an_incompatible_schema_is_refused_at_check_and_at_registration(settings, registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    subject = f"{settings.topic}-value"
    assert cli(settings, "schema", "register", "--schema-registry", registry_url).returncode == 0
    client.set_compatibility(subject, "BACKWARD")
    breaking = copy.deepcopy(order_schema())
    breaking["fields"].append({"name": "note", "type": "string"})  # no default: old data lacks it
    candidate = settings_file = f"/tmp/{settings.topic}-note.avsc"
    with open(settings_file, "w") as out:
        json.dump(breaking, out)

    check = cli(settings, "schema", "check", "--file", candidate, "--schema-registry", registry_url)
    assert check.returncode == 1, check.stderr
    assert check.stdout.startswith(f"incompatible: {candidate} breaks the BACKWARD rule of "
                                   f"{subject} (checked against version 1)")  # fmt: skip
    assert "note" in check.stdout  # the registry's reason names the field
    registered = cli(settings, "schema", "register", "--file", candidate,
                     "--schema-registry", registry_url)  # fmt: skip
    assert registered.returncode == 1
    assert f"refused the schema under subject {subject}" in registered.stderr
    assert [v for v in client.get_versions(subject)] == [1]  # nothing registered

    evolved = cli(settings, "schema", "check", "--file", _write(V2, settings.topic),
                  "--schema-registry", registry_url)  # fmt: skip
    assert evolved.returncode == 0 and evolved.stdout.startswith("compatible: ")


def test_produce_refused_by_the_subjects_rule_sends_nothing(settings, registry_url):
    client = SchemaRegistryClient({"url": registry_url})
    subject = f"{settings.topic}-value"
    priced_as_text = copy.deepcopy(order_schema())
    priced_as_text["fields"][2]["type"] = "string"
    client.register_schema(subject, Schema(json.dumps(priced_as_text), "AVRO"))
    client.set_compatibility(subject, "BACKWARD")

    produced = cli(settings, "produce", "-n", "5", "--schema-registry", registry_url)
    assert produced.returncode == 1
    assert produced.stderr.count("\n") == 1 and "Traceback" not in produced.stderr
    assert f"refused the schema under subject {subject}" in produced.stderr
    assert read_all(settings.bootstrap_servers, settings.topic) == []


def _write(schema: dict, name: str) -> str:
    path = f"/tmp/{name}-{schema['name']}-{len(schema['fields'])}.avsc"
    with open(path, "w") as out:
        json.dump(schema, out)
    return path


def test_another_record_type_and_an_unknown_id_are_dead_lettered_naming_them(
    settings, group, registry_url
):
    refunds = serializer(registry_url, REFUND, subject=f"{settings.topic}-refunds")
    refund = [{"orderId": "r-1", "product": "Lamp", "price": 12, "reason": "broken"}]
    unknown_id = 10**6 + 7
    stray = struct.pack(">bI", 0, unknown_id) + b"\x02x\x02y" + struct.pack("<d", 9.0)
    sent = [*written(settings, refunds, refund), ("u-1", stray)]
    send(settings, sent + written(settings, serializer(registry_url, V2), orders("ok", 3)))

    pipeline, finished = run(with_registry(settings, registry_url), group)
    pipeline.run(idle_exit=2.0)
    assert sorted(f.order_id for f in finished if f.outcome == "processed") == [
        "ok-0", "ok-1", "ok-2"
    ]  # fmt: skip
    entries = {e.key.decode(): e for e in map(DlqEntry.from_message,
                                               read_all(settings.bootstrap_servers,
                                                        settings.dlq_topic, 2))}  # fmt: skip
    assert {k: e.value for k, e in entries.items()} == dict(sent)  # byte for byte
    refund_id = SchemaRegistryClient({"url": registry_url}).get_latest_version(
        f"{settings.topic}-refunds").schema_id  # fmt: skip
    assert entries["r-1"].error_type == entries["u-1"].error_type == "deserialization"
    assert (f"schema id {refund_id}, subject {settings.topic}-refunds v1): written as record "
            "'billing.Refund'") in entries["r-1"].reason  # fmt: skip
    assert f"schema id {unknown_id}, which the schema registry at {registry_url} does not " \
        "know" in entries["u-1"].reason  # fmt: skip

    shown = cli(settings, "dlq", "--json", "--schema-registry", registry_url)
    lines = {
        json.loads(line)["key"]["text"]: json.loads(line) for line in shown.stdout.splitlines()
    }
    assert lines["r-1"]["schema"] == {"id": refund_id, "subject": f"{settings.topic}-refunds",
                                      "version": 1}  # fmt: skip
    assert lines["u-1"]["schema"] == {"id": unknown_id, "subject": None, "version": None}


def test_a_registry_stopped_mid_run_dead_letters_nothing_and_its_records_wait(
    settings, group, own_registry
):
    url = own_registry.url
    client = SchemaRegistryClient({"url": url})
    subject = f"{settings.topic}-value"

    v1_id = client.register_schema(subject, Schema(json.dumps(order_schema()), "AVRO"))
    v2_id = client.register_schema(subject, Schema(json.dumps(V2), "AVRO"))
    send(settings, [(r["orderId"], _framed(v1_id, order_schema(), r)) for r in orders("v1", 20)])
    reports: list[str] = []
    pipeline, finished = run(with_registry(settings, url), group, on_report=reports.append)
    worker = threading.Thread(target=pipeline.run, daemon=True)
    worker.start()
    try:
        _wait(lambda: len(finished) == 20, "the v1 orders processed")
        own_registry.stop()
        send(settings, [(r["orderId"], _framed(v2_id, V2, r))
                        for r in orders("v2", 20, currency="USD")])  # fmt: skip
        _wait(lambda: any("does not answer" in r for r in reports), "the outage reported")
        time.sleep(2.5)  # two more rounds of asking
        assert len(finished) == 20  # the v2 orders wait...
        assert read_all(settings.bootstrap_servers, settings.dlq_topic) == []  # ...undead

        own_registry.start()  # with what it held
        _wait(lambda: len(finished) == 40, "the v2 orders processed once it answers")
        assert any("answers again" in r for r in reports)
    finally:
        pipeline.stop()
        worker.join(30)
    assert sorted(f.order_id for f in finished) == sorted(
        [f"v1-{i}" for i in range(20)] + [f"v2-{i}" for i in range(20)]
    )
    assert {f.outcome for f in finished} == {"processed"}
    assert read_all(settings.bootstrap_servers, settings.dlq_topic) == []
    assert pipeline.stats.registry_outages == 1


def _framed(schema_id: int, schema: dict, record: dict) -> bytes:
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(schema), record)
    return struct.pack(">bI", 0, schema_id) + body.getvalue()


def _wait(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out: {what}"
        time.sleep(0.1)
