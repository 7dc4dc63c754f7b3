"""A schema registry (Confluent's REST API; Apicurio serves it at /apis/ccompat/v7),
through confluent-kafka's own client: the Order schema registered on produce, writer
schemas fetched by id on consume, a candidate schema checked against the subject's rule.

Client properties come as `-X schema.registry.<property>=...` (or in an -F file), as Java
clients take them: `-X schema.registry.basic.auth.user.info=user:secret`. Credentials
(those, or user:secret@ in the URL) are never printed: every message from here goes
through `RegistrySettings.redact`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient, SchemaRegistryError

from orders_tui.domain.codec import WriterSchema, WriterSchemaUnavailable
from orders_tui.domain.schema import schema_path
from orders_tui.errors import RegistryFailed, UserError
from orders_tui.kafka.config import RegistrySettings

# A lookup on the pipeline's thread waits this long at most, and is not retried by the
# client: the pipeline asks again itself, every second, without holding its thread.
LOOKUP_TIMEOUT = 5.0
SCHEMA_NOT_FOUND = 40403  # the registry's error code for an unknown schema id
SUBJECT_NOT_FOUND = 40401


@dataclass(frozen=True)
class Registered:
    schema_id: int
    subject: str
    version: int | None


@dataclass(frozen=True)
class Compatibility:
    compatible: bool
    subject: str
    rule: str  # BACKWARD, FULL, NONE, ...
    against: str  # "version 3", or "no version yet"
    reasons: list[str]


class Registry:
    """One client: its caches (schema by id) live as long as this object."""

    def __init__(
        self,
        settings: RegistrySettings,
        timeout: float = 10.0,
        retries: int = 1,
        subject: str | None = None,
    ) -> None:
        self.settings = settings
        self.subject = subject  # the one to name when an id is under several
        self.name = f"the schema registry at {settings.shown_url}"
        try:
            self.client = SchemaRegistryClient(settings.client_config(timeout, retries))
        except (TypeError, ValueError) as exc:
            raise UserError(f"--schema-registry: {settings.redact(str(exc))}") from None
        # The client's caches are plain dicts; the pipeline and a front end may share one.
        self._lock = threading.Lock()
        self.last_answer = 0.0  # monotonic time of the registry's last answer

    # ---- produce ----

    def register_order_schema(self, topic: str) -> Registered:
        return self.register(self.settings.subject_for(topic), order_schema_text())

    def register(self, subject: str, schema_text: str) -> Registered:
        """The id the schema has under `subject`, registering it when it is new there."""
        schema = Schema(schema_text, "AVRO")
        try:
            with self._lock:
                found = self.client.register_schema_full_response(subject, schema)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 409:
                raise RegistryFailed(
                    f"{self.name} refused the schema under subject {subject}: it breaks the "
                    f"subject's compatibility rule ({self._said(exc)}); check a candidate with "
                    "`orders-tui schema check --file FILE`"
                ) from None
            raise self._failed(f"register the schema under subject {subject}", exc) from None
        except Exception as exc:  # the client's HTTP errors: connection refused, timeouts
            raise self._failed(f"register the schema under subject {subject}", exc) from None
        version = found.version
        if version is None:  # an older registry answers with the id alone
            version = self._version_of(subject, schema)
        return Registered(found.schema_id, subject, version)

    def _version_of(self, subject: str, schema: Schema) -> int | None:
        try:
            return self.client.lookup_schema(subject, schema).version
        except Exception:  # the version is shown, not needed
            return None

    # ---- consume: a WriterSchemaSource ----

    def writer_schema(self, schema_id: int) -> WriterSchema | None:
        try:
            with self._lock:
                schema = self.client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.error_code == SCHEMA_NOT_FOUND or exc.http_status_code == 404:
                self.last_answer = time.monotonic()
                return None
            raise WriterSchemaUnavailable(self._said(exc)) from None
        except Exception as exc:
            raise WriterSchemaUnavailable(self._said(exc)) from None
        self.last_answer = time.monotonic()
        where = self._where(schema_id)
        if schema.schema_type not in (None, "AVRO"):
            return WriterSchema({"type": schema.schema_type}, *where)
        try:
            return WriterSchema(json.loads(schema.schema_str), *where)
        except ValueError:
            return WriterSchema({"type": "unparsable"}, *where)

    def _where(self, schema_id: int) -> tuple[str | None, int | None]:
        """A subject and version the id is registered under (for messages): this topic's
        subject when it is one of them, else the first."""
        try:
            with self._lock:
                versions = self.client.get_schema_versions(schema_id)
        except Exception:  # shown, not needed: a registry without the endpoint reads fine
            return None, None
        if not versions:
            return None, None
        ours = [v for v in versions if v.subject == self.subject]
        return (ours or versions)[0].subject, (ours or versions)[0].version

    # ---- schema check ----

    def check(self, subject: str, schema_text: str) -> Compatibility:
        """Whether `schema_text` may be registered under `subject`, by its rule, and
        what breaks when it may not."""
        schema = Schema(schema_text, "AVRO")
        try:
            rule = self._rule(subject)
            try:
                latest = self.client.get_latest_version(subject)
            except SchemaRegistryError as exc:
                if exc.error_code == SUBJECT_NOT_FOUND or exc.http_status_code == 404:
                    return Compatibility(True, subject, rule, "no version yet", [])
                raise
            # The client returns a bool; the registry's answer says why (Confluent in
            # "messages", Apicurio in "reason"), so the request goes through its REST layer.
            answer = self.client._rest_client.post(
                f"compatibility/subjects/{subject}/versions/latest?verbose=true",
                body=schema.to_dict(),
            )
        except SchemaRegistryError as exc:
            if exc.http_status_code == 422:
                return Compatibility(False, subject, "?", "the registry", [self._said(exc)])
            raise self._failed(f"check the schema against subject {subject}", exc) from None
        except Exception as exc:
            raise self._failed(f"check the schema against subject {subject}", exc) from None
        reasons = answer.get("messages") or ([answer["reason"]] if answer.get("reason") else [])
        return Compatibility(
            bool(answer.get("is_compatible")),
            subject,
            rule,
            f"version {latest.version}",
            [str(r) for r in reasons],
        )

    def _rule(self, subject: str) -> str:
        for level in (subject, None):  # the subject's own rule, else the registry's
            try:
                return self.client.get_compatibility(level)
            except SchemaRegistryError as exc:
                if exc.http_status_code != 404:
                    raise
        return "BACKWARD"  # the registry's default when nothing is set

    # ---- messages ----

    def _said(self, exc: Exception) -> str:
        text = exc.error_message if isinstance(exc, SchemaRegistryError) else str(exc)
        return self.settings.redact(text or type(exc).__name__)

    def _failed(self, doing: str, exc: Exception) -> RegistryFailed:
        if isinstance(exc, SchemaRegistryError) and exc.http_status_code in (401, 403):
            return RegistryFailed(
                f"{self.name} refused to {doing}: not authorised ({self._said(exc)}); give "
                "credentials with -X schema.registry.basic.auth.user.info=USER:PASSWORD"
            )
        if isinstance(exc, SchemaRegistryError):
            return RegistryFailed(f"{self.name} could not {doing}: {self._said(exc)}")
        return RegistryFailed(
            f"cannot reach {self.name} to {doing} ({self._said(exc)}): start one with "
            "`scripts/registry-local start` (or `docker compose --profile registry up -d`), "
            "or point --schema-registry / SCHEMA_REGISTRY_URL at yours"
        )


def order_schema_text() -> str:
    return schema_path().read_text(encoding="utf-8")
