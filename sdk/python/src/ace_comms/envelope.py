"""The ``gme/1`` envelope: :class:`Envelope` (pydantic), :func:`create_envelope` and
:func:`validate_envelope`.

The model is the wire form of the server's envelope field for field (a test holds its fields,
required fields and enumerations to ``contracts/comms/envelope.schema.json``). Timestamps are
kept as the RFC 3339 text they arrived as, never re-formatted: a signature covers the canonical
JSON of the envelope, and a forwarded envelope must keep every byte of it.
:func:`validate_envelope` checks a document against the packaged copy of the envelope schema
(python-jsonschema, draft 2020-12) and reports every problem with its JSON pointer.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SPEC: Literal["gme/1"] = "gme/1"
JSON_CONTENT_TYPE = "application/json"


class MessageKind(StrEnum):
    """What a message is."""

    EVENT = "event"
    COMMAND = "command"
    QUERY = "query"
    REPLY = "reply"
    ERROR = "error"


class Priority(StrEnum):
    """Priority lane: P0 first."""

    P0 = "P0"
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"


class QoSClass(StrEnum):
    """Quality of service; a ``realtime`` message without ``ttl_ms``/``deadline`` lives 30 s."""

    REALTIME = "realtime"
    STANDARD = "standard"
    BULK = "bulk"


class Label(StrEnum):
    """Governance label of the content."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"


class SourceType(StrEnum):
    """What kind of principal sent a message."""

    AGENT = "agent"
    HUMAN = "human"
    SERVICE = "service"
    KERNEL = "kernel"
    GROUP = "group"


KindName = Literal["event", "command", "query", "reply", "error"]
PriorityName = Literal["P0", "P1", "P2", "P3"]
QosName = Literal["realtime", "standard", "bulk"]
LabelName = Literal["public", "internal", "confidential", "secret"]
SourceTypeName = Literal["agent", "human", "service", "kernel", "group"]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class Source(_Wire):
    """The sender; the server fills it in from authentication when it is left out."""

    type: SourceTypeName
    id: str


class PayloadRef(_Wire):
    """A payload stored elsewhere, pinned by its SHA-256 (hex) and size."""

    uri: str
    sha256: str
    size: int


class Trace(_Wire):
    """W3C trace context."""

    traceparent: str
    tracestate: str | None = None


class Governance(_Wire):
    """Label, PII fields, consent, EHI score, approval."""

    label: LabelName = "internal"
    pii: list[str] = Field(default_factory=list)
    consent_scope: str | None = None
    ehi_score: float | None = None
    requires_approval: bool = False
    approval_id: str | None = None


class Signature(_Wire):
    """Ed25519 signature of the canonical envelope (base64)."""

    alg: Literal["ed25519"]
    key_id: str
    sig: str


class Envelope(_Wire):
    """One ``gme/1`` message. Build one with :func:`create_envelope`; send it with
    ``Envelope.to_wire()`` (what the server expects: absent fields left out, never ``null``)."""

    spec: Literal["gme/1"] = SPEC
    id: str
    kind: KindName
    subject: str
    domain: str | None = None
    name: str | None = None
    source: Source | None = None
    schema_: str | None = Field(default=None, alias="schema")
    content_type: str = JSON_CONTENT_TYPE
    payload: Any = None
    payload_ref: PayloadRef | None = None
    priority: PriorityName = "P2"
    qos: QosName = "standard"
    idempotency_key: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    partition_key: str | None = None
    trace: Trace | None = None
    hops: int = 0
    created_at: str
    ttl_ms: int | None = None
    deadline: str | None = None
    not_before: str | None = None
    attempt: int = 0
    max_attempts: int = 5
    rbac: list[str] = Field(default_factory=list)
    governance: Governance = Field(default_factory=Governance)
    signature: Signature | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """pydantic's ``model_dump``, by default with the wire names (``schema``) and without
        ``None`` fields, so ``validate_envelope(envelope.model_dump())`` checks what would be
        sent."""
        kwargs.setdefault("by_alias", True)
        kwargs.setdefault("exclude_none", True)
        return super().model_dump(**kwargs)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object the server reads and writes: absent optional fields and empty
        lists and maps left out (the server refuses an explicit ``null``)."""
        out = self.model_dump(mode="json", by_alias=True, exclude_none=True)
        for empty in ("rbac", "headers"):
            if not out.get(empty):
                out.pop(empty, None)
        if not out["governance"].get("pii"):
            out["governance"].pop("pii", None)
        return out

    def model_dump_wire_json(self) -> str:
        """:meth:`to_wire` as JSON text."""
        return json.dumps(self.to_wire(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> Envelope:
        """The envelope of a JSON object as the server sends it."""
        return cls.model_validate(data)


def uuid7(at: datetime | None = None) -> str:
    """A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits."""
    millis = int((at.timestamp() if at else time.time()) * 1000)
    rand = int.from_bytes(secrets.token_bytes(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= rand & ((1 << 62) - 1)
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with microseconds and ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")


def create_envelope(
    kind: MessageKind | KindName = MessageKind.EVENT,
    subject: str | None = None,
    *,
    domain: str | None = None,
    name: str | None = None,
    payload: Any = None,
    payload_ref: PayloadRef | dict[str, Any] | None = None,
    priority: Priority | PriorityName = Priority.P2,
    qos: QoSClass | QosName = QoSClass.STANDARD,
    rbac: list[str] | None = None,
    schema: str | None = None,
    source: Source | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    governance: Governance | dict[str, Any] | None = None,
    **fields: Any,
) -> Envelope:
    """A new envelope with a fresh UUIDv7 id and ``created_at`` now, the contract's defaults for
    everything not given (``priority`` P2, ``qos`` standard, label ``internal``).

    Without ``subject``, one is made from ``kind``, ``domain`` and ``name`` as the subject
    hierarchy names a kernel's message:
    ``ace.comms.internal.kernel.{domain}.{evt|cmd|qry|rsp|err}.{name}.v1``, the name in snake
    case with dots as underscores (``INTEL_INFER_COMPLETED`` -> ``intel_infer_completed``). Any other envelope field may be passed by name (``ttl_ms``,
    ``idempotency_key``, ``correlation_id``, ``partition_key``, ``trace``...). Raises
    ``pydantic.ValidationError`` when a field has the wrong type.
    """
    kind_name = str(MessageKind(kind))
    if payload is None and payload_ref is None:
        payload = {}
    if subject is None:
        subject = _subject_for(kind_name, domain, name)
    created_at = fields.pop("created_at", None) or now_rfc3339()
    data: dict[str, Any] = {
        "id": fields.pop("id", None) or uuid7(),
        "kind": kind_name,
        "subject": subject,
        "domain": domain,
        "name": name,
        "payload": payload,
        "payload_ref": payload_ref,
        "priority": str(Priority(priority)),
        "qos": str(QoSClass(qos)),
        "rbac": list(rbac or []),
        "schema": schema,
        "source": source,
        "headers": dict(headers or {}),
        "created_at": created_at,
        **fields,
    }
    if governance is not None:
        data["governance"] = governance
    return Envelope.model_validate({k: v for k, v in data.items() if v is not None})


_KIND_TOKEN = {"event": "evt", "command": "cmd", "query": "qry", "reply": "rsp", "error": "err"}


def _subject_for(kind: str, domain: str | None, name: str | None) -> str:
    if not domain or not name:
        raise ValueError("give `subject`, or `domain` and `name` to build one from")
    token = _KIND_TOKEN[kind]
    clean = [part.lower().replace(".", "_").replace(":", "_") for part in (domain, name)]
    return f"ace.comms.internal.kernel.{clean[0]}.{token}.{clean[1]}.v1"


@dataclass(frozen=True)
class ValidationIssue:
    """One problem: the JSON pointer of the offending value and what is wrong with it."""

    path: str
    message: str


@dataclass(frozen=True)
class ValidationResult:
    """What :func:`validate_envelope` found: ``passed``, else every problem in ``errors``."""

    passed: bool
    errors: list[ValidationIssue] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.passed


def packaged_schema(path: str) -> dict[str, Any]:
    """A JSON Schema shipped inside the package (``comms/envelope.schema.json``...), a copy of
    the repository's ``contracts/``."""
    text = resources.files("ace_comms").joinpath("contracts", *path.split("/")).read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def _envelope_validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    schema = packaged_schema("comms/envelope.schema.json")
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def validate_envelope(envelope: Envelope | dict[str, Any]) -> ValidationResult:
    """Checks a document against the ``gme/1`` envelope schema; every problem is reported with
    the JSON pointer of the value at fault (``/payload``, ``/trace/traceparent``...)."""
    document = envelope.to_wire() if isinstance(envelope, Envelope) else envelope
    errors = [
        ValidationIssue(_pointer(error.absolute_path), error.message)
        for error in _envelope_validator().iter_errors(document)
    ]
    errors.sort(key=lambda issue: (issue.path, issue.message))
    return ValidationResult(passed=not errors, errors=errors)


def _pointer(path: Any) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]
    return "".join(f"/{p}" for p in parts)


# Environment variables the clients read when no argument is given.
ENV_SERVER = "ACE_SERVER"
ENV_API_KEY = "ACE_API_KEY"
ENV_TOKEN = "ACE_TOKEN"


def env_default(name: str) -> str | None:
    """The value of an ``ACE_*`` variable, ``None`` when unset or empty."""
    return os.environ.get(name) or None


def is_json_content_type(content_type: str) -> bool:
    """Whether a media type carries its payload as JSON (``application/json``, ``*/*+json``);
    any other carries a base64 string."""
    media = content_type.split(";", 1)[0].rstrip()
    return media == JSON_CONTENT_TYPE or (media.endswith("+json") and "/" in media)
