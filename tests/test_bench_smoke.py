"""`python -m bench --smoke` runs end to end and writes a report of the right shape (no timing asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# A table row of scenarios 1 and 2: answers, clients, answer types, seven numbers, CPU and errors.
THROUGHPUT_ROW = re.compile(r"^\| (JSON|SSE) \| (1|32) \| [a-z+]+ / [a-z+]+ \|(?P<numbers>.*)\|$")
NUMBER = r"\d+(?:\.\d+)?"


def section(report: str, title_start: str) -> str:
    start = report.index(f"## {title_start}")
    end = report.find("\n## ", start + 1)
    return report[start : end if end != -1 else None]


@pytest.mark.timeout(180)
def test_smoke_run_writes_a_complete_report(tmp_path: Path) -> None:
    out = tmp_path / "benchmarks.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
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
            assert all(re.fullmatch(NUMBER, cell) for cell in cells[:7]), cells
            assert re.fullmatch(r"\d+ / \d+", cells[7]), f"server CPU per request: {cells}"
            assert cells[8] == "0 / 0", f"requests failed: {cells}"

    alone = section(report, "Where the gap in scenarios 1 and 2 is")
    eras = re.findall(
        rf"^\| (handshake|modern) \| {NUMBER} \| {NUMBER} \| {NUMBER} \| {NUMBER} \| {NUMBER} \|$", alone, re.M
    )
    assert eras == ["handshake", "modern"], alone

    targets = section(report, "Targets")
    verdicts = re.findall(r"^\| Scenarios? (\d).*\| (met|\*\*not met\*\*: .+) \|$", targets, re.M)
    assert [number for number, _ in verdicts] == ["1", "3", "4", "5", "6"], targets

    capacity = section(report, "Scenario 4:")
    steps = re.findall(
        rf"^\| (\d+) \| {NUMBER} \| (?:{NUMBER}|-) \| {NUMBER} \| {NUMBER} \| {NUMBER} \| (\d+) \|$", capacity, re.M
    )
    assert [sessions for sessions, _ in steps] == ["0", "10", "20"], capacity
    assert all(errors == "0" for _, errors in steps), capacity

    notify = section(report, "Scenario 5:")
    assert re.search(rf"\| Mutation sent to B until the notification is read on A \| {NUMBER} \| {NUMBER} \|", notify)
    assert re.search(rf"\| The mutation's own round trip on B \| {NUMBER} \| {NUMBER} \|", notify)
    assert "Notifications lost (none within 5 s): 0. Mutations that failed: 0." in notify

    proxy = section(report, "Scenario 3:")
    paths = re.findall(
        rf"^\| (straight to the node|through Traefik, plain HTTP|through Traefik, HTTPS) \([^)]*\) \| (1|32) "
        rf"\| {NUMBER} \| {NUMBER} \| {NUMBER} \| (?:-|[+-]{NUMBER}) \| {NUMBER} \| (\d+) \|$",
        proxy,
        re.M,
    )
    assert len({(path, clients) for path, clients, _ in paths}) == 6, proxy
    assert all(errors == "0" for _, _, errors in paths), proxy
    assert re.search(r"^Target: Traefik adds under 1 ms at p50 .* — (met|not met \(gap .*\))\.", proxy, re.M)

    failover = section(report, "Scenario 6:")
    affected = re.search(r"^\| Affected clients \(sessions on node\d\) \| (\d+) \|$", failover, re.M)
    assert affected, failover
    assert f"| Recovered within 30 s | {affected[1]} |" in failover
    assert re.search(r"^\| Unaffected clients \(\d+\): failed requests \| 0 \|$", failover, re.M)
    assert "| Failed requests before the kill (all clients) | 0 |" in failover
    assert re.search(
        r"^Target: every affected client recovered within 10 s .* — (met|not met \(gap: .*\))\.", failover, re.M
    )

    redis = section(report, "Scenario 7:")
    assert re.search(rf"\| Per `tools/call` on an established session .* \| {NUMBER} \|", redis)
    assert re.search(rf"\| Per session lifecycle .* \| {NUMBER} \|", redis)

    machine = section(report, "Machine")
    for fact in ("Python", "Cores", "mcp", "daphne", "uvicorn"):
        assert f"| {fact}" in machine
    not_yet = section(report, "What this slice does not measure yet")
    for number in range(1, 8):
        assert f"Scenario {number}:" not in not_yet
