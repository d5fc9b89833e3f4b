"""A private PostgreSQL for one run, started like the private redis-server (`servers.redis_server`).

`initdb` into the run's temporary log directory, then `postgres` on a free loopback
port with its Unix socket in that directory (`-k`), pinned to the client's core like
Redis, and stopped with a fast shutdown at the end. Durability stays at PostgreSQL's
defaults (fsync, synchronous_commit and full-page writes on): the latency measured on
it is meant to mean production's, where every commit waits for its WAL flush. Only
shared_buffers is lowered: the decision log is a few kilobytes and the machine shared.

PostgreSQL refuses to run as root. As root (this machine, and CI containers often),
initdb and postgres run as the unprivileged `postgres` account that Debian's packages
create, or as `nobody` where there is none: the run's directory for PostgreSQL is
theirs, and the log directory above it is opened to them for traversal only. As any
other user, they run as that user.

The cluster's superuser is `bench` with a random password, checked with SCRAM over TCP
as in production (the postgres image with POSTGRES_PASSWORD). Nodes keep a pool of
connections (settings.py, DATABASE_POOL_SIZE) as in production, so the handshake is
paid when the pool opens a connection, not by every mutation.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
from psycopg import sql

from . import servers

SUPERUSER = "bench"
SHARED_BUFFERS = "32MB"  # the default is 128MB
# Who runs initdb and postgres when this process is root: the first account that exists.
UNPRIVILEGED_ACCOUNTS = ("postgres", "nobody")
DEBIAN_VERSIONS = Path("/usr/lib/postgresql")  # Debian: /usr/lib/postgresql/<major>/bin, not on PATH
READY_TIMEOUT = 30.0


def binaries() -> Path | None:
    """The directory holding `initdb` and `postgres`: on PATH, else Debian's newest major version."""
    on_path = shutil.which("initdb")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = [path for path in DEBIAN_VERSIONS.glob("*") if path.name.isdigit()]
    candidates += [path / "bin" for path in sorted(versions, key=lambda path: int(path.name), reverse=True)]
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in ("initdb", "postgres")):
            return directory
    return None


def account() -> str | None:
    """The account initdb and postgres run as: None (this process's own) unless this process is root."""
    if os.geteuid() != 0:
        return None
    for name in UNPRIVILEGED_ACCOUNTS:
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name).pw_name
    raise LookupError(f"none of the accounts {', '.join(UNPRIVILEGED_ACCOUNTS)} exists")


def missing() -> str:
    """Why this machine cannot run a private PostgreSQL, or "" if it can."""
    if binaries() is None:
        return (
            f"PostgreSQL's initdb and postgres are neither on PATH nor in {DEBIAN_VERSIONS}/<version>/bin "
            "(Debian package postgresql)."
        )
    try:
        account()
    except LookupError as error:
        return f"PostgreSQL refuses to run as root, and {error} to run it as."
    return ""


def version() -> str:
    """`postgres --version` without its program name, e.g. "15.20 (Debian 15.20-0+deb12u1)"."""
    directory = binaries()
    if directory is None:
        return "not installed"
    result = subprocess.run(
        [str(directory / "postgres"), "--version"], capture_output=True, text=True, timeout=10, check=False
    )
    return result.stdout.strip().removeprefix("postgres (PostgreSQL) ")


@contextlib.contextmanager
def private_postgres(log_dir: Path, name: str) -> Iterator[str]:
    """A private PostgreSQL with an empty database `name`; yields that database's DATABASE_URL."""
    directory = binaries()
    if directory is None:
        raise RuntimeError(missing())
    user = account()
    home = log_dir / f"postgres-{name}"  # the data directory and the socket
    home.mkdir(mode=0o700)
    password = secrets.token_urlsafe(24)
    password_file = home / "password"
    password_file.write_text(password)
    if user is not None:
        entry = pwd.getpwnam(user)
        log_dir.chmod(0o711)  # traversal only: the other files stay root's
        for path in (home, password_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    data = home / "data"
    # initdb syncs its files to disk before it exits: the kernel does not flush them during the timed part.
    _run(
        [
            str(directory / "initdb"),
            "--pgdata",
            str(data),
            "--username",
            SUPERUSER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
        ],
        user=user,
        cwd=home,
        log=log_dir / f"initdb-{name}.log",
    )
    password_file.unlink()
    port = servers.free_port()
    argv = [
        str(directory / "postgres"),
        "-D",
        str(data),
        "-p",
        str(port),
        "-k",
        str(home),
        "-c",
        f"listen_addresses={servers.LOOPBACK}",
        "-c",
        f"shared_buffers={SHARED_BUFFERS}",
    ]
    server = servers.ServerProcess(
        "postgres",
        argv,
        {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
        log_dir / f"postgres-{name}-{port}.log",
        port,
        core=servers.CLIENT_CORE,
        user=user,
        cwd=home,
        stop_signal=signal.SIGINT,  # fast shutdown: do not wait for clients to disconnect
    )
    with server:
        root = f"postgres://{SUPERUSER}:{password}@{servers.LOOPBACK}:{port}"
        _create_database(f"{root}/postgres", name)
        yield f"{root}/{name}"


def _run(argv: list[str], *, user: str | None, cwd: Path, log: Path) -> None:
    with log.open("ab") as output:
        result = subprocess.run(
            argv,
            cwd=cwd,
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C"},
            stdout=output,
            stderr=subprocess.STDOUT,
            user=user,
            group=servers.group_of(user),
            extra_groups=None if user is None else [],
            timeout=120,
            check=False,
        )
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}):\n{log.read_text()}")


def _create_database(admin_url: str, name: str) -> None:
    """CREATE DATABASE once the server accepts connections (it listens before it has started up)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            connection = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
            continue
        with connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return
