#!/usr/bin/env python3
"""Validate the language-neutral contracts without Rust.

Usage:   python3 contracts/check.py            (from anywhere; needs `pip install jsonschema pyyaml`)
Exit:    0 when every check passes, 1 otherwise; one line per problem on stderr.

What it checks (the Rust tests of crate ace-contracts are the authority; this is a convenience):
  1. every JSON Schema file (*.json with a "$schema" key) compiles under draft 2020-12 and its
     "$id" is https://contracts.ace-comms.dev/<path relative to contracts/>;
  2. comms/registry.yaml: every entry's file exists, its pointer resolves, versions are semver,
     listed oldest first, no subject@version twice, and every subject named in the
     compatibility table is registered;
  3. every "$ref" in every JSON file (schemas and the OpenAPI document ml/ml_api.json) resolves
     among the local files, without network access; ml/ml_api.json is also checked against the
     OpenAPI 3.1 meta-schema when openapi-spec-validator is installed;
  4. examples: */examples/*.json validate against the latest version of the subject their file
     name starts with; */examples/invalid/*.json ({subject, expect_pointer, rule, instance}) fail,
     and every validation error points at expect_pointer (one broken rule per document);
  5. comms/events.master.yaml: every event's schema is null (with a note) or a registered
     subject@version, its subject follows the ACE hierarchy with the verb of its kind and the
     name token of its name (topics.yaml name_token), and
     priorities, QoS classes and seeds are from their sets;
  6. ml/ml_database_schema.sql: its enum CHECKs and pattern domains say what ml_schemas.json says.
"""
from __future__ import annotations

import json
import posixpath
import re
import sys
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parent
BASE = "https://contracts.ace-comms.dev/"
DRAFT = "https://json-schema.org/draft/2020-12/schema"
SEMVER = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+$")
COMPAT_MODES = {"backward", "backward_transitive", "forward", "forward_transitive",
                "full", "full_transitive", "none"}

problems: list[str] = []


def fail(msg: str) -> None:
    problems.append(msg)


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def pointer_of(path) -> str:
    """JSON pointer (RFC 6901) of a jsonschema error path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def resolve_pointer(doc, pointer: str):
    for token in pointer.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        doc = doc[int(token)] if isinstance(doc, list) else doc[token]
    return doc


def load_json_files() -> dict[str, object]:
    docs = {}
    for path in sorted(ROOT.rglob("*.json")):
        try:
            docs[rel(path)] = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            fail(f"{rel(path)}: not JSON: {err}")
    return docs


def check_schemas(docs: dict[str, object]) -> Registry:
    registry = Registry()
    for name, doc in docs.items():
        if not isinstance(doc, dict) or "$schema" not in doc or "/examples/" in name:
            continue
        if doc["$schema"] != DRAFT:
            fail(f"{name}: $schema is {doc['$schema']!r}, expected {DRAFT}")
        if doc.get("$id") != BASE + name:
            fail(f"{name}: $id is {doc.get('$id')!r}, expected {BASE + name}")
        try:
            Draft202012Validator.check_schema(doc)
        except Exception as err:  # noqa: BLE001 - report and continue
            fail(f"{name}: does not compile: {err}")
        registry = registry.with_resource(BASE + name, Resource(doc, DRAFT202012))
    return registry


def refs_in(node, where=""):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from refs_in(value, f"{where}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from refs_in(value, f"{where}/{i}")


def check_refs(docs: dict[str, object]) -> None:
    for name, doc in docs.items():
        if "/examples/" in name:
            continue
        for where, ref in refs_in(doc):
            target, _, frag = ref.partition("#")
            file = posixpath.normpath(posixpath.join(posixpath.dirname(name), target)) if target else name
            if file not in docs:
                fail(f"{name}{where}: $ref {ref!r} names missing file {file}")
                continue
            try:
                resolve_pointer(docs[file], frag)
            except (KeyError, IndexError, ValueError):
                fail(f"{name}{where}: $ref {ref!r} does not resolve")


def check_openapi() -> None:
    """Validates ml/ml_api.json against the OpenAPI 3.1 meta-schema when openapi-spec-validator
    is installed (optional: `pip install openapi-spec-validator`); $refs are checked either way."""
    try:
        from openapi_spec_validator import validate
    except ImportError:
        print("note: openapi-spec-validator not installed, ml/ml_api.json checked for $refs only")
        return
    path = ROOT / "ml/ml_api.json"
    try:
        validate(json.loads(path.read_text()), base_uri=path.as_uri())
    except Exception as err:  # noqa: BLE001 - report and continue
        fail(f"ml/ml_api.json: not a valid OpenAPI 3.1 document: {err}")


def check_manifest(docs) -> dict[str, list[tuple[str, dict]]]:
    manifest = yaml.safe_load((ROOT / "comms/registry.yaml").read_text())
    compat = manifest.get("compatibility", {})
    if compat.get("default") not in COMPAT_MODES:
        fail(f"registry.yaml: compatibility.default {compat.get('default')!r} is not a mode")
    subjects: dict[str, list[tuple[str, dict]]] = {}
    for entry in manifest.get("schemas", []):
        subject, version, file = entry.get("subject"), str(entry.get("version")), entry.get("file")
        where = f"registry.yaml: {subject}@{version}"
        if not SEMVER.match(version):
            fail(f"{where}: version is not semver")
            continue
        if file not in docs:
            fail(f"{where}: file {file} missing")
            continue
        pointer = entry.get("pointer", "")
        try:
            resolve_pointer(docs[file], pointer)
        except (KeyError, IndexError, ValueError):
            fail(f"{where}: pointer {pointer} does not resolve in {file}")
            continue
        versions = subjects.setdefault(subject, [])
        key = tuple(int(x) for x in version.split("."))
        if versions and key <= tuple(int(x) for x in versions[-1][0].split(".")):
            fail(f"{where}: versions must be listed oldest first, without repeats")
        versions.append((version, {"$ref": f"{BASE}{file}#{pointer}"}))
    for subject, mode in compat.get("subjects", {}).items():
        if mode not in COMPAT_MODES:
            fail(f"registry.yaml: compatibility of {subject} is {mode!r}, not a mode")
        if subject not in subjects:
            fail(f"registry.yaml: compatibility names unregistered subject {subject}")
    return subjects


def subject_of_file(stem: str, subjects) -> str | None:
    """The registered subject a file name starts with: `<subject>.json` or `<subject>.<n>.json`."""
    matches = [s for s in subjects if stem == s or re.fullmatch(re.escape(s) + r"\.[0-9]+", stem)]
    return max(matches, key=len) if matches else None


def validator_for(subject, subjects, registry):
    return Draft202012Validator(subjects[subject][-1][1], registry=registry)


def check_examples(subjects, registry) -> int:
    count = 0
    for path in sorted(ROOT.glob("*/examples/*.json")):
        subject = subject_of_file(path.stem, subjects)
        if subject is None:
            fail(f"{rel(path)}: file name does not start with a registered subject")
            continue
        errors = list(validator_for(subject, subjects, registry).iter_errors(json.loads(path.read_text())))
        for err in errors:
            fail(f"{rel(path)}: {pointer_of(err.absolute_path) or '/'}: {err.message}")
        count += 1
    for path in sorted(ROOT.glob("*/examples/invalid/*.json")):
        doc = json.loads(path.read_text())
        missing = {"subject", "expect_pointer", "rule", "instance"} - doc.keys()
        if missing:
            fail(f"{rel(path)}: missing keys {sorted(missing)}")
            continue
        if doc["subject"] not in subjects:
            fail(f"{rel(path)}: subject {doc['subject']} is not registered")
            continue
        errors = list(validator_for(doc["subject"], subjects, registry).iter_errors(doc["instance"]))
        if not errors:
            fail(f"{rel(path)}: instance is valid but should break: {doc['rule']}")
        for err in errors:
            got = pointer_of(err.absolute_path)
            if got != doc["expect_pointer"]:
                fail(f"{rel(path)}: error at {got or '/'} ({err.message}), expected only {doc['expect_pointer']}")
        count += 1
    return count


VERBS = {"event": "evt", "command": "cmd", "query": "qry", "reply": "rsp", "error": "err"}
ACE_SUBJECT = re.compile(r"^ace\.comms(\.([A-Za-z0-9_-]+|\*)){3}\.(cmd|evt|qry|rsp|err)(\.[A-Za-z0-9_-]+)?\.v[0-9]+$")


def check_event_subject(where: str, ev: dict) -> None:
    """An event's subject follows the ACE hierarchy and its verb matches the envelope kind;
    null is allowed only with a note (records that are never published)."""
    subject = ev.get("subject")
    if subject is None:
        if not ev.get("note"):
            fail(f"{where}: subject null without a note saying why")
        return
    match = ACE_SUBJECT.match(subject)
    if not match:
        fail(f"{where}: subject {subject!r} is not ace.comms.<protocol>.<type>.<id>.<verb>[.<name>].v<N>")
    elif VERBS.get(ev.get("kind")) != match.group(3):
        fail(f"{where}: subject verb {match.group(3)} does not match kind {ev.get('kind')!r}")
    elif (match.group(4) or "")[1:] != name_token(ev.get("name", "")):
        fail(f"{where}: subject name token should be {name_token(ev.get('name', ''))!r} (topics.yaml name_token)")


def name_token(name: str) -> str:
    """The subject token of an event name: snake case, dots to '_' (SystemStatePacket ->
    system_state_packet, kpi.threshold_breach -> kpi_threshold_breach)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).replace(".", "_").lower()


def check_proto_ref(where: str, ref: str) -> None:
    """`proto: <file>#<package>.<Message>` names a message defined in that .proto file."""
    file, _, qualified = ref.partition("#")
    path = ROOT / file
    message = qualified.rpartition(".")[2]
    if not path.is_file():
        fail(f"{where}: proto file {file} missing")
    elif not re.search(rf"^message {re.escape(message)}\s*{{", path.read_text(), re.M):
        fail(f"{where}: {file} defines no message {message}")


# Columns of ml/ml_database_schema.sql whose CHECK (col IN (...)) mirrors an enum of
# ml/ml_schemas.json, and SQL domains whose CHECK (VALUE ~ '...') mirrors a pattern.
SQL_ENUMS = {
    ("mlt_experiences", "source"): "/$defs/ExperienceSource/enum",
    ("mlt_experiences", "env"): "/$defs/Environment/enum",
    ("mlt_insights", "type"): "/$defs/InsightType/enum",
    ("mlt_insights", "scope"): "/$defs/InsightScope/enum",
    ("mlt_insights", "recommendation"): "/$defs/Recommendation/properties/action/enum",
    ("mlt_plans", "status"): "/$defs/PlanStatus/enum",
    ("mlt_plans", "risk_level"): "/$defs/AdaptationPlan/properties/risk_level/enum",
}
SQL_DOMAINS = {
    "mlt_uid": "/$defs/UID/pattern",
    "mlt_semver": "/$defs/SemVer/pattern",
    "mlt_sha256": "/$defs/Sha256/pattern",
    "mlt_task": "/$defs/Task/enum",
}


def check_sql(docs) -> None:
    """The DDL's CHECKs say the same as the JSON Schemas (a drift guard, not a SQL parser)."""
    sql = (ROOT / "ml/ml_database_schema.sql").read_text()
    schemas = docs["ml/ml_schemas.json"]
    for (table, column), pointer in SQL_ENUMS.items():
        block = re.search(rf"CREATE TABLE IF NOT EXISTS {table} \((.*?)\n\);", sql, re.S)
        found = block and re.search(rf"CHECK \({column} IN \(([^)]*)\)\)", block.group(1))
        if not found:
            fail(f"ml_database_schema.sql: no CHECK ({column} IN (...)) in {table}")
            continue
        values = re.findall(r"'([^']*)'", found.group(1))
        if values != resolve_pointer(schemas, pointer):
            fail(f"ml_database_schema.sql: {table}.{column} allows {values}, ml_schemas.json{pointer} says otherwise")
    for domain, pointer in SQL_DOMAINS.items():
        found = re.search(rf"CREATE DOMAIN {domain} AS text\s+CHECK \(VALUE (~ '([^']*)'|IN \(([^)]*)\))\)", sql)
        expected = resolve_pointer(schemas, pointer)
        got = None if not found else (found.group(2) if found.group(2) is not None else re.findall(r"'([^']*)'", found.group(3)))
        if got != expected:
            fail(f"ml_database_schema.sql: domain {domain} is {got!r}, ml_schemas.json{pointer} is {expected!r}")


def check_events_master(subjects) -> int:
    path = ROOT / "comms/events.master.yaml"
    if not path.exists():
        fail("comms/events.master.yaml missing")
        return 0
    catalog = yaml.safe_load(path.read_text())
    seen = set()
    for ev in catalog.get("events", []):
        where = f"events.master.yaml: {ev.get('domain')}/{ev.get('name')}"
        if (ev.get("domain"), ev.get("name")) in seen:
            fail(f"{where}: listed twice")
        seen.add((ev.get("domain"), ev.get("name")))
        for key in ("domain", "name", "kind", "priority", "qos", "seeds"):
            if not ev.get(key):
                fail(f"{where}: missing {key}")
        check_event_subject(where, ev)
        if ev.get("proto"):
            check_proto_ref(where, ev["proto"])
        if ev.get("priority") not in {"P0", "P1", "P2", "P3"}:
            fail(f"{where}: priority {ev.get('priority')!r}")
        if ev.get("qos") not in {"realtime", "standard", "bulk"}:
            fail(f"{where}: qos {ev.get('qos')!r}")
        if not set(ev.get("seeds") or []) <= {"000", "001", "002", "003", "004", "design"}:
            fail(f"{where}: unknown seed in {ev.get('seeds')}")
        schema = ev.get("schema", "missing")
        if schema is None:
            if not ev.get("note"):
                fail(f"{where}: schema null without a note saying why")
        elif not isinstance(schema, str) or "@" not in schema:
            fail(f"{where}: schema {schema!r} is not subject@version")
        else:
            subject, version = schema.split("@", 1)
            if version not in {v for v, _ in subjects.get(subject, [])}:
                fail(f"{where}: schema {schema} is not registered")
    return len(seen)


def main() -> int:
    docs = load_json_files()
    registry = check_schemas(docs)
    check_refs(docs)
    check_openapi()
    subjects = check_manifest(docs)
    examples = check_examples(subjects, registry)
    check_sql(docs)
    events = check_events_master(subjects)
    for msg in problems:
        print(msg, file=sys.stderr)
    print(f"{len(subjects)} subjects, {examples} examples, {events} catalogued events, "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
