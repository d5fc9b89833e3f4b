"""Prometheus's own tools on our files: the alert rules, their unit tests, and the generated configurations.

promtool comes with Debian's `prometheus` (tests/system_packages.sh installs it).
Whether every query names metrics that exist is checked against a live
cluster in tests/test_observability_cluster.py.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from deploy import prometheus_config, traefik_config
from tests.promql import alert_queries, alert_rules, split_threshold

PROMETHEUS_DIR = prometheus_config.PROMETHEUS_DIR


def promtool(*arguments: str, cwd: Path = PROMETHEUS_DIR) -> str:
    binary = shutil.which("promtool")
    if binary is None:
        raise AssertionError("promtool is not installed (Debian package prometheus): sh tests/system_packages.sh")
    result = subprocess.run([binary, *arguments], cwd=cwd, capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    return output


def test_promtool_accepts_the_alert_rules() -> None:
    assert "SUCCESS" in promtool("check", "rules", "alerts.yml")


def test_the_alert_rules_pass_their_unit_tests() -> None:
    assert "SUCCESS" in promtool("test", "rules", "alerts_test.yml")


def test_promtool_accepts_the_production_configuration() -> None:
    # The committed file, with its rule file beside it, as Compose mounts them.
    output = promtool("check", "config", "prometheus.yml")
    assert "1 rule files found" in output


def test_promtool_accepts_a_local_cluster_configuration(tmp_path: Path) -> None:
    setup = prometheus_config.local_setup(
        traefik_config.local_setup(), node_metrics_ports=(9401, 9402, 9403), traefik_metrics_port=8082
    )
    path = prometheus_config.write(setup, tmp_path / "prometheus.yml")
    output = promtool("check", "config", str(path), cwd=tmp_path)
    assert "1 rule files found" in output


def test_every_alert_says_what_it_means_and_what_to_do() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == {
        "MCPNodeDown",
        "MCPSessionMissesHigh",
        "MCPRegistryUnavailable",
        "MCPSessionsNearCapacity",
        "MCPNotificationLagHigh",
        "MCPServerErrors",
    }
    for rule in rules:
        annotations = rule["annotations"]
        assert annotations["summary"].strip(), rule["alert"]
        action = annotations["action"].strip()
        assert action, rule["alert"]
        assert "\n" not in action, f"{rule['alert']}: the action is one line"
        assert rule["labels"]["severity"] in ("critical", "warning")


def test_every_alert_expression_is_a_query_compared_with_a_number() -> None:
    """The convention the live test relies on to run each rule's query alone (tests/promql.py)."""
    queries = {query.alert: query for query in alert_queries()}
    assert queries["MCPNodeDown"].query == 'up{job="mcp-nodes"}'
    assert (queries["MCPNodeDown"].comparison, queries["MCPNodeDown"].threshold) == ("==", 0.0)
    assert queries["MCPSessionsNearCapacity"].query == "max by (node) (mcp_sessions_open / mcp_sessions_max)"
    assert queries["MCPSessionsNearCapacity"].threshold == 0.9


@pytest.mark.parametrize(
    "expr",
    ["rate(x[1m])", "(rate(x[1m]) > 1)", "sum(rate(x[1m]) > 1) or vector(0)", "x > y"],
)
def test_expressions_off_the_convention_are_refused(expr: str) -> None:
    with pytest.raises(ValueError, match="comparison"):
        split_threshold("Example", expr)
