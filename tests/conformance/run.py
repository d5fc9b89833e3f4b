"""Run the official MCP conformance suite against a running server.

    python -m tests.conformance.run --url http://127.0.0.1:8000/mcp
    python -m tests.conformance.run --serve   # starts its own daphne node first

Three runs, each with Node 22 from `.tools/node` (installed there with
`npm ci` when its node_modules is missing):

1. `@modelcontextprotocol/conformance@0.1.16`, the active server suite;
2. `0.2.0-alpha.12` (npm alias `conformance-next`), `--requirements 2025-11-25`;
3. the same, `--requirements 2026-07-28`.

With `--serve`, runs 2 and 3 go again against a node that requires tokens,
behind a Traefik that adds one (with_token.py): the same results with
authorization on.

Each run's output is printed as it arrives, then one summary line per run
and the checks the suite rated WARNING (a SHOULD that was missed; the suite
does not count those in its `Total:` line). The exit status is non-zero if any
run failed. With `--requirements` the suite's own exit status counts only the
scored scenarios (the tasks extension and pending scenarios are reported but
not scored). The per-scenario `checks.json` files are kept under
`--output-dir` (default: a temporary directory).

Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = REPO_ROOT / ".tools" / "node"
NODE_MODULES = NODE_DIR / "node_modules"
NODE = NODE_MODULES / ".bin" / "node"
STABLE_CLI = NODE_MODULES / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
NEXT_CLI = NODE_MODULES / "conformance-next" / "dist" / "index.js"

TOTAL_LINE = re.compile(r"^Total: .*$", re.MULTILINE)
NOT_SCORED_LINE = re.compile(r"^Not scored for .*$", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    slug: str
    label: str
    cli: Path
    extra_args: tuple[str, ...]


RUNS: tuple[Run, ...] = (
    Run("stable", "0.1.16 active suite", STABLE_CLI, ()),
    Run("req-2025-11-25", "0.2.0-alpha.12 requirements 2025-11-25", NEXT_CLI, ("--requirements", "2025-11-25")),
    Run("req-2026-07-28", "0.2.0-alpha.12 requirements 2026-07-28", NEXT_CLI, ("--requirements", "2026-07-28")),
)


# Authorization on, a token given: the requirements of both protocol revisions.
TOKEN_RUNS: tuple[Run, ...] = tuple(
    Run(f"{run.slug}-with-token", f"{run.label}, authorization on", run.cli, run.extra_args)
    for run in RUNS
    if run.extra_args
)


@dataclass(frozen=True)
class Outcome:
    run: Run
    returncode: int
    summary: str
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def ensure_node() -> None:
    """Install the pinned Node 22 and suites into .tools/node unless already there."""
    if NODE.exists() and STABLE_CLI.exists() and NEXT_CLI.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed once to install .tools/node (npm ci); none found on PATH")
    command = [npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund"]
    # The `node` package fetches its binary with a nested `npm install` from
    # its preinstall script; that step failed once here (tar ENOENT) and passed
    # on every rerun, so one retry is allowed before giving up.
    for attempt in (1, 2):
        print(f"Installing Node 22 and the conformance suites into {NODE_DIR} (attempt {attempt}) ...", flush=True)
        if subprocess.run(command, check=False).returncode == 0 and NODE.exists():
            break
    else:
        sys.exit(f"`{' '.join(command)}` failed twice")
    subprocess.run([str(NODE), "--version"], check=True)


def warnings_in(results: Path) -> tuple[str, ...]:
    """`scenario: check id: message` for every WARNING check the run saved."""
    found: list[str] = []
    for checks_file in sorted(results.glob("*/checks.json")):
        scenario = checks_file.parent.name
        for check in json.loads(checks_file.read_text(encoding="utf-8")):
            if check.get("status") == "WARNING":
                found.append(f"{scenario}: {check.get('id')}: {check.get('errorMessage', '')}")
    return tuple(found)


def run_suite(run: Run, url: str, timeout: float, output_dir: Path) -> Outcome:
    """Run one suite, echoing its output, and condense it into a summary line."""
    print(f"\n{'=' * 78}\n== {run.label}\n{'=' * 78}", flush=True)
    results = output_dir / run.slug
    command = [str(NODE), str(run.cli), "server", "--url", url, "--output-dir", str(results), *run.extra_args]
    # The suite's own binaries (and any `node` it spawns) must be Node 22, not the system one.
    env = {**os.environ, "PATH": f"{NODE.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    captured: list[str] = []
    with subprocess.Popen(
        command,
        cwd=NODE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    ) as process:
        # A hung suite is killed, which also ends the read loop below.
        timed_out = threading.Event()

        def expire() -> None:
            timed_out.set()
            process.kill()

        watchdog = threading.Timer(timeout, expire)
        watchdog.start()
        try:
            assert process.stdout is not None
            for line in process.stdout:
                sys.stdout.write(line)
                captured.append(line)
            returncode = process.wait()
        finally:
            watchdog.cancel()
    if timed_out.is_set():
        return Outcome(run, 124, f"killed after the {timeout:.0f} s timeout", ())
    output = "".join(captured)
    parts = [match.group(0) for match in (TOTAL_LINE.search(output), NOT_SCORED_LINE.search(output)) if match]
    warnings = warnings_in(results)
    parts.append(f"{len(warnings)} warning(s)")
    summary = "; ".join(parts) if len(parts) > 1 else f"no Total line in the output; {parts[0]}"
    return Outcome(run, returncode, summary, warnings)


def serve_and_run(timeout: float, output_dir: Path) -> tuple[str, list[Outcome]]:
    """Run every suite against a fresh daphne node hosting the conformance fixture, authorization off;
    then the two requirement runs again with authorization on, given a token (with_token.py)."""
    # Imported here so that `--url` runs need nothing but the standard library.
    from tests.conformance.with_token import gateway_to_authorizing_node
    from tests.nodes import Node

    output_dir.mkdir(parents=True, exist_ok=True)
    log_path = output_dir / "daphne.log"
    node = Node(env={"MCP_SERVER": "tests.conformance.server.server", "MCP_AUTH": "off"}, log_path=log_path).start()
    try:
        outcomes = [run_suite(run, node.mcp_url, timeout, output_dir) for run in RUNS]
    finally:
        node.stop()
        if node.process is not None and node.process.returncode not in (0, -15):
            print(node.log())
    with gateway_to_authorizing_node(output_dir / "with-token") as url:
        outcomes += [run_suite(run, url, timeout, output_dir) for run in TOKEN_RUNS]
    return node.mcp_url, outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="the server's MCP endpoint, e.g. http://127.0.0.1:8000/mcp")
    target.add_argument(
        "--serve",
        action="store_true",
        help="start a daphne node hosting tests.conformance.server on a free loopback port and test it",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per run (default 600)")
    parser.add_argument("--output-dir", type=Path, help="keep each run's checks.json files here")
    args = parser.parse_args(argv)

    ensure_node()
    with tempfile.TemporaryDirectory(prefix="conformance-") as scratch:
        output_dir = args.output_dir.resolve() if args.output_dir else Path(scratch)
        if args.serve:
            url, outcomes = serve_and_run(args.timeout, output_dir)
        else:
            url, outcomes = args.url, [run_suite(run, args.url, args.timeout, output_dir) for run in RUNS]

    print(f"\n{'=' * 78}\n== Conformance summary for {url}\n{'=' * 78}")
    for outcome in outcomes:
        verdict = "PASS" if outcome.ok else f"FAIL (exit {outcome.returncode})"
        print(f"{verdict:<14} {outcome.run.label}: {outcome.summary}")
        for warning in outcome.warnings:
            print(f"{'':<14}   WARNING {warning}")
    passed = sum(outcome.ok for outcome in outcomes)
    # The plain closing line CI reads: runs, not scenarios.
    print(f"conformance: {passed} passed, {len(outcomes) - passed} failed")
    return 0 if passed == len(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
