"""Checks messages the server published itself against contracts/, independently of the Rust
registry: python-jsonschema validates each envelope against comms/envelope.schema.json and its
payload against the schema its `schema` field names, resolved through comms/registry.yaml; its
subject must match the catalogue's (comms/events.master.yaml) for its domain and name, or be a
reply subject the test named (a refused held message's requester is answered on its reply_to).

Usage:   python system_messages.py CONTRACTS_DIR MESSAGES_JSONL [REPLY_SUBJECT...]
Output:  one line per message, `ok <name> <subject>`; problems on stderr. Exit 1 on any problem.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

BASE = "https://contracts.ace-comms.dev/"
TOKEN = "[A-Za-z0-9_-]+"


def resources(root: Path) -> Registry:
    registry = Registry()
    for path in sorted(root.rglob("*.json")):
        doc = json.loads(path.read_text())
        if isinstance(doc, dict) and "$schema" in doc and "/examples/" not in path.as_posix():
            uri = BASE + path.relative_to(root).as_posix()
            registry = registry.with_resource(uri, Resource(doc, DRAFT202012))
    return registry


def manifest(root: Path) -> dict[str, str]:
    """subject@version -> the $ref of its schema."""
    entries = yaml.safe_load((root / "comms/registry.yaml").read_text())["schemas"]
    return {
        f"{e['subject']}@{e['version']}": f"{BASE}{e['file']}#{e.get('pointer', '')}"
        for e in entries
    }


def catalogue(root: Path) -> dict[tuple[str, str], dict]:
    events = yaml.safe_load((root / "comms/events.master.yaml").read_text())["events"]
    return {(e["domain"], e["name"]): e for e in events}


def subject_regex(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + r"\.".join(TOKEN if t == "*" else re.escape(t) for t in pattern.split(".")) + "$")


def main() -> int:
    root, lines, replies = Path(sys.argv[1]), Path(sys.argv[2]), set(sys.argv[3:])
    registry, schemas, events = resources(root), manifest(root), catalogue(root)
    envelope = Draft202012Validator({"$ref": BASE + "comms/envelope.schema.json"}, registry=registry)
    problems = []
    for n, line in enumerate(lines.read_text().splitlines(), start=1):
        msg = json.loads(line)
        where = f"message {n} ({msg.get('name')} on {msg.get('subject')})"
        before = len(problems)
        for err in envelope.iter_errors(msg):
            problems.append(f"{where}: envelope {list(err.absolute_path)}: {err.message}")
        schema = msg.get("schema")
        if schema not in schemas:
            problems.append(f"{where}: schema {schema!r} is not registered in registry.yaml")
            continue
        payload = Draft202012Validator({"$ref": schemas[schema]}, registry=registry)
        for err in payload.iter_errors(msg.get("payload")):
            problems.append(f"{where}: payload {list(err.absolute_path)} against {schema}: {err.message}")
        entry = events.get((msg.get("domain"), msg.get("name")))
        if entry is None:
            problems.append(f"{where}: no catalogue entry for domain {msg.get('domain')!r} name {msg.get('name')!r}")
            continue
        if entry["schema"] != schema:
            problems.append(f"{where}: carries {schema}, the catalogue says {entry['schema']}")
        if msg.get("kind") != entry["kind"]:
            problems.append(f"{where}: kind {msg.get('kind')!r}, the catalogue says {entry['kind']!r}")
        subject = msg.get("subject", "")
        if not subject_regex(entry["subject"]).match(subject) and subject not in replies:
            problems.append(f"{where}: subject does not match the catalogue's {entry['subject']}")
        if len(problems) == before:
            print(f"ok {msg.get('name')} {subject}")
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
