"""create_envelope / validate_envelope as the Python API of the schema pack gives them, and
the CloudEvents conversion offline."""

from __future__ import annotations

import json
from pathlib import Path

import pydantic
import pytest

from ace_comms import (
    Envelope,
    MessageKind,
    Priority,
    QoSClass,
    create_envelope,
    from_cloudevent,
    to_cloudevent,
    validate_envelope,
)
from ace_comms.cloudevents import time_text


def test_given_the_schema_pack_call_when_an_envelope_is_created_then_it_is_a_valid_gme_message() -> None:
    envelope = create_envelope(
        kind=MessageKind.EVENT,
        domain="intelligence",
        name="INTEL_INFER_COMPLETED",
        payload={"request_id": "req_123", "result": {"confidence": 0.95}},
        priority=Priority.P0,
        qos=QoSClass.REALTIME,
        rbac=["intel.read"],
    )
    result = validate_envelope(envelope.model_dump())  # as the schema pack calls it
    assert result.passed, result.errors
    assert envelope.subject == "ace.comms.internal.kernel.intelligence.evt.intel_infer_completed.v1"
    assert (envelope.kind, envelope.priority, envelope.qos) == ("event", "P0", "realtime")
    assert envelope.id[14] == "7", "a UUIDv7"
    assert envelope.to_wire()["rbac"] == ["intel.read"]
    assert "signature" not in envelope.to_wire(), "absent fields are left out, never null"


def test_given_two_envelopes_when_created_in_order_then_their_uuidv7_ids_sort_in_order() -> None:
    first = create_envelope("event", "a.b", payload=1)
    second = create_envelope("event", "a.b", payload=2)
    assert first.id != second.id
    assert first.id[:13] <= second.id[:13]


def test_given_a_broken_envelope_when_validated_then_every_problem_has_its_pointer() -> None:
    document = create_envelope("event", "a.b", payload={"n": 1}).to_wire()
    document["subject"] = "a..b"
    document["priority"] = "P9"
    document["trace"] = {"traceparent": "nope"}
    document["ttl_ms"] = 10
    document["deadline"] = "2026-12-07T00:00:00Z"
    result = validate_envelope(document)
    assert not result.passed and not result
    paths = {issue.path for issue in result.errors}
    assert {"/subject", "/priority", "/trace/traceparent", ""} <= paths, result.errors


def test_given_a_wrong_type_when_creating_then_pydantic_refuses_without_coercion() -> None:
    with pytest.raises(pydantic.ValidationError):
        create_envelope("event", "a.b", payload={}, ttl_ms="10")
    with pytest.raises(ValueError):
        create_envelope("event")  # neither a subject nor domain and name
    with pytest.raises(pydantic.ValidationError):
        Envelope.model_validate({**create_envelope("event", "a.b").to_wire(), "extra": 1})


def test_given_an_envelope_with_every_field_when_converted_to_a_cloudevent_and_back_then_nothing_is_lost() -> None:
    envelope = create_envelope(
        "command",
        "ace.comms.a2a.agent.planner.cmd.plan.v1",
        domain="planning",
        name="PLAN",
        payload={"steps": [1, 2.5, "x"]},
        schema="orders.created@1.0.0",
        source={"type": "agent", "id": "planner 1/ü"},
        rbac=["plan.write"],
        headers={"reply_to": "ace.comms.system.inbox.x", "tenant": "acme"},
        governance={"label": "confidential", "pii": ["email"], "ehi_score": 0.5},
        idempotency_key="k-1",
        correlation_id="c-1",
        causation_id="z-1",
        partition_key="p-1",
        trace={"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "a=b"},
        ttl_ms=60000,
        not_before="2026-12-07T10:00:00+01:00",
        hops=2,
        attempt=1,
        max_attempts=3,
        created_at="2026-12-07T12:00:00.120Z",
    )
    event = to_cloudevent(envelope)
    assert event["source"] == "/ace-comms/agent/planner%201%2F%C3%BC"
    assert event["dataschema"] == "urn:ace:schema:orders.created@1.0.0"
    assert event["time"] == "2026-12-07T12:00:00.120Z"
    assert event["acenotbefore"] == "2026-12-07T09:00:00Z"
    assert json.loads(event["acegovernance"])["ehi_score"] == 0.5
    back = from_cloudevent(json.dumps(event))
    expected = envelope.to_wire()
    expected["not_before"] = "2026-12-07T09:00:00Z"
    assert back.to_wire() == expected


def test_given_a_foreign_cloudevent_when_read_then_it_is_refused_naming_acekind() -> None:
    foreign = {"specversion": "1.0", "id": "1", "source": "https://x", "type": "t", "data": {}}
    with pytest.raises(ValueError, match="acekind"):
        from_cloudevent(foreign)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-07T12:00:00Z", "2026-12-07T12:00:00Z"),
        ("2026-12-07T12:00:00.5Z", "2026-12-07T12:00:00.500Z"),
        ("2026-12-07T12:00:00.123456Z", "2026-12-07T12:00:00.123456Z"),
        ("2026-12-07T12:00:00.123456700Z", "2026-12-07T12:00:00.123456700Z"),
        ("2026-12-07T12:00:00.000000000Z", "2026-12-07T12:00:00Z"),
        ("2026-12-08T00:30:00+02:00", "2026-12-07T22:30:00Z"),
    ],
)
def test_given_rfc3339_times_when_written_for_cloudevents_then_they_are_utc_with_3_6_or_9_digits(
    text: str, expected: str
) -> None:
    assert time_text(text) == expected


def test_given_the_shipped_examples_when_a_payload_is_wrapped_then_the_envelope_is_valid(repo: Path) -> None:
    payload = json.loads((repo / "contracts/ml/examples/mlt.experience.json").read_text())
    envelope = create_envelope(
        "event", "ace.comms.a2a.agent.mlt.evt.experience.v1", payload=payload, schema="mlt.experience@1.0.0"
    )
    assert validate_envelope(envelope).passed
