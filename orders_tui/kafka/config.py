"""Client settings: bootstrap servers, topics, and librdkafka properties from -F and -X."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka import Consumer, KafkaException

from orders_tui.errors import UserError

DEFAULT_BOOTSTRAP = "localhost:9092"
DEFAULT_TOPIC = "orders"
DEFAULT_DLQ_TOPIC = "orders-dlq"
DEFAULT_GROUP = "orders-tui"

# librdkafka logs (connection refused, retries) go to this logger; the CLI shows them
# only with -v, so an unreachable broker gives one line, not a screenful.
librdkafka_log = logging.getLogger("orders_tui.librdkafka")
librdkafka_log.addHandler(logging.NullHandler())
librdkafka_log.propagate = False


# A property whose name says one of these holds a credential (sasl.password,
# ssl.key.pem, sasl.oauthbearer.client.secret, ...): its value is never printed.
SENSITIVE_WORDS = ("password", "secret", "key", "token")
_PROPERTY_NAME = re.compile(r"[\w.-]*")


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_WORDS)


def shown_line(line: str) -> str:
    """A malformed property line as an error message may quote it: whole, unless it
    mentions a credential; then only its leading property name."""
    if not is_sensitive(line):
        return repr(line)
    name = _PROPERTY_NAME.match(line.strip()).group()
    return f"{name!r} and a value not shown (it may be a secret)"


MAX_PROPERTIES_FILE = 1 << 20  # bytes: a client's properties take a few hundred


def read_properties_file(path: str) -> dict[str, str]:
    """A Java-style properties file as librdkafka tools take it (kcat -F). A file that is
    not one (binary, not UTF-8, a device, another program's file) is one line naming it,
    and no line of it is quoted unless the lines before it were properties: an error
    must not echo a file a user pointed at by mistake (a password hash, say)."""
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_PROPERTIES_FILE + 1)
    except FileNotFoundError:
        raise UserError(f"-F {path}: no such file") from None
    except OSError as exc:
        raise UserError(f"-F {path}: cannot read it ({exc.strerror})") from None
    not_properties = f"-F {path}: not a properties file of key=value lines"
    if len(data) > MAX_PROPERTIES_FILE:
        raise UserError(f"{not_properties} (larger than {MAX_PROPERTIES_FILE >> 20} MiB)")
    if b"\0" in data:
        raise UserError(f"{not_properties} (it holds binary data)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{not_properties} (not UTF-8 text at byte {exc.start})") from None
    properties = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith(("#", "!")):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            if not properties:
                raise UserError(
                    f"{not_properties}: line {number} is not key=value (not shown, as no "
                    "property came before it)"
                )
            raise UserError(f"-F {path}, line {number}: expected key=value, got {shown_line(line)}")
        properties[key.strip()] = value.strip()
    return properties


def parse_property(text: str) -> tuple[str, str]:
    """One -X key=value."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserError(
            f"-X expects key=value, got {shown_line(text)}; for example -X security.protocol=SSL"
        )
    return key.strip(), value.strip()


@dataclass(frozen=True)
class RegistrySettings:
    """Where the schema registry is (--schema-registry) and how to talk to it."""

    url: str
    properties: dict[str, str] = field(default_factory=dict)  # -X schema.registry.<key>
    subject: str = ""  # "" is TopicNameStrategy: <topic>-value

    def subject_for(self, topic: str) -> str:
        return self.subject or f"{topic}-value"

    @property
    def shown_url(self) -> str:
        """The URL without any user:password@ in it."""
        parts = urlsplit(self.url)
        host = parts.netloc.rpartition("@")[2]
        return urlunsplit(parts._replace(netloc=host))

    def redact(self, text: str) -> str:
        """`text` without credentials: the URL's user:password@, and the values of
        credential properties (basic.auth.user.info, and names as for Kafka's)."""
        text = _USERINFO.sub("//", text.replace(self.url, self.shown_url))
        for name, value in self.properties.items():
            if (is_sensitive(name) or name.endswith("user.info")) and len(value) >= 4:
                text = text.replace(value, "***")
                text = text.replace(value.partition(":")[2] or value, "***")
        return text

    def client_config(self, timeout: float = 10.0, retries: int = 1) -> dict[str, object]:
        """Our defaults (an unreachable registry is said within a second, not after the
        client's 3 retries of up to 20 s), then the user's properties, which win."""
        config: dict[str, object] = {
            "url": self.url,
            "timeout": timeout,
            "max.retries": retries,
            "retries.wait.ms": 200,
        }
        for name, value in self.properties.items():
            if name in _REGISTRY_NUMBERS:  # the client takes these as numbers only
                try:
                    value = float(value) if "." in value else int(value)
                except ValueError:
                    raise UserError(
                        f"-X {REGISTRY_PREFIX}{name} expects a number, got {value!r}"
                    ) from None
            config[name] = value
        return config


_REGISTRY_NUMBERS = {
    "timeout",
    "max.retries",
    "retries.wait.ms",
    "retries.max.wait.ms",
    "cache.capacity",
    "cache.latest.ttl.sec",
}


REGISTRY_PREFIX = "schema.registry."  # -X properties for the registry's client
_USERINFO = re.compile(r"//[^/@]*@")


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str = DEFAULT_BOOTSTRAP
    topic: str = DEFAULT_TOPIC
    dlq_topic: str = DEFAULT_DLQ_TOPIC
    properties: dict[str, str] = field(default_factory=dict)  # -F first, then -X
    registry: RegistrySettings | None = None  # --schema-registry
    # Of the topics orders-tui creates; -1: the broker's default.replication.factor.
    replication_factor: int = -1

    @classmethod
    def from_flags(
        cls,
        bootstrap_servers: str,
        topic: str,
        dlq_topic: str,
        properties_files: Iterable[str] = (),
        properties: Iterable[str] = (),
        schema_registry: str = "",
        schema_subject: str = "",
        replication_factor: int = -1,
    ) -> KafkaSettings:
        merged: dict[str, str] = {}
        for path in properties_files:
            merged.update(read_properties_file(path))
        merged.update(parse_property(p) for p in properties)
        registry_properties = {
            name.removeprefix(REGISTRY_PREFIX): merged.pop(name)
            for name in list(merged)
            if name.startswith(REGISTRY_PREFIX)
        }
        property_url = registry_properties.pop("url", "")
        registry_url = schema_registry or property_url  # --schema-registry wins
        registry = None
        if registry_url:
            if not registry_url.startswith(("http://", "https://")):
                raise UserError(
                    f"--schema-registry must be an http:// or https:// URL, got "
                    f"{_USERINFO.sub('//', registry_url)!r}"
                )
            registry = RegistrySettings(registry_url, registry_properties, schema_subject)
        elif registry_properties or schema_subject:
            raise UserError(
                "schema registry settings given (-X schema.registry.*, --schema-subject) but "
                "no registry: add --schema-registry URL (or SCHEMA_REGISTRY_URL)"
            )
        # -X bootstrap.servers wins over -b, as every property wins over our defaults:
        # messages name the address actually used.
        bootstrap_servers = merged.pop("bootstrap.servers", bootstrap_servers).strip()
        if not bootstrap_servers:
            raise UserError(
                "no broker address: -b (or -X bootstrap.servers) is empty; give the brokers "
                f"as HOST:PORT[,HOST:PORT...], e.g. -b {DEFAULT_BOOTSTRAP}"
            )
        if not topic or not dlq_topic:
            raise UserError("--topic and --dlq-topic cannot be empty")
        if topic == dlq_topic:
            raise UserError(f"--topic and --dlq-topic are both {topic!r}: they must differ")
        return cls(bootstrap_servers, topic, dlq_topic, merged, registry, replication_factor)

    def effective(self, name: str) -> str:
        """A librdkafka property as set by -F or -X, or ""."""
        return self.properties.get(name, "")

    def redact(self, text: str) -> str:
        """`text` with the value of every credential property replaced by ***: for a
        message that may quote one (librdkafka's own errors do not, but a broker's
        could)."""
        for name, value in self.properties.items():
            if is_sensitive(name) and len(value) >= 4:
                text = text.replace(value, "***")
        return self.registry.redact(text) if self.registry is not None else text

    def client_config(self, **defaults: object) -> dict[str, object]:
        """Our defaults for a client, then the user's properties, which win."""
        config: dict[str, object] = {"bootstrap.servers": self.bootstrap_servers}
        config.update(defaults)
        config.update(self.properties)
        config["logger"] = librdkafka_log
        return config


Client = TypeVar("Client")


def plain_reader(settings: KafkaSettings, **overrides: object) -> Consumer:
    """A consumer that reads the partitions it is assigned without joining a group or
    committing anything."""
    config = settings.client_config(
        **{
            # group.id is required by librdkafka even for assign(); nothing is committed.
            "group.id": f"orders-tui-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            # Records of an aborted or still open transaction are not shown (librdkafka's
            # default, said here because the guarantee rests on it).
            "isolation.level": "read_committed",
            **overrides,
        }
    )
    return make_client(Consumer, config)


def make_client(factory: Callable[[dict], Client], config: dict[str, object]) -> Client:
    """Create a librdkafka client; a bad property becomes a one-line UserError."""
    try:
        return factory(config)
    except KafkaException as exc:
        raise UserError(f"bad librdkafka property: {exc.args[0].str()}") from None
    except (TypeError, ValueError) as exc:
        raise UserError(f"bad librdkafka property: {exc}") from None
