"""Shared fixtures. Tests that touch Kafka use a real Apache Kafka broker, started once a
session by scripts/kafka-local on free loopback ports (or the one named by
ORDERS_TUI_TEST_BOOTSTRAP), and each test gets topics of its own."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orders_tui.kafka.config import KafkaSettings
from orders_tui.kafka.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[1]
KAFKA_LOCAL = ROOT / "scripts" / "kafka-local"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port_pair(count: int = 3) -> int:
    """A port whose next `count - 1` are free too: for each node, the broker, its
    controller, its SASL listener."""
    for _ in range(100):
        port = random.randrange(20000, 40000)
        if all(_port_free(port + i) for i in range(count)):
            return port
    raise RuntimeError(f"no {count} free neighbouring ports on 127.0.0.1")


@pytest.fixture(scope="session")
def bootstrap(tmp_path_factory: pytest.TempPathFactory) -> str:
    given = os.environ.get("ORDERS_TUI_TEST_BOOTSTRAP")
    if given:
        yield given
        return
    port = _free_port_pair()
    state = tmp_path_factory.mktemp("kafka")
    command = [str(KAFKA_LOCAL), "--port", str(port), "--dir", str(state)]
    started = subprocess.run(
        [str(KAFKA_LOCAL), "start", *command[1:]], capture_output=True, text=True, timeout=600
    )
    if started.returncode != 0:
        pytest.fail(f"the test broker did not start:\n{started.stderr}", pytrace=False)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(KAFKA_LOCAL), "stop", *command[1:]], capture_output=True, timeout=120)


@pytest.fixture
def settings(bootstrap: str) -> KafkaSettings:
    """Fresh orders and DLQ topics (3 partitions) for one test."""
    suffix = uuid.uuid4().hex[:8]
    settings = KafkaSettings(bootstrap, f"orders-{suffix}", f"orders-dlq-{suffix}")
    ensure_topics(settings, [settings.topic, settings.dlq_topic])
    return settings


@pytest.fixture
def group() -> str:
    return f"test-group-{uuid.uuid4().hex[:8]}"


SASL_USER, SASL_PASSWORD = "alice", "alice-secret"  # scripts/kafka-local's SASL listener


@pytest.fixture(scope="session")
def sasl_bootstrap(bootstrap: str) -> str:
    """The SASL/PLAIN listener scripts/kafka-local runs next to the broker (port + 2)."""
    host, _, port = bootstrap.rpartition(":")
    address = f"{host}:{int(port) + 2}"
    with socket.socket() as s:
        s.settimeout(2)
        if s.connect_ex((host, int(port) + 2)) != 0:
            pytest.skip(f"no SASL listener at {address}: the broker was not started by "
                        "scripts/kafka-local")  # fmt: skip
    return address


class OwnBroker:
    """A broker of a test's own, on free ports, for a test that stops and starts it (the
    session's broker is left alone)."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port_pair()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._flags = ["--port", str(self.port), "--dir", str(folder)]

    def _run(self, action: str) -> None:
        subprocess.run([str(KAFKA_LOCAL), action, *self._flags], check=True,
                       capture_output=True, timeout=300)  # fmt: skip

    def start(self) -> None:
        self._run("start")

    def stop(self) -> None:
        self._run("stop")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[OwnBroker]:
    """A started broker of the test's own, stopped when the test ends."""
    broker = OwnBroker(tmp_path / "kafka")
    broker.start()
    yield broker
    broker.stop()


class Cluster:
    """Three Apache Kafka nodes (replication 3, min.insync.replicas 2) started by
    `scripts/kafka-local --brokers 3` on free ports; a test stops, kills and restarts
    nodes of it."""

    def __init__(self, folder: Path) -> None:
        self.port = _free_port_pair(9)
        self.ports = [self.port + 3 * i for i in range(3)]
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in self.ports)
        self._flags = ["--brokers", "3", "--port", str(self.port), "--dir", str(folder)]

    def run(self, *action: str) -> None:
        subprocess.run([str(KAFKA_LOCAL), *action, *self._flags], check=True,
                       capture_output=True, timeout=300)  # fmt: skip

    def kill(self, node: int) -> None:
        self.run("kill-node", str(node))

    def stop(self, node: int) -> None:
        self.run("stop-node", str(node))

    def start(self, node: int) -> None:
        self.run("start-node", str(node))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's three-node cluster (the cluster tests run on one xdist worker)."""
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.run("start")
    except subprocess.CalledProcessError as failed:
        pytest.fail(f"the test cluster did not start:\n{failed.stderr.decode()}", pytrace=False)
    try:
        yield cluster
    finally:
        cluster.run("stop")


REGISTRY_LOCAL = ROOT / "scripts" / "registry-local"


class OwnRegistry:
    """Apicurio Registry on a free port, run by scripts/registry-local. Its storage is in
    memory: a stop saves what it holds (its export) and the next start loads it, ids and
    all, as a registry with durable storage comes back."""

    def __init__(self, folder: Path) -> None:
        port = _free_port_pair()
        self.root = f"http://127.0.0.1:{port}"
        self.url = f"{self.root}/apis/ccompat/v7"
        self._saved = folder / "export.zip"
        self._flags = ["--port", str(port), "--dir", str(folder)]

    def _run(self, action: str, **env: str) -> None:
        done = subprocess.run([str(REGISTRY_LOCAL), action, *self._flags], capture_output=True,
                              text=True, timeout=600, env={**os.environ, **env})  # fmt: skip
        if done.returncode != 0:
            pytest.fail(f"registry-local {action} failed:\n{done.stderr}", pytrace=False)

    def start(self) -> None:
        saved = f"-Dregistry.import.url=file://{self._saved}" if self._saved.exists() else ""
        self._run("start", REGISTRY_JAVA_OPTS=saved)

    def stop(self) -> None:
        with contextlib.suppress(OSError):  # not answering: nothing to save
            export = urllib.request.urlopen(f"{self.root}/apis/registry/v2/admin/export",
                                            timeout=10).read()  # fmt: skip
            self._saved.write_bytes(export)
        self._run("stop")


def _registry(folder: Path) -> OwnRegistry:
    java = subprocess.run(["sh", "-c", "command -v java"], capture_output=True, timeout=10)
    if java.returncode != 0:
        pytest.skip("no Java: the schema registry tests run Apicurio Registry with Java 17+")
    return OwnRegistry(folder)


@pytest.fixture(scope="session")
def registry_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A schema registry for the session (each test's topics give it subjects of its own)."""
    registry = _registry(tmp_path_factory.mktemp("registry"))
    registry.start()
    yield registry.url
    registry.stop()


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[OwnRegistry]:
    """A started registry of the test's own, for a test that stops and restarts it."""
    registry = _registry(tmp_path / "registry")
    registry.start()
    yield registry
    registry.stop()
