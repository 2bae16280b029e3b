"""The SDK's models held to the repository's contracts: the packaged schemas are byte-equal
copies of ``contracts/``, the envelope model has the schema's fields, required fields, enums
and defaults, the ML models give every example of ``contracts/ml/examples`` the schema's
verdict, and the WebSocket frame models agree with the server's AsyncAPI document."""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import jsonschema
import pydantic
import pytest
import referencing
import referencing.jsonschema
from importlib import resources

from ace_comms import Envelope, create_envelope, ml, models

PACKAGED = [
    "comms/envelope.schema.json",
    "comms/errors.schema.json",
    "ml/ml_schemas.json",
    "ml/ml_events.json",
]


@pytest.mark.parametrize("path", PACKAGED)
def test_given_a_packaged_schema_when_compared_then_it_equals_the_repository_contract(
    repo: Path, path: str
) -> None:
    packaged = resources.files("ace_comms").joinpath("contracts", *path.split("/")).read_bytes()
    assert packaged == (repo / "contracts" / path).read_bytes(), (
        f"sdk/python/src/ace_comms/contracts/{path} differs from contracts/{path}: copy it again"
    )


def _literal_values(annotation: Any) -> set[str]:
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    values: set[str] = set()
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Literal:
            values |= set(typing.get_args(arg))
    return values


def test_given_the_envelope_model_when_compared_with_the_schema_then_fields_enums_and_defaults_agree(
    repo: Path,
) -> None:
    schema = json.loads((repo / "contracts/comms/envelope.schema.json").read_text())
    fields = {f.alias or name: f for name, f in Envelope.model_fields.items()}
    assert set(fields) == set(schema["properties"])
    required_by_model = {name for name, f in fields.items() if f.is_required()}
    assert required_by_model <= set(schema["required"]), required_by_model
    for name, prop in schema["properties"].items():
        if "enum" in prop:
            assert _literal_values(fields[name].annotation) == set(prop["enum"]), name
        if "const" in prop:
            assert _literal_values(fields[name].annotation) == {prop["const"]}, name
        if "default" in prop:
            assert fields[name].default == prop["default"], name
    for group in ("source", "governance", "signature", "trace", "payload_ref"):
        sub = schema["properties"][group]
        model = typing.get_args(fields[group].annotation) or (fields[group].annotation,)
        model = next(m for m in model if isinstance(m, type) and issubclass(m, pydantic.BaseModel))
        assert set(model.model_fields) == set(sub["properties"]), group
        for name, prop in sub["properties"].items():
            if "enum" in prop:
                assert _literal_values(model.model_fields[name].annotation) == set(prop["enum"])


def _ml_validator(repo: Path, subject: str) -> jsonschema.Draft202012Validator:
    file, pointer = _entry_of(repo, subject)
    registry = referencing.Registry()
    for name in ("ml_schemas.json", "ml_events.json"):
        doc = json.loads((repo / "contracts/ml" / name).read_text())
        resource = referencing.Resource.from_contents(doc, default_specification=referencing.jsonschema.DRAFT202012)
        registry = registry.with_resource(doc["$id"], resource)
    schema = {"$ref": f"https://contracts.ace-comms.dev/{file}#{pointer}"}
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _entry_of(repo: Path, subject: str) -> tuple[str, str]:
    """The file and pointer of ``subject`` in the manifest (read line by line: no YAML
    dependency)."""
    lines = (repo / "contracts/comms/registry.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() == f"- subject: {subject}":
            fields = dict(f.strip().split(":", 1) for f in lines[i + 1 : i + 4] if ":" in f)
            return fields["file"].strip(), fields["pointer"].strip()
    raise AssertionError(f"{subject} is not in contracts/comms/registry.yaml")


def _examples(repo: Path, invalid: bool) -> list[tuple[str, Path]]:
    folder = repo / "contracts/ml/examples" / ("invalid" if invalid else "")
    found = []
    for path in sorted(folder.glob("*.json")):
        subject = next((s for s in ml.CONTRACTS if path.name.startswith(s + ".")), None)
        if subject:
            found.append((subject, path))
    return found


def test_given_the_ml_examples_when_listed_then_every_model_has_valid_and_invalid_ones(repo: Path) -> None:
    with_examples = {s for s, _ in _examples(repo, False)}
    assert {s for s in ml.CONTRACTS if not s.startswith("ml.event.")} <= with_examples
    assert set(BUILT_EVENTS) == set(ml.CONTRACTS) - with_examples, "every other model is built below"
    assert len(_examples(repo, True)) >= 18


@pytest.mark.parametrize("invalid", [False, True], ids=["valid", "invalid"])
def test_given_every_ml_example_when_validated_then_the_model_agrees_with_the_schema(
    repo: Path, invalid: bool
) -> None:
    for subject, path in _examples(repo, invalid):
        document = json.loads(path.read_text())
        instance = document["instance"] if invalid else document
        validator = _ml_validator(repo, subject)
        model = ml.CONTRACTS[subject]
        if invalid:
            assert not validator.is_valid(instance), path.name
            with pytest.raises(pydantic.ValidationError):
                model.model_validate(instance)
        else:
            parsed = model.model_validate(instance)
            validator.validate(parsed.to_json())
            assert parsed.to_json() == model.model_validate(parsed.to_json()).to_json(), path.name


def test_given_a_plan_with_every_action_when_built_then_it_validates_against_the_schema(repo: Path) -> None:
    plan = ml.AdaptationPlan(
        plan_id="plan_canary_1",
        actions=[
            ml.HpoAction(type="hpo", target="model_x1", budget=ml.HpoBudget(trials=10), success_metric="f1"),
            ml.ReweightSpecialistsAction(type="reweight_specialists", weights={"spec_alpha": 0.7}),
            ml.PolicyDeltaAction.model_validate({"type": "policy_delta", "path": "governance.x", "from": None, "to": 0.5}),
            ml.CanaryAction(type="canary", target_model="model_x1", steps=[5, 50, 100]),
        ],
        risk_level="medium",
        timestamp="2026-12-07T12:00:00Z",
    )
    _ml_validator(repo, "mlt.adaptation_plan").validate(plan.to_json())
    with pytest.raises(pydantic.ValidationError):
        ml.CanaryAction(type="canary", target_model="model_x1", steps=[5, 5])


PLAN = {
    "plan_id": "plan_canary_1", "risk_level": "low", "timestamp": "2026-12-07T12:00:00Z",
    "actions": [{"type": "canary", "target_model": "model_x1", "steps": [10, 100]}],
}  # fmt: skip
TARGET = {"kind": "adaptation_plan", "id": "plan_canary_1"}
#: The event payloads with no example in contracts/ml/examples: one valid instance and one
#: that breaks a rule, each given the schema's verdict by the model.
BUILT_EVENTS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ml.event.experience_ingested": (
        {"experience_id": "exp_00001", "source": "training", "task": "rl", "ingested_at": "2026-12-07T12:00:00Z"},
        {"experience_id": "exp_00001", "source": "dreams", "task": "rl", "ingested_at": "2026-12-07T12:00:00Z"},
    ),
    "ml.event.adaptation_plan_proposed": (
        {"plan": PLAN, "requires_approval": True},
        {"plan": PLAN, "requires_approval": "yes"},
    ),
    "ml.event.governance_validation": (
        {"validation_id": "val_00001", "target": TARGET, "checks": ["fairness"], "requested_at": "2026-12-07T12:00:00Z"},
        {"validation_id": "val_00001", "target": TARGET, "checks": ["Fairness"], "requested_at": "2026-12-07T12:00:00Z"},
    ),
    "ml.event.governance_rejected": (
        {"validation_id": "val_00001", "target": TARGET, "approver": "human:bob", "reasons": ["risky"], "decided_at": "2026-12-07T12:00:00Z"},
        {"validation_id": "val_00001", "target": TARGET, "approver": "human:bob", "reasons": [], "decided_at": "2026-12-07T12:00:00Z"},
    ),
    "ml.event.plan_applied": (
        {"plan_id": "plan_canary_1", "snapshot_before": "snap_00001", "applied_actions": 1, "applied_at": "2026-12-07T12:00:00Z"},
        {"plan_id": "plan_canary_1", "snapshot_before": "snap_00001", "applied_actions": 0, "applied_at": "2026-12-07T12:00:00Z"},
    ),
}  # fmt: skip


@pytest.mark.parametrize("subject", sorted(BUILT_EVENTS))
def test_given_an_event_payload_without_an_example_when_validated_then_the_model_agrees_with_the_schema(
    repo: Path, subject: str
) -> None:
    valid, invalid = BUILT_EVENTS[subject]
    validator = _ml_validator(repo, subject)
    model = ml.CONTRACTS[subject]
    validator.validate(model.model_validate(valid).to_json())
    assert not validator.is_valid(invalid)
    with pytest.raises(pydantic.ValidationError):
        model.model_validate(invalid)


# ---- the WebSocket frames against the server's AsyncAPI document --------------------------

DOC_URI = "urn:ace-comms:asyncapi"
FRAME_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "subscribe": models.SubscribeFrame,
    "unsubscribe": models.UnsubscribeFrame,
    "publish": models.PublishFrame,
    "publish_batch": models.PublishBatchFrame,
    "ack": models.AckFrame,
    "nak": models.AckFrame,
    "term": models.AckFrame,
    "message": models.MessageFrame,
    "ok": models.OkFrame,
    "error": models.ErrorFrame,
}


@pytest.fixture(scope="module")
def asyncapi(repo: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((repo / "contracts/comms/asyncapi.json").read_text())
    return doc


def _properties(doc: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """Every property a payload schema names, through `allOf` and local `$ref`s."""
    if "$ref" in schema:
        target: Any = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        return _properties(doc, target)
    names = set(schema.get("properties", {}))
    for sub in schema.get("allOf", []):
        names |= _properties(doc, sub)
    return names


def test_given_the_asyncapi_document_when_read_then_every_message_has_a_frame_model_with_its_fields(
    asyncapi: dict[str, Any],
) -> None:
    messages = asyncapi["components"]["messages"]
    assert set(messages) == set(FRAME_MODELS)
    for name, message in messages.items():
        names = _properties(asyncapi, message["payload"])
        assert names == set(FRAME_MODELS[name].model_fields), name


def _validator(doc: dict[str, Any], message: str) -> jsonschema.Draft7Validator:
    resource = referencing.Resource.from_contents(doc, default_specification=referencing.jsonschema.DRAFT7)
    registry = referencing.Registry().with_resource(DOC_URI, resource)
    return jsonschema.Draft7Validator({"$ref": f"{DOC_URI}#/components/messages/{message}/payload"}, registry=registry)


def test_given_frames_built_by_the_models_when_validated_then_the_asyncapi_schemas_accept_them(
    asyncapi: dict[str, Any],
) -> None:
    env = create_envelope("event", "ace.comms.a2a.agent.me.evt.hello.v1", payload={"n": 1}, rbac=["x"])
    frames: dict[str, list[pydantic.BaseModel]] = {
        "subscribe": [
            models.SubscribeFrame(id="1", sid="s1", pattern="ace.comms.>", queue="q"),
            models.SubscribeFrame(sid="c1", stream="ACE_EVENTS", consumer="w"),
        ],
        "unsubscribe": [models.UnsubscribeFrame(sid="s1")],
        "publish": [models.PublishFrame(id="2", envelope=env)],
        "publish_batch": [models.PublishBatchFrame(id="3", envelopes=[env, env])],
        "ack": [models.AckFrame(type="ack", sid="c1", seq=4)],
        "nak": [models.AckFrame(type="nak", sid="c1", seq=4, delay_ms=100)],
        "term": [models.AckFrame(type="term", sid="c1", seq=4, reason="poison")],
        "message": [
            models.MessageFrame(sid="s1", envelope=env),
            models.MessageFrame(sid="c1", envelope=env, stream="ACE_EVENTS", seq=7, delivery=2),
        ],
        "ok": [models.OkFrame(id="2", result={"seq": 1}), models.OkFrame()],
        "error": [models.ErrorFrame(id="9", error=models.ErrorDetail(code="NOT_FOUND", message="no sid"))],
    }
    for message, built in frames.items():
        validator = _validator(asyncapi, message)
        for frame in built:
            wire = frame.to_wire()  # type: ignore[attr-defined]
            errors = [e.message for e in validator.iter_errors(wire)]
            assert not errors, (message, wire, errors)
    broken = {"subscribe": {"type": "subscribe"}, "ack": {"type": "ack", "sid": "c1", "seq": "four"}}
    for message, frame in broken.items():
        assert not _validator(asyncapi, message).is_valid(frame), message
