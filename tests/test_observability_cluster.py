"""Prometheus on the real cluster: every dashboard panel and alert rule finds its metrics.

One cluster (Traefik, three nodes hosting the decision log, Redis, and a
Prometheus scraping every second, all from deploy/cluster.py) gets real
traffic through Traefik: sessions with tool calls, a DELETE, a request sent
straight to a node that does not hold its session (relayed), a node killed
and its session adopted, the node back (the adopted session's requests reach
it and are relayed), and a GraphQL mutation (a change notification). Then
every PromQL expression of the Grafana dashboard and of the alert rules is run
against Prometheus's HTTP API and must return at least one series: no panel or
rule names a metric, or a label value, that nothing exports. For an alert,
that is the query left of its threshold (the convention in
deploy/prometheus/alerts.yml; tests/promql.py splits it).
"""

from __future__ import annotations

import collections
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy.cluster import Cluster
from sessions_app.cluster.routing import default_route, route_of
from tests.mcp_http import modern_headers, modern_request, open_session, session_headers
from tests.promql import alert_queries, dashboard_queries, runnable
from tests.traefik_cluster import plain_client, session_records, start_test_cluster, wait_for

EDIT_TITLE = """
mutation Edit($number: Int!, $title: String!) {
  editDecision(number: $number, input: {title: $title}) { decision { number title } errors { code message } }
}
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    started = start_test_cluster(
        tmp_path_factory.mktemp("cluster"), prometheus=True, MCP_SERVER="graphql_app.mcp.server.server"
    )
    yield started
    started.stop()


# --- talking to the cluster and to Prometheus ------------------------------------------


def query(cluster: Cluster, expr: str) -> list[dict[str, Any]]:
    """An instant query through Prometheus's HTTP API; the series it returned."""
    answer = httpx.get(f"{cluster.prometheus_url}/api/v1/query", params={"query": expr}, timeout=10)
    assert answer.status_code == 200, f"{expr}: {answer.text}"
    body = answer.json()
    assert body["status"] == "success", f"{expr}: {body}"
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def scalar(cluster: Cluster, expr: str) -> float:
    """The value of a query that returns one series (0 when it returns none)."""
    series = query(cluster, expr)
    assert len(series) <= 1, series
    return float(series[0]["value"][1]) if series else 0.0


def owner_of(cluster: Cluster, session_id: str) -> str:
    routes = {default_route(name): name for name in cluster.node_names}
    route = route_of(session_id)
    assert route in routes, session_id
    return routes[route]


def call_tool(client: httpx.Client, url: str, session_id: str, name: str, arguments: dict[str, Any]) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    return client.post(url, json=body, headers=session_headers(session_id))


def call_statelessly(client: httpx.Client, url: str, name: str, arguments: dict[str, Any]) -> httpx.Response:
    body = modern_request("tools/call", {"name": name, "arguments": arguments})
    return client.post(url, json=body, headers=modern_headers("tools/call", name=name))


def has_record(cluster: Cluster, session_id: str) -> bool:
    return any(record["session_id"] == session_id for record in session_records(cluster))


def wait_for_a_fresh_scrape() -> None:
    """Two scrape intervals (1 s each locally): the next samples have landed, and rates have two points."""
    time.sleep(2.5)


# --- the traffic -------------------------------------------------------------------------


@dataclass(frozen=True)
class Traffic:
    sessions: list[str]
    adopted: str
    killed: str


@pytest.fixture(scope="module")
def traffic(cluster: Cluster) -> Traffic:
    url = f"{cluster.mcp_url}?c=obs"
    with plain_client(cluster, keep_cookies=False) as client:
        # Sessions through Traefik, with tool calls; one stateless call; one unknown tool (an error).
        sessions = [open_session(client, url) for _ in range(6)]
        for number, session_id in enumerate(sessions, start=1):
            assert call_tool(client, url, session_id, "read_decision", {"number": number}).status_code == 200
            assert call_tool(client, url, session_id, "search_decisions", {"text": "session"}).status_code == 200
        assert call_statelessly(client, url, "search_decisions", {"text": "node"}).status_code == 200
        assert call_tool(client, url, sessions[0], "no_such_tool", {}).status_code == 200
        # A DELETE.
        assert client.delete(url, headers=session_headers(sessions[0])).status_code in (200, 204)

        # A request sent straight to a node that does not hold the session (a proxy
        # without the per-node routes would do that): relayed to its owner.
        misrouted = sessions[1]
        wait_for(lambda: has_record(cluster, misrouted), "the misrouted session's record")
        wrong = next(name for name in cluster.node_names if name != owner_of(cluster, misrouted))
        with httpx.Client(timeout=10) as direct:
            relayed = call_tool(direct, f"{cluster.node_url(wrong)}/mcp", misrouted, "read_decision", {"number": 2})
        assert relayed.status_code == 200, relayed.text

        # A node killed: the next call for its session, through Traefik, is served by an adopter.
        adopted = sessions[2]
        killed = owner_of(cluster, adopted)
        wait_for(lambda: has_record(cluster, adopted), "the adopted session's record")
        cluster.kill_node(killed)
        statuses = []
        for _ in range(5):
            answer = call_tool(client, url, adopted, "read_decision", {"number": 3})
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                break
            time.sleep(0.3)  # one 502 may come first (docs/deploy.md)
        assert statuses[-1] == 200, statuses

        # The node back: its route is the same, so the adopted session's requests reach it and are relayed.
        cluster.start_node(killed)
        wait_for(lambda: cluster.servers_up(killed) == [killed], f"Traefik to count {killed} up again")
        assert call_tool(client, url, adopted, "search_decisions", {"text": "relay"}).status_code == 200

        # A GraphQL mutation: a change published to every node.
        mutation = {"query": EDIT_TITLE, "variables": {"number": 1, "title": "Pin handshake sessions, observed"}}
        edited = client.post(f"{cluster.url}/graphql?c=obs", json=mutation)
        assert edited.status_code == 200, edited.text
        assert "errors" not in edited.json(), edited.json()

    def scraped() -> bool:
        return (
            scalar(cluster, 'count(up{job="mcp-nodes"} == 1)') == 3
            and scalar(cluster, 'count(up{job="traefik"} == 1)') == 1
            and scalar(cluster, "sum(mcp_adoptions_total)") >= 1
            and scalar(cluster, 'sum(mcp_relays_total{outcome="relayed"})') >= 1
            and scalar(cluster, "sum(mcp_notification_lag_seconds_count)") >= 1
            and scalar(cluster, 'sum(mcp_sessions_closed_total{reason="delete"})') >= 1
        )

    wait_for(scraped, "Prometheus to scrape what the traffic did", timeout=30)
    wait_for_a_fresh_scrape()
    return Traffic(sessions=sessions, adopted=adopted, killed=killed)


# --- every query finds its metrics ---------------------------------------------------------


def test_every_dashboard_expression_returns_series(cluster: Cluster, traffic: Traffic) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 20
    empty = [f"{title}: {expr}" for title, expr in queries if not query(cluster, runnable(expr))]
    assert empty == [], "panels whose query found no series:\n" + "\n".join(empty)


def test_every_alert_query_returns_series(cluster: Cluster, traffic: Traffic) -> None:
    queries = alert_queries()
    assert len(queries) == 6
    empty = [f"{alert.alert}: {alert.query}" for alert in queries if not query(cluster, alert.query)]
    assert empty == [], "alert rules whose query found no series:\n" + "\n".join(empty)


def test_every_registry_operation_has_an_error_series_from_the_start(cluster: Cluster, traffic: Traffic) -> None:
    """MCPRegistryUnavailable must see a first error: every operation the nodes time has its error counter at 0.

    sessions_app/metrics.py lists the operations; this catches one added to the registry and not there.
    """
    timed = query(cluster, "count by (operation) (mcp_registry_operation_duration_seconds_count)")
    counted = query(cluster, "count by (operation) (mcp_registry_errors_total)")
    timed_operations = {series["metric"]["operation"] for series in timed}
    assert timed_operations
    assert timed_operations <= {series["metric"]["operation"] for series in counted}


def test_prometheus_loaded_every_alert_rule_and_evaluates_it(cluster: Cluster, traffic: Traffic) -> None:
    answer = httpx.get(f"{cluster.prometheus_url}/api/v1/rules", params={"type": "alert"}, timeout=10).json()
    rules = [rule for group in answer["data"]["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == {alert.alert for alert in alert_queries()}
    for rule in rules:
        assert rule["health"] == "ok", rule


def test_every_node_is_labelled_with_its_name_in_both_jobs(cluster: Cluster, traffic: Traffic) -> None:
    scraped = {series["metric"]["node"] for series in query(cluster, 'up{job="mcp-nodes"} == 1')}
    # Traefik names a node by its URL; the traefik job adds the node's name.
    traefik_up = query(cluster, 'traefik_service_server_up{service="app@file"} == 1')
    seen_by_traefik = {series["metric"]["node"]: series["metric"]["url"] for series in traefik_up}
    assert scraped == set(cluster.node_names)
    assert seen_by_traefik == {name: cluster.node_url(name) for name in cluster.node_names}


# --- Prometheus agrees with the nodes ------------------------------------------------------------


def healthz_sessions(cluster: Cluster) -> dict[str, int]:
    """Each node's own count of its sessions, as /healthz reports it (keyed by the node id it reports)."""
    counts = {}
    for name in cluster.node_names:
        body = httpx.get(f"{cluster.node_url(name)}/healthz", timeout=5).json()
        counts[str(body["node"])] = int(body["sessions"])
    return counts


def test_open_sessions_per_node_match_what_each_node_reports(cluster: Cluster, traffic: Traffic) -> None:
    # Different counts on each node, so a node label on the wrong target would show.
    with httpx.Client(timeout=10) as client:
        for number, name in enumerate(cluster.node_names):
            for _ in range(number * 3):
                open_session(client, f"{cluster.node_url(name)}/mcp")
    attempts = []
    for _ in range(5):
        before = healthz_sessions(cluster)
        wait_for_a_fresh_scrape()
        in_prometheus = {
            series["metric"]["node"]: int(float(series["value"][1])) for series in query(cluster, "mcp_sessions_open")
        }
        if healthz_sessions(cluster) == before:  # nothing opened or closed meanwhile
            attempts.append((before, in_prometheus))
            if in_prometheus == before:
                break
    assert attempts, "the session counts never held still for a scrape"
    reported, in_prometheus = attempts[-1]
    assert set(reported) == set(cluster.node_names)
    assert in_prometheus == reported
    assert len(set(reported.values())) > 1, reported


# --- no label grows with traffic ------------------------------------------------------------------


def series_per_metric(cluster: Cluster, name: str) -> dict[str, int]:
    """How many series (label sets) each sample name has on one node's /metrics."""
    text = httpx.get(cluster.node_metrics_url(name), timeout=5).text
    counts: collections.Counter[str] = collections.Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            counts[sample.name] += 1
    return dict(counts)


def varied_traffic(cluster: Cluster, name: str) -> None:
    """Requests on one node whose every client-chosen value is new: session ids, tool names, methods."""
    url = f"{cluster.node_url(name)}/mcp"
    fresh = uuid.uuid4().hex
    with httpx.Client(timeout=10) as client:
        sessions = [open_session(client, url) for _ in range(3)]
        for session_id in sessions:
            assert call_tool(client, url, session_id, "search_decisions", {"text": fresh}).status_code == 200
            # A tool that does not exist, under a name never seen before.
            assert call_tool(client, url, session_id, f"tool_{fresh}", {}).status_code == 200
            # A method nobody defined.
            unknown = {"jsonrpc": "2.0", "id": 8, "method": f"x/{fresh}", "params": {}}
            client.post(url, json=unknown, headers=session_headers(session_id))
        # A session id nobody made, in this node's own format and in none.
        for stray in (f"{default_route(name)}.{fresh}{fresh[:16]}", fresh):
            call_tool(client, url, stray, "search_decisions", {"text": fresh})
        assert call_statelessly(client, url, f"tool_{fresh}", {}).status_code in (200, 400, 404)
        assert call_statelessly(client, url, "search_decisions", {"text": fresh}).status_code == 200
        for session_id in sessions:
            assert client.delete(url, headers=session_headers(session_id)).status_code in (200, 204)


def test_no_label_value_set_grows_with_traffic(cluster: Cluster, traffic: Traffic) -> None:
    name = cluster.node_names[0]
    # Once: whatever shapes of request this traffic makes have their label values now.
    varied_traffic(cluster, name)
    before = series_per_metric(cluster, name)
    for _ in range(3):
        varied_traffic(cluster, name)
    after = series_per_metric(cluster, name)

    grown = {metric: (before.get(metric, 0), count) for metric, count in after.items() if count > before.get(metric, 0)}
    assert grown == {}, f"series per metric (before, after): {grown}"
    assert any(metric.startswith("mcp_server_operation_duration_seconds") for metric in after)
