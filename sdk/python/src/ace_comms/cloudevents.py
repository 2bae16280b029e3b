"""Envelope <-> CloudEvents 1.0 in structured JSON mode (``application/cloudevents+json``),
with the server's attribute mapping, so an event made here equals the one the server renders
for the same stored envelope (a test compares them) and reads back as the same envelope.

| attribute | envelope field |
| --- | --- |
| ``id``, ``subject``, ``datacontenttype`` | ``id``, ``subject``, ``content_type`` |
| ``source`` | ``/ace-comms/{type}/{percent-encoded id}``, ``/ace-comms`` without a source |
| ``type`` | ``name``; ``gme/1.{kind}`` when there is none |
| ``time`` | ``created_at`` (RFC 3339 UTC, sub-second digits by 3, 6 or 9) |
| ``dataschema`` | ``urn:ace:schema:{schema}`` |
| ``data`` / ``data_base64`` | ``payload`` (JSON content / anything else) |
| ``traceparent``, ``tracestate`` | ``trace`` |
| ``acespec``, ``acekind``, ``acedomain``, ``acepriority``, ``aceqos`` | same fields |
| ``aceidempotencykey``, ``acecorrelationid``, ``acecausationid``, ``acepartitionkey`` | same |
| ``acehops``, ``aceattempt``, ``acemaxattempts``, ``acettlms`` | decimal text |
| ``acedeadline``, ``acenotbefore`` | RFC 3339 |
| ``acerbac``, ``acegovernance``, ``acepayloadref``, ``acesignature``, ``aceheaders`` | canonical JSON text |

Any other attribute of an event is kept in ``headers`` as ``ce-{name}``. A CloudEvent without
``acekind`` comes from a producer that knows nothing of envelopes: post it to the server as it
is (``POST /api/v1/messages`` with ``application/cloudevents+json``), which places it by its
``cloudevents`` rules; :func:`from_cloudevent` refuses it.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote

from .envelope import Envelope, is_json_content_type
from .ledger import canonical_json

STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
SOURCE_PREFIX = "/ace-comms"
UNNAMED_TYPE_PREFIX = "gme/1."
SCHEMA_URN_PREFIX = "urn:ace:schema:"

_TIME = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})$"
)


def time_text(text: str) -> str:
    """An RFC 3339 time in UTC as the server writes it: ``Z``, and the fraction in 3, 6 or 9
    digits (none when whole)."""
    match = _TIME.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an RFC 3339 time")
    day, clock, fraction, offset = match.groups()
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    zone = timezone.utc
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        zone = timezone(sign * timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])))
    moment = datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=zone)
    base = moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if nanos == 0:
        return f"{base}Z"
    if nanos % 1_000_000 == 0:
        return f"{base}.{nanos // 1_000_000:03d}Z"
    if nanos % 1000 == 0:
        return f"{base}.{nanos // 1000:06d}Z"
    return f"{base}.{nanos:09d}Z"


def _json_text(value: Any) -> str:
    return canonical_json(value).decode("utf-8")


def to_cloudevent(envelope: Envelope) -> dict[str, Any]:
    """The structured CloudEvent of an envelope (serialize with ``json.dumps``)."""
    wire = envelope.to_wire()
    source = envelope.source
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": envelope.id,
        "source": f"{SOURCE_PREFIX}/{source.type}/{quote(source.id, safe='-._~')}"
        if source
        else SOURCE_PREFIX,
        "type": envelope.name or f"{UNNAMED_TYPE_PREFIX}{envelope.kind}",
        "subject": envelope.subject,
        "time": time_text(envelope.created_at),
        "datacontenttype": envelope.content_type,
        "acespec": envelope.spec,
        "acekind": envelope.kind,
        "acepriority": envelope.priority,
        "aceqos": envelope.qos,
        "acehops": str(envelope.hops),
        "aceattempt": str(envelope.attempt),
        "acemaxattempts": str(envelope.max_attempts),
        "acegovernance": _json_text(wire["governance"]),
    }
    optional = {
        "dataschema": f"{SCHEMA_URN_PREFIX}{envelope.schema_}" if envelope.schema_ else None,
        "acedomain": envelope.domain,
        "aceidempotencykey": envelope.idempotency_key,
        "acecorrelationid": envelope.correlation_id,
        "acecausationid": envelope.causation_id,
        "acepartitionkey": envelope.partition_key,
        "traceparent": envelope.trace.traceparent if envelope.trace else None,
        "tracestate": envelope.trace.tracestate if envelope.trace else None,
        "acettlms": None if envelope.ttl_ms is None else str(envelope.ttl_ms),
        "acedeadline": time_text(envelope.deadline) if envelope.deadline else None,
        "acenotbefore": time_text(envelope.not_before) if envelope.not_before else None,
        "acerbac": _json_text(wire["rbac"]) if "rbac" in wire else None,
        "acepayloadref": _json_text(wire["payload_ref"]) if "payload_ref" in wire else None,
        "acesignature": _json_text(wire["signature"]) if "signature" in wire else None,
        "aceheaders": _json_text(wire["headers"]) if "headers" in wire else None,
    }
    event.update({k: v for k, v in optional.items() if v is not None})
    if "payload" in wire:
        member = "data" if is_json_content_type(envelope.content_type) else "data_base64"
        event[member] = wire["payload"]
    return event


def from_cloudevent(event: dict[str, Any] | str | bytes) -> Envelope:
    """The envelope of an envelope's own structured CloudEvent (one with ``acekind``); raises
    ``ValueError`` naming the attribute at fault otherwise."""
    attrs: dict[str, Any] = dict(json.loads(event) if isinstance(event, (str, bytes)) else event)
    attrs = {k: v for k, v in attrs.items() if v is not None}
    if attrs.pop("specversion", None) != "1.0":
        raise ValueError("specversion is not 1.0")
    if "acekind" not in attrs:
        raise ValueError("attribute acekind is missing: a foreign CloudEvent needs the server's mapping")
    if "data" in attrs and "data_base64" in attrs:
        raise ValueError("an event holds data or data_base64, not both")

    def take(name: str) -> Any:
        return attrs.pop(name, None)

    def number(name: str) -> int | None:
        text = take(name)
        return None if text is None else int(text)

    def parsed(name: str) -> Any:
        text = take(name)
        return None if text is None else json.loads(text)

    event_type = take("type")
    schema = take("dataschema")
    traceparent, tracestate = take("traceparent"), take("tracestate")
    data: dict[str, Any] = {
        "spec": take("acespec") or "gme/1",
        "id": take("id"),
        "kind": take("acekind"),
        "subject": take("subject"),
        "name": None if str(event_type).startswith(UNNAMED_TYPE_PREFIX) else event_type,
        "source": _source(take("source")),
        "schema": schema[len(SCHEMA_URN_PREFIX):] if schema and schema.startswith(SCHEMA_URN_PREFIX) else schema,
        "content_type": take("datacontenttype") or "application/json",
        "payload": take("data") if "data" in attrs else take("data_base64"),
        "domain": take("acedomain"),
        "priority": take("acepriority") or "P2",
        "qos": take("aceqos") or "standard",
        "idempotency_key": take("aceidempotencykey"),
        "correlation_id": take("acecorrelationid"),
        "causation_id": take("acecausationid"),
        "partition_key": take("acepartitionkey"),
        "trace": {"traceparent": traceparent, "tracestate": tracestate} if traceparent else None,
        "created_at": take("time"),
        "deadline": take("acedeadline"),
        "not_before": take("acenotbefore"),
        "hops": number("acehops") or 0,
        "attempt": number("aceattempt") or 0,
        "max_attempts": number("acemaxattempts") or 5,
        "ttl_ms": number("acettlms"),
        "rbac": parsed("acerbac") or [],
        "governance": parsed("acegovernance") or {},
        "payload_ref": parsed("acepayloadref"),
        "signature": parsed("acesignature"),
        "headers": parsed("aceheaders") or {},
    }
    if data["trace"] and data["trace"]["tracestate"] is None:
        del data["trace"]["tracestate"]
    for name, value in attrs.items():
        data["headers"][f"ce-{name}"] = value if isinstance(value, str) else json.dumps(value)
    return Envelope.model_validate({k: v for k, v in data.items() if v is not None})


def _source(text: str | None) -> dict[str, str] | None:
    if text is None or text == SOURCE_PREFIX:
        return None
    parts = text.split("/")
    if len(parts) != 4 or parts[0] != "" or f"/{parts[1]}" != SOURCE_PREFIX:
        raise ValueError(f"CloudEvents source {text!r} is not {SOURCE_PREFIX}[/type/id]")
    return {"type": parts[2], "id": unquote(parts[3])}
