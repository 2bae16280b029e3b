#!/usr/bin/env python3
"""Checks deploy/grafana/ace-comms.json and deploy/prometheus/alerts.yml against a real scrape.

    python deploy/check.py SCRAPE_FILE

SCRAPE_FILE is the text of GET /metrics of a server that has seen traffic (the server's test
`metrics` writes one). Every PromQL expression of the dashboard (panel targets and template
variable queries) and of the alert rules is parsed with promql-parser; every metric it selects
must be a sample name of the scrape, every label it matches on or aggregates by must be a label
of that metric (or one Prometheus adds: job, instance), the dashboard must have the shape
Grafana imports, and the rule file the shape Prometheus loads. Prints each problem and exits 1
if there is any. Needs prometheus-client, promql-parser and pyyaml (.ci/requirements.txt).
"""

import json
import re
import sys
from pathlib import Path

import promql_parser
import yaml
from prometheus_client.parser import text_string_to_metric_families

DEPLOY = Path(__file__).resolve().parent
DASHBOARD = DEPLOY / "grafana" / "ace-comms.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"

# Labels Prometheus attaches to every scraped series, and series it makes itself.
TARGET_LABELS = {"job", "instance"}
PROMETHEUS_SERIES = {"up": set()}

# Grafana's macros and variables, replaced by values PromQL accepts before parsing.
GRAFANA_RANGES = re.compile(r"\$__(rate_interval|interval|range)\b")
GRAFANA_VARIABLES = re.compile(r"\$\{?(\w+)\}?")
LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?(\w+)\)$")

SEVERITIES = {"critical", "warning", "info"}
DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")


def scraped_series(text):
    """Sample name -> the label names its samples carry."""
    series = dict(PROMETHEUS_SERIES)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, set()).update(sample.labels)
    return series


def to_promql(expr):
    """A Grafana expression as PromQL: ranges become 5m, variables a regex matching all."""
    return GRAFANA_VARIABLES.sub(".*", GRAFANA_RANGES.sub("5m", expr))


def selectors(expr):
    """Every vector selector under `expr`: (metric name, the label names it matches on)."""
    found = set()

    def visit(node):
        if isinstance(node, promql_parser.MatrixSelector):
            node = node.vector_selector
        if isinstance(node, promql_parser.VectorSelector):
            matchers = node.matchers
            labels = [m.name for m in matchers.matchers]
            labels += [m.name for group in matchers.or_matchers for m in group]
            name = node.name or next(
                (m.value for m in matchers.matchers if m.name == "__name__"), None
            )
            found.add((name, frozenset(label for label in labels if label != "__name__")))

    # A range selector is visited itself and through its vector selector: a set keeps one.
    promql_parser.walk(expr, visit)
    return sorted(found, key=lambda selector: (selector[0] or "", sorted(selector[1])))


def aggregations(expr):
    """Every `by (...)` aggregation under `expr`: (its labels, the selectors it covers)."""
    found = []

    def visit(node):
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            if node.modifier.type == promql_parser.AggModifierType.By:
                found.append((list(node.modifier.labels), selectors(node.expr)))

    promql_parser.walk(expr, visit)
    return found


def check_expr(where, text, series, problems):
    """Parses `text` and checks its metrics and labels against `series`."""
    try:
        expr = promql_parser.parse(text)
    except ValueError as err:
        problems.append(f"{where}: not PromQL ({err}): {text}")
        return
    chosen = selectors(expr)
    if not chosen:
        problems.append(f"{where}: selects no metric: {text}")
    for name, labels in chosen:
        if name not in series:
            problems.append(f"{where}: `{name}` is in no scrape of the server")
            continue
        for label in sorted(labels - series[name] - TARGET_LABELS):
            problems.append(f"{where}: `{name}` has no label `{label}`")
    for labels, covered in aggregations(expr):
        known = set(TARGET_LABELS)
        for name, _ in covered:
            known |= series.get(name, set())
        for label in labels:
            if label not in known:
                problems.append(f"{where}: aggregates by `{label}`, which no metric below has")


def check_dashboard(dashboard, series, problems):
    for key, kind in [("title", str), ("uid", str), ("schemaVersion", int), ("panels", list)]:
        if not isinstance(dashboard.get(key), kind):
            problems.append(f"dashboard: `{key}` is not a {kind.__name__}")
    variables = dashboard.get("templating", {}).get("list", [])
    names = {v.get("name") for v in variables}
    if not any(v.get("type") == "datasource" and v.get("query") == "prometheus" for v in variables):
        problems.append("dashboard: no `datasource` variable of type prometheus")
    for variable in variables:
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        query = query.get("query") if isinstance(query, dict) else query
        matched = LABEL_VALUES.match(query or "")
        if not matched:
            problems.append(f"dashboard variable {variable.get('name')}: not label_values(...)")
        elif matched.group(1):
            check_expr(f"variable {variable['name']}", to_promql(matched.group(1)), series, problems)
    ids = set()
    for panel in dashboard.get("panels", []):
        where = f"panel {panel.get('id')} `{panel.get('title')}`"
        if panel.get("id") in ids or not isinstance(panel.get("id"), int):
            problems.append(f"{where}: id missing or used twice")
        ids.add(panel.get("id"))
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in "hwxy") or grid["x"] + grid["w"] > 24:
            problems.append(f"{where}: gridPos is not {{h, w, x, y}} within 24 columns")
        if panel.get("type") == "row":
            continue
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        for target in targets:
            uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid", "")
            if uid.strip("${}") not in names:
                problems.append(f"{where}: datasource `{uid}` is no dashboard variable")
            check_expr(f"{where} {target.get('refId')}", to_promql(target.get("expr", "")), series, problems)


def check_rules(rules, series, problems):
    groups = rules.get("groups") if isinstance(rules, dict) else None
    if not isinstance(groups, list) or not groups:
        problems.append("alerts: no `groups` list")
        return
    group_names, alert_names = set(), set()
    for group in groups:
        name = group.get("name")
        if not isinstance(name, str) or name in group_names:
            problems.append(f"alerts: group name `{name}` missing or used twice")
        group_names.add(name)
        for rule in group.get("rules") or []:
            alert = rule.get("alert")
            where = f"alert {alert}"
            unknown = set(rule) - {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}
            if not isinstance(alert, str) or alert in alert_names or unknown:
                problems.append(f"{where}: name missing or used twice, or unknown keys {sorted(unknown)}")
            alert_names.add(alert)
            if "for" in rule and not DURATION.match(str(rule["for"])):
                problems.append(f"{where}: `for` {rule['for']} is not a duration")
            if (rule.get("labels") or {}).get("severity") not in SEVERITIES:
                problems.append(f"{where}: severity is not one of {sorted(SEVERITIES)}")
            if not (rule.get("annotations") or {}).get("summary"):
                problems.append(f"{where}: no summary annotation")
            check_expr(where, str(rule.get("expr", "")), series, problems)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    series = scraped_series(Path(argv[1]).read_text())
    problems = []
    check_dashboard(json.loads(DASHBOARD.read_text()), series, problems)
    check_rules(yaml.safe_load(ALERTS.read_text()), series, problems)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
