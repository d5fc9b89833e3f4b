"""The PromQL the operators rely on: every alert rule's query and every dashboard panel's.

The alert rules (deploy/prometheus/alerts.yml) keep one convention: `expr` is
`<query> <comparison> <number>`, the comparison last and outside parentheses.
`AlertQuery.query` is the part before it, which a running Prometheus must
answer with at least one series whether or not the alert fires. The dashboard
(deploy/grafana/dashboards/mcp.json) holds plain PromQL in each panel target's
`expr`; Grafana's `$__rate_interval` is the only macro it uses, and
`runnable` replaces it with a fixed window.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from deploy.prometheus_config import ALERTS_FILE

DASHBOARD_FILE = Path(__file__).resolve().parent.parent / "deploy" / "grafana" / "dashboards" / "mcp.json"

# `<query> <op> <number>` at the very end of an expression.
THRESHOLD = re.compile(r"^(?P<query>.+?)\s*(?P<op>==|!=|>=|<=|>|<)\s*(?P<threshold>-?\d+(?:\.\d+)?)$", re.DOTALL)
RATE_INTERVAL = "$__rate_interval"


@dataclass(frozen=True)
class AlertQuery:
    alert: str
    expr: str
    query: str
    comparison: str
    threshold: float


def alert_rules(path: Path = ALERTS_FILE) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def split_threshold(alert: str, expr: str) -> AlertQuery:
    """The rule's expression cut into its query and its comparison with a number; ValueError if it is not that."""
    expr = " ".join(expr.split())
    match = THRESHOLD.match(expr)
    if match is None:
        raise ValueError(f"{alert}: expr does not end in '<comparison> <number>': {expr}")
    query = match.group("query")
    if not _balanced(query):
        raise ValueError(f"{alert}: the comparison sits inside parentheses: {expr}")
    return AlertQuery(alert, expr, query, match.group("op"), float(match.group("threshold")))


def _balanced(text: str) -> bool:
    depth = 0
    for character in re.sub(r'"(?:[^"\\]|\\.)*"', '""', text):  # brackets inside label values do not count
        depth += {"(": 1, ")": -1}.get(character, 0)
        if depth < 0:
            return False
    return depth == 0


def alert_queries(path: Path = ALERTS_FILE) -> list[AlertQuery]:
    return [split_threshold(rule["alert"], rule["expr"]) for rule in alert_rules(path)]


def load_dashboard(path: Path = DASHBOARD_FILE) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def dashboard_queries(dashboard: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """(panel title, expr) for every target of every panel."""
    dashboard = load_dashboard() if dashboard is None else dashboard
    return [
        (str(panel.get("title", "")), str(target["expr"]))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def runnable(expr: str, window: str = "1m") -> str:
    """A dashboard expression as Prometheus's HTTP API takes it: Grafana's rate-interval macro as a fixed window."""
    return expr.replace(RATE_INTERVAL, window)
