"""Authentication and authorization failures against the real broker's SASL/PLAIN
listener (with ACLs): each says what it is and what to check, in one line, and never
how to start a broker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
)

from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.producer import OrderProducer
from orders_tui.kafka.topics import ensure_topics
from tests.conftest import SASL_PASSWORD, SASL_USER

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def names(bootstrap: str) -> dict[str, str]:
    """Resources alice may not touch, set up as the broker's super user (plaintext)."""
    run = uuid.uuid4().hex[:8]
    names = {
        "hidden": f"hidden-{run}",  # alice may not even describe it
        "readonly": f"readonly-{run}",  # alice may describe it, not write to it
        "group": f"denied-{run}",
        "txgroup": f"txdenied-{run}",
    }
    ensure_topics(KafkaSettings(bootstrap), [names["hidden"], names["readonly"]])

    def acl(kind, name, operation, permission, pattern=ResourcePatternType.LITERAL):
        return AclBinding(kind, name, pattern, f"User:{SASL_USER}", "*", operation, permission)

    deny, allow = AclPermissionType.DENY, AclPermissionType.ALLOW
    bindings = [
        acl(ResourceType.TOPIC, names["hidden"], AclOperation.ALL, deny),
        acl(ResourceType.TOPIC, names["readonly"], AclOperation.WRITE, deny),
        acl(ResourceType.TOPIC, names["readonly"], AclOperation.DESCRIBE, allow),
        acl(ResourceType.GROUP, names["group"], AclOperation.ALL, deny),
        acl(ResourceType.TRANSACTIONAL_ID, f"orders-tui-{names['txgroup']}", AclOperation.ALL,
            deny, ResourcePatternType.PREFIXED),
    ]  # fmt: skip
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_acls(bindings).values():
        future.result()
    time.sleep(0.5)  # ACLs reach the authorizer through the metadata log
    return names


def cli(sasl_bootstrap: str, *args: str, password: str = SASL_PASSWORD, mechanism="PLAIN"):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "orders_tui", *args, "-b", sasl_bootstrap,
         "-X", "security.protocol=SASL_PLAINTEXT", "-X", f"sasl.mechanism={mechanism}",
         "-X", f"sasl.username={SASL_USER}", "-X", f"sasl.password={password}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    result.seconds = time.monotonic() - started
    return result


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "kafka-local" not in lines[0] and "docker" not in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize(
    ("password", "mechanism", "culprit"),
    [
        ("wrong-password", "PLAIN", "Invalid username or password"),
        (SASL_PASSWORD, "SCRAM-SHA-256", "Unsupported SASL mechanism"),
    ],
)
def test_a_refused_login_says_so_and_what_to_check(sasl_bootstrap, password, mechanism, culprit):
    result = cli(sasl_bootstrap, "produce", "-n", "1", password=password, mechanism=mechanism)
    line = one_line(result)
    assert line.startswith(f"orders-tui: Kafka at {sasl_bootstrap} refused to authenticate us")
    assert culprit in line
    assert "sasl.username and sasl.password" in line and f"({mechanism})" in line
    assert password not in line
    assert result.seconds < 10  # not the unreachable-broker timeout


def test_a_failed_tls_handshake_points_at_the_protocol_and_the_ca(bootstrap):
    """TLS spoken to the plaintext listener: the handshake fails at once, and the line
    names what to check rather than how to start a broker."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "orders_tui", "produce", "-n", "1", "-b", bootstrap,
         "-X", "security.protocol=SSL"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    line = one_line(result)
    assert "SSL" in line  # librdkafka's words vary with who hangs up first
    assert "security.protocol matches the listener" in line and "ssl.ca.location" in line
    assert time.monotonic() - started < 10


def test_a_topic_we_may_not_describe_names_the_acl(sasl_bootstrap, names):
    line = one_line(cli(sasl_bootstrap, "produce", "-n", "1", "--topic", names["hidden"]))
    assert f"not authorized to describe topic '{names['hidden']}' as User:alice" in line
    assert f"--operation Describe --topic {names['hidden']}" in line


def test_a_topic_we_may_not_write_names_the_acl(sasl_bootstrap, names):
    result = cli(sasl_bootstrap, "produce", "-n", "2", "--topic", names["readonly"])
    assert result.returncode == 1
    assert f"not authorized to write topic '{names['readonly']}' as User:alice" in result.stderr
    assert f"--operation Write --topic {names['readonly']}" in result.stderr


def test_a_group_we_may_not_join_stops_the_consumer_with_one_line(sasl_bootstrap, names):
    result = cli(sasl_bootstrap, "consume", "--headless", "--group", names["group"],
                 "--idle-exit", "30")  # fmt: skip
    assert result.stderr.strip().splitlines()[-1] == (
        f"orders-tui: not authorized to read consumer group '{names['group']}' as User:alice "
        "(FindCoordinator response error: Group authorization failed.): ask for an ACL "
        "allowing it, e.g. kafka-acls --add --allow-principal User:alice --operation Read "
        f"--group {names['group']}"
    )
    assert result.returncode == 1
    assert result.seconds < 20  # stopped, not idle-exited after 30 s


def test_a_transactional_id_we_may_not_use_names_the_acl_and_the_way_out(sasl_bootstrap, names):
    result = cli(sasl_bootstrap, "consume", "--headless", "--group", names["txgroup"],
                 "--idle-exit", "30")  # fmt: skip
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 1
    assert f"not authorized to write transactional id 'orders-tui-{names['txgroup']}-" in last
    assert "--transactional-id" in last and last.endswith("or run with --at-least-once")


def test_the_verbose_librdkafka_log_never_shows_the_password(sasl_bootstrap):
    secret = "alice-secret-not-in-logs"
    result = cli(sasl_bootstrap, "-v", "-X", "debug=conf,security", "produce", "-n", "1",
                 password=secret)  # fmt: skip
    assert result.returncode == 1
    assert "SASL authentication error" in result.stderr  # the log was on
    assert secret not in result.stderr


def test_a_status_topic_we_may_not_use_leaves_the_pipeline_consuming(sasl_bootstrap, bootstrap):
    """The fleet status is a courtesy: without the ACLs for it the pipeline consumes
    (one line says what is missing) and exits drained."""
    run = uuid.uuid4().hex[:8]
    settings = KafkaSettings(bootstrap, f"open-{run}", f"open-dlq-{run}")
    ensure_topics(settings, [settings.topic, settings.dlq_topic])
    assert OrderProducer(settings, seed=71).produce(100).delivered == 100
    denied = f"status-denied-{run}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_acls([AclBinding(
        ResourceType.TOPIC, denied, ResourcePatternType.LITERAL, f"User:{SASL_USER}", "*",
        AclOperation.ALL, AclPermissionType.DENY,
    )]).values():  # fmt: skip
        future.result()
    time.sleep(0.5)  # ACLs reach the authorizer through the metadata log
    result = cli(sasl_bootstrap, "consume", "--headless", "--topic", settings.topic,
                 "--dlq-topic", settings.dlq_topic, "--group", f"open-{run}",
                 "--status-topic", denied, "--idle-exit", "2", "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["consumed"] == 100
    said = [line for line in result.stderr.splitlines() if "fleet status" in line]
    assert len(said) == 1 and f"'{denied}' as User:alice" in said[0], result.stderr
    assert said[0].endswith("consuming without it")
