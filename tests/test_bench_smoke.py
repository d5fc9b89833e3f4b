"""`python -m bench --smoke` runs end to end and writes a report of the right shape (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench import capacity, postgres

REPO = Path(__file__).resolve().parent.parent
# A table row of scenarios 1 and 2: answers, clients, answer types, seven numbers, CPU and errors.
THROUGHPUT_ROW = re.compile(r"^\| (JSON|SSE) \| (1|32) \| [a-z+]+ / [a-z+]+ \|(?P<numbers>.*)\|$")
NUMBER = r"\d+(?:\.\d+)?"


def section(report: str, title_start: str) -> str:
    start = report.index(f"## {title_start}")
    end = report.find("\n## ", start + 1)
    return report[start : end if end != -1 else None]


@pytest.mark.timeout(300)
def test_smoke_run_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=290,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    report = out.read_text()
    assert out.with_suffix(".png").read_bytes().startswith(b"\x89PNG")

    for scenario in ("Scenario 1:", "Scenario 2:"):
        rows = [THROUGHPUT_ROW.match(line) for line in section(report, scenario).splitlines()]
        matched = [row for row in rows if row]
        assert {(row[1], row[2]) for row in matched} == {("JSON", "1"), ("JSON", "32"), ("SSE", "1"), ("SSE", "32")}
        for row in matched:
            cells = [cell.strip() for cell in row["numbers"].split("|")]
            # Ours, the reference, ours/ref, the floor, ours/floor, the reference on daphne, ours/that.
            assert all(re.fullmatch(NUMBER, cell) for cell in cells[:11]), cells
            assert re.fullmatch(r"\d+ / \d+ / \d+ / \d+", cells[11]), f"server CPU per request: {cells}"
            assert cells[12] == "0 / 0", f"requests failed: {cells}"

    alone = section(report, "Where the gap in scenarios 1 and 2 is")
    eras = re.findall(
        rf"^\| (handshake|modern) \| {NUMBER} \| {NUMBER} \| {NUMBER} \| {NUMBER} \| {NUMBER} \|$", alone, re.M
    )
    assert eras == ["handshake", "modern"], alone

    # Counting instructions runs every server under valgrind: too slow for a smoke run, which says so.
    assert "Not counted: a smoke run leaves it out." in section(report, "Instructions per request")

    # Scenario 5 runs on a private PostgreSQL wherever its binaries are installed, and says why not elsewhere.
    postgres_missing = postgres.missing()
    databases = ["SQLite"] if postgres_missing else ["PostgreSQL", "SQLite"]
    targets = section(report, "Targets")
    verdicts = re.findall(r"^\| Scenarios? (\d+)\b.*\| (met|\*\*not met\*\*: .+) \|$", targets, re.M)
    fives = ["5"] * len(databases)
    numbers = [number for number, _ in verdicts]
    assert numbers == ["1", "3", "3", "4", *fives, "6", "6", "8", "9", "10", "11", "12"], targets
    notify_targets = re.findall(
        rf"^\| Scenario 5 on (PostgreSQL|SQLite): notification p99 under 20 ms \| {NUMBER} ms \|", targets, re.M
    )
    assert notify_targets == databases, targets
    if postgres_missing:
        assert re.search(r"^\| Scenario 5 on PostgreSQL: .* \| - \| not measured: .+ \|$", targets, re.M), targets
    assert re.search(r"^\| Scenario 6, clients that keep no cookies: ", targets, re.M), targets

    capacity = section(report, "Scenario 4:")
    # Open streams, RSS, per session, median, p99, ratio, collector pauses (younger, full: count and ms), errors.
    steps = re.findall(
        rf"^\| (\d+) \| {NUMBER} \| (?:{NUMBER}|-) \| {NUMBER} \| {NUMBER} \| {NUMBER} "
        rf"\| (\d+) \({NUMBER} ms\) \| \d+ \({NUMBER} ms\) \| (\d+) \|$",
        capacity,
        re.M,
    )
    assert [sessions for sessions, _, _ in steps] == ["0", "10", "20"], capacity
    assert all(errors == "0" for _, _, errors in steps), capacity
    # Every call allocates: the node's young generations are collected, and timed, during each step's calls.
    assert sum(int(young) for _, young, _ in steps) > 0, capacity

    notify = section(report, "Scenario 5:")
    # Database, notification p50/p99, mutation round trip p50/p99, event after the answer, lost, failed.
    measured = re.findall(
        rf"^\| (PostgreSQL|SQLite) \| {NUMBER} \| {NUMBER} \| {NUMBER} \| {NUMBER} \| -?{NUMBER} \| (\d+) \| (\d+) \|$",
        notify,
        re.M,
    )
    assert measured == [(database, "0", "0") for database in databases], notify
    if postgres_missing:
        assert re.search(r"^\| PostgreSQL \| not measured: .+ \|$", notify, re.M), notify

    proxy = section(report, "Scenario 3:")
    paths = re.findall(
        r"^\| (straight to the node|through Traefik, plain HTTP|through Traefik, plain HTTP, cookie routing"
        r"|through Traefik, HTTPS|through Traefik, HTTPS, no cookie) \([^)]*\) \| (1|32) "
        rf"\| {NUMBER} \| {NUMBER} \| {NUMBER} \| (?:-|[+-]{NUMBER}) \| {NUMBER} \| (\d+) \|$",
        proxy,
        re.M,
    )
    assert len({(path, clients) for path, clients, _ in paths}) == 10, proxy
    assert all(errors == "0" for _, _, errors in paths), proxy
    assert re.search(r"^Target: Traefik adds under 1 ms at p50 .* — (met|not met \(gap .*\))\.", proxy, re.M)
    # The cluster's entrypoint routes by the session id, cookie or not; the bench-only second one by the cookie.
    routers = re.search(r"^Routers in Traefik's access logs for the measured /mcp requests: (.*)\.$", proxy, re.M)
    assert routers, proxy
    assert re.search(r"cluster Traefik, entrypoint websecure: mcp-node\d \d+(;|$)", routers[1]), routers[1]
    assert re.search(r"entrypoint sticky-only: mcp-sticky-only \d+(;|$)", routers[1]), routers[1]
    comparisons = re.findall(
        rf"^\| (header router minus sticky router|HTTPS, no cookie minus) .* \| (1|32) \| [+-]{NUMBER} \|", proxy, re.M
    )
    assert len(comparisons) == 4, proxy
    assert re.search(
        r"^Target: header routing shows no measurable difference .* — (met|not met \(.*\))\.$", proxy, re.M
    )

    failover = section(report, "Scenario 6:")
    assert "| Measure | clients with cookies | clients without cookies |" in failover
    affected = re.search(
        r"^\| Node killed; affected clients \(sessions on it\) \| node\d; (\d+) \| node\d; (\d+) \|$", failover, re.M
    )
    assert affected, failover
    assert f"| Answered again within 30 s | {affected[1]} | {affected[2]} |" in failover
    # Sessions outlive their node (ADR 9): what a client that initializes again would cost is counted.
    assert re.search(
        r"^\| Re-initializations after the kill \(clients that sent them\) \| \d+ \(\d+\) \| \d+ \(\d+\) \|$",
        failover,
        re.M,
    ), failover
    assert re.search(
        r"^\| Affected clients' 5xx answers / transport failures / 404s \| \d+ / \d+ / \d+ \| \d+ / \d+ / \d+ \|$",
        failover,
        re.M,
    ), failover
    assert re.search(
        r"^\| Unaffected clients: how many, and their failed requests \| \d+: 0 \| \d+: 0 \|$", failover, re.M
    )
    assert "| Failed requests before the kill (all clients) | 0 | 0 |" in failover
    for run in ("Clients with cookies", "Clients without cookies"):
        assert re.search(
            rf"^\*\*{run}\.\*\* Target: every affected client answered again within 5 s, at most 1 failed request "
            r"per client and 0 re-initializations — (met|not met \(gap: .*\))\.",
            failover,
            re.M,
        ), failover

    redis = section(report, "Scenario 7:")
    assert re.search(rf"\| Per `tools/call` on an established session .* \| {NUMBER} \|", redis)
    assert re.search(rf"\| Per session lifecycle .* \| {NUMBER} \|", redis)

    relay = section(report, "Scenario 8:")
    relay_rows = re.findall(
        rf"^\| (SSE|JSON) [^|]* \| (direct|relayed) \| {NUMBER} \| {NUMBER} \| {NUMBER} "
        r"\| \d+ / \d+ / \d+ \| (\d+) \|$",
        relay,
        re.M,
    )
    assert {(mode, path) for mode, path, _ in relay_rows} == {
        ("SSE", "direct"),
        ("SSE", "relayed"),
        ("JSON", "direct"),
        ("JSON", "relayed"),
    }, relay
    assert all(errors == "0" for _, _, errors in relay_rows), relay
    added = re.findall(rf"^\| (SSE|JSON) [^|]* \| [+-]{NUMBER} \| [+-]{NUMBER} \| {NUMBER} \|", relay, re.M)
    assert sorted(added) == ["JSON", "SSE"], relay
    assert re.search(
        r"^Target: a relayed `tools/call` adds under 1.5 ms at p50: SSE [+-]\S+ ms — (met|not met); ", relay, re.M
    )

    rolling = section(report, "Scenario 9:")
    restarts = re.findall(
        rf"^\| (node\d) \| {NUMBER} \| {NUMBER} \((-?\d+|None)\) \| {NUMBER} \| (?:\d+|-) \|$", rolling, re.M
    )
    assert [node for node, _ in restarts] == ["node1", "node2", "node3"], rolling
    assert all(code == "0" for _, code in restarts), rolling  # SIGTERM: drained, handed off, exited cleanly
    for measure in (
        r"Failed requests from the first SIGTERM on \(in flight at a stop / not\) \| \d+ \(\d+ / \d+\)",
        r"Of them 5xx answers / transport failures / 404s / other \| \d+ / \d+ / \d+ / \d+",
        r"Re-initializations \(clients that sent them\) \| \d+ \(\d+\)",
        r"Sessions adopted \(the nodes' logs\) \| \d+",
        rf"Longest time without an answer per client, p50 / p99 / max s \| {NUMBER} / {NUMBER} / {NUMBER}",
        r"Failed requests in the steady spell before \| 0",
    ):
        assert re.search(rf"^\| {measure} \|$", rolling, re.M), (measure, rolling)
    assert re.search(
        r"^Target: zero failed requests apart from those in flight at a node's stop, no 404 and no re-initialization "
        r"— (met|not met \(gap: .*\))\.$",
        rolling,
        re.M,
    ), rolling

    authorization = section(report, "Scenario 10:")
    variants = re.findall(
        rf"^\| (handshake|modern) \| {NUMBER} \| {NUMBER} \| {NUMBER} \| [+-]{NUMBER} \| [+-]{NUMBER} \|$",
        authorization,
        re.M,
    )
    assert variants == ["handshake", "modern"], authorization
    assert re.search(
        r"^Target: under 50 us of added server CPU per call with a cached or JWT token: "
        r"cached token .* — (met|not met); JWT verified every call .* — (met|not met)\.$",
        authorization,
        re.M,
    ), authorization

    machine = section(report, "Machine")
    for fact in ("Python", "Cores", "mcp", "daphne", "uvicorn"):
        assert f"| {fact}" in machine
    not_yet = section(report, "What this slice does not measure yet")
    for number in range(1, 13):
        assert f"Scenario {number}:" not in not_yet


def test_collector_pauses_are_read_by_generation_from_a_scrape() -> None:
    scrape = (
        "# HELP mcp_gc_pause_seconds pauses\n# TYPE mcp_gc_pause_seconds histogram\n"
        'mcp_gc_pause_seconds_bucket{generation="0",le="+Inf"} 7.0\n'
        'mcp_gc_pause_seconds_count{generation="0"} 7.0\n'
        'mcp_gc_pause_seconds_sum{generation="0"} 0.002\n'
        'mcp_gc_pause_seconds_bucket{generation="2",le="+Inf"} 1.0\n'
        'mcp_gc_pause_seconds_count{generation="2"} 1.0\n'
        'mcp_gc_pause_seconds_sum{generation="2"} 0.5\n'
        "# HELP mcp_sessions_open open\n# TYPE mcp_sessions_open gauge\nmcp_sessions_open 3.0\n"
    )
    assert capacity.gc_pauses(scrape) == {"0": capacity.Pauses(7, 0.002), "2": capacity.Pauses(1, 0.5)}
