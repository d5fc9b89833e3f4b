"""`python -m bench`: run the scenarios of this slice and write docs/benchmarks.md with its plot."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import sys
import tempfile
from pathlib import Path

from . import (
    app_only,
    auth_cost,
    capacity,
    failover,
    fanout,
    instructions,
    machine,
    metrics_cost,
    notify,
    postgres,
    profiling,
    proxy,
    redis_cost,
    relay,
    report,
    rolling,
    servers,
    throughput,
)

FULL = throughput.Plan(requests=2000, warmup=300, rounds=3)
SMOKE = throughput.Plan(requests=20, warmup=5, rounds=1)
SCENARIOS = frozenset(range(1, 13))
# Scenario 6. The whole cluster shares the server core: 500 clients calling once a second
# saturate it. At one call every 3 s the core was 70-90 % busy before the kill in the December
# 2026 runs (with adoption), and saturated for a few seconds after it while the survivors adopt.
FAILOVER_FULL = failover.Plan(sessions=500, period=3.0, before=6.0, after=2.0)
FAILOVER_SMOKE = failover.Plan(sessions=20, period=1.0, before=1.0, after=0.5)
# Scenario 9. 100 clients calling once a second keep the server core about half busy with
# three nodes up, so two nodes absorb a restarting one's sessions without saturating it.
ROLLING_FULL = rolling.Plan(sessions=100, period=1.0, before=5.0, after=3.0)
ROLLING_SMOKE = rolling.Plan(sessions=12, period=0.5, before=1.0, after=0.5)
# Scenario 11: 200 subscribers of one record, 1000 timed calls per phase (p99 is then the 10th
# slowest, not the 3rd: one full collection of the cyclic GC no longer decides it).
FANOUT_FULL = fanout.Plan(subscribers=200, calls=1000, warmup=30)
INSTRUCTION_REQUESTS = 200  # per server and era, under callgrind
FANOUT_SMOKE = fanout.Plan(subscribers=10, calls=20, warmup=3)


def _scenarios(text: str) -> frozenset[int]:
    chosen = frozenset(int(part) for part in text.split(",") if part.strip())
    if not chosen <= SCENARIOS:
        raise argparse.ArgumentTypeError(f"scenarios are numbered 1 to {max(SCENARIOS)}, not {text}")
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny request counts: checks the harness, not speed")
    parser.add_argument("--out", type=Path, default=servers.REPO / "docs" / "benchmarks.md")
    parser.add_argument("--requests", type=int, help="measured requests per run (default 2000, smoke 20)")
    parser.add_argument("--rounds", type=int, help="alternating rounds per row (default 3, smoke 1)")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of our node")
    parser.add_argument(
        "--only",
        type=_scenarios,
        default=SCENARIOS,
        metavar="N,N",
        help="run only these scenarios (e.g. 3,6; 1 and 2 run together); no profile. The report marks the rest "
        "as not measured, so point --out elsewhere",
    )
    args = parser.parse_args(argv)

    base = SMOKE if args.smoke else FULL
    plan = throughput.Plan(
        requests=args.requests or base.requests, warmup=base.warmup, rounds=args.rounds or base.rounds
    )
    facts = machine.describe()  # before pinning narrows this process's cores
    pinned = servers.pin_client()
    print(f"bench: {'smoke' if args.smoke else 'full'} run, {plan}, client pinned: {pinned}", flush=True)
    with tempfile.TemporaryDirectory(prefix="mcp-bench-") as scratch:
        log_dir = Path(scratch)
        try:
            return asyncio.run(_run(args, plan, log_dir, facts))
        except Exception:
            _dump_logs(log_dir)
            raise


async def _run(args: argparse.Namespace, plan: throughput.Plan, log_dir: Path, facts: dict[str, str]) -> int:
    only: frozenset[int] = args.only
    rows: list[throughput.Row] = []
    if only & {1, 2}:
        rows = await throughput.measure(plan, log_dir)
    for row in rows:
        print(
            f"  {row.era:9} {row.mode:4} x{row.concurrency:<2} ours {row.ours.throughput:7.0f} req/s "
            f"ref {row.reference.throughput:7.0f} req/s ratio {row.ratio:.2f}",
            flush=True,
        )
    app_cost: app_only.AppCost | None = None
    if only & {1, 2}:
        app_cost = await asyncio.to_thread(
            app_only.measure, requests=plan.requests, rounds=plan.rounds, warmup=plan.warmup
        )
        for era in app_only.ERAS:
            print(
                f"  app alone {era:9} ours {app_cost.ours[era]:5.0f} us/req ref {app_cost.reference[era]:5.0f} us/req",
                flush=True,
            )
    counted: instructions.Instructions | None = None
    # Each server runs some forty times slower under valgrind: a smoke run leaves the count out.
    counted_skipped = instructions.missing() or ("a smoke run leaves it out." if args.smoke else "")
    if only & {1, 2} and not counted_skipped:
        counted = await instructions.measure(log_dir, requests=INSTRUCTION_REQUESTS)
        for era in app_only.ERAS:
            print(
                "  instructions "
                + ", ".join(f"{side} {counted.counts[side][era].instructions / 1000:5.0f} k" for side in counted.counts)
                + f" per {era} call",
                flush=True,
            )
    authorized: auth_cost.AuthCost | None = None
    if 10 in only:
        authorized = await asyncio.to_thread(
            auth_cost.measure, requests=plan.requests, rounds=plan.rounds, warmup=plan.warmup
        )
        for era in app_only.ERAS:
            costs = ", ".join(f"{variant} {authorized.costs[variant][era]:5.0f}" for variant in auth_cost.VARIANTS)
            added = ", ".join(f"{variant} {authorized.added(variant, era):+5.1f}" for variant in auth_cost.VARIANTS[1:])
            print(f"  authorization {era:9} {costs} us/req; added {added} us", flush=True)
    recorded: metrics_cost.MetricsCost | None = None
    if 12 in only:
        recorded = await asyncio.to_thread(metrics_cost.measure, 20_000 if args.smoke else 200_000)
        print(
            "  metrics: "
            + ", ".join(f"{path} {cost:.2f} us" for path, cost in recorded.per_call_us.items())
            + f" per call; a scrape of {recorded.series} samples {recorded.scrape_ms:.1f} ms CPU",
            flush=True,
        )
    redis: redis_cost.RedisCost | None = None
    redis_skipped = "" if shutil.which("redis-server") else "redis-server is not installed (Debian: redis-server)."
    if 7 in only and not redis_skipped:
        redis = await redis_cost.measure(
            log_dir,
            requests=50 if args.smoke else 1000,
            sessions=3 if args.smoke else 100,
            idle_seconds=1.0 if args.smoke else 10.0,
        )
        print(f"  redis: {redis.per_request:.3f} commands per call, {redis.per_lifecycle:.2f} per lifecycle")
    held: capacity.Capacity | None = None
    if 4 in only:
        held = await capacity.measure(
            log_dir,
            steps=(10, 20) if args.smoke else (1000, 5000),
            calls=20 if args.smoke else 500,
            warmup=5 if args.smoke else 100,
            settle=0.1 if args.smoke else capacity.SETTLE_SECONDS,
        )
        for step in held.steps:
            print(
                f"  capacity: {step.sessions:5} streams, RSS {step.rss_kib / 1024:.1f} MiB "
                f"({step.per_session_kib(held.baseline):.1f} KiB each), tools/call p99 {step.calls.p99_ms:.2f} ms",
                flush=True,
            )
    notified: list[notify.NotifyLatency] = []
    postgres_skipped = postgres.missing()
    if 5 in only and not redis_skipped:
        for database, label in notify.DATABASES.items():
            if database == "postgresql" and postgres_skipped:
                print(f"  notify ({label}): not measured: {postgres_skipped}", flush=True)
                continue
            run = await notify.measure(
                log_dir, database, changes=10 if args.smoke else 500, warmup=2 if args.smoke else 20
            )
            notified.append(run)
            print(
                f"  notify ({label}): p50 {run.p50_ms:.2f} ms p99 {run.p99_ms:.2f} ms, mutation round trip "
                f"p50 {run.round_trip_p50_ms:.2f} ms p99 {run.round_trip_p99_ms:.2f} ms, {run.lost} lost",
                flush=True,
            )
    fanned: fanout.FanOut | None = None
    if 11 in only and not redis_skipped:
        fanned = await fanout.measure(log_dir, FANOUT_SMOKE if args.smoke else FANOUT_FULL)
        print(
            f"  fan-out: read_decision under the flood without subscribers p50 {fanned.control.p50_ms:.2f} ms "
            f"p99 {fanned.control.p99_ms:.2f} ms; {fanned.plan.subscribers} subscribers, no changes p50 "
            f"{fanned.baseline.p50_ms:.2f} ms p99 {fanned.baseline.p99_ms:.2f} ms; under the flood p50 "
            f"{fanned.flood.p50_ms:.2f} ms p99 {fanned.flood.p99_ms:.2f} ms; {fanned.changes} changes, "
            f"{fanned.merged} updates merged, {fanned.stale} subscribers left stale",
            flush=True,
        )
    relayed: relay.RelayCost | None = None
    if 8 in only and not redis_skipped:
        relayed = await relay.measure(plan, log_dir)
        for relay_row in relayed.rows:
            print(
                f"  relay: {relay_row.mode:4} direct median {relay_row.direct.median_ms:5.2f} ms "
                f"p99 {relay_row.direct.p99_ms:5.2f} ms {relay_row.direct.throughput:5.0f} req/s; relayed median "
                f"{relay_row.relayed.median_ms:5.2f} ms p99 {relay_row.relayed.p99_ms:5.2f} ms "
                f"{relay_row.relayed.throughput:5.0f} req/s; added {relay_row.added_median_ms:+.2f} ms at p50",
                flush=True,
            )
    proxied, failovers, rolled = await _cluster_scenarios(args, plan, log_dir, redis_skipped)
    lines: list[str] = []
    if not args.smoke and not args.no_profile and only == SCENARIOS:
        lines = await profiling.profile(log_dir, seconds=15)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    plot = report.write(
        args.out,
        rows=rows,
        redis=redis,
        redis_skipped=redis_skipped,
        postgres_skipped=postgres_skipped,
        capacity=held,
        notify=notified,
        proxy=proxied,
        failover=failovers,
        rolling=rolled,
        relay=relayed,
        app_cost=app_cost,
        auth=authorized,
        fanout=fanned,
        metrics=recorded,
        instructions=counted,
        instructions_skipped=counted_skipped,
        machine=facts,
        plan=plan,
        smoke=args.smoke,
        profile=lines,
    )
    print(f"bench: wrote {args.out} and {plot}")
    errors = sum(row.ours.errors + row.reference.errors for row in rows)
    errors += sum(step.calls.errors for step in held.steps) if held is not None else 0
    errors += sum(run.failed + run.lost for run in notified)
    errors += proxied.errors if proxied is not None else 0
    errors += sum(run.errors for run in failovers)
    errors += rolled.errors if rolled is not None else 0
    errors += relayed.errors if relayed is not None else 0
    errors += fanned.errors if fanned is not None else 0
    if errors:
        print(f"bench: {errors} requests failed; see the Errors columns", file=sys.stderr)
        return 1
    return 0


async def _cluster_scenarios(
    args: argparse.Namespace, plan: throughput.Plan, log_dir: Path, redis_skipped: str
) -> tuple[proxy.ProxyCost | None, list[failover.Failover], rolling.Rolling | None]:
    """Scenarios 3, 6 and 9 share one cluster (Traefik and three nodes); 6 kills a node and 9
    restarts them all, so they go last.

    Scenario 6 runs twice, clients with cookies then clients without; the killed node is
    started again after each run that another follows.
    """
    if not args.only & {3, 6, 9} or redis_skipped:
        return None, [], None
    proxied: proxy.ProxyCost | None = None
    failovers: list[failover.Failover] = []
    rolled: rolling.Rolling | None = None
    async with proxy.cluster(log_dir) as cluster:
        if 3 in args.only:
            proxied = await proxy.measure(cluster, plan, log_dir)
            for row in proxied.rows:
                print(
                    f"  proxy: {row.path:20} x{row.concurrency:<2} median {row.stats.median_ms:6.2f} ms "
                    f"p99 {row.stats.p99_ms:6.2f} ms {row.stats.throughput:6.0f} req/s",
                    flush=True,
                )
        if 6 in args.only:
            base = FAILOVER_SMOKE if args.smoke else FAILOVER_FULL
            for keep_cookies in (True, False):
                if failovers:
                    await failover.revive(cluster, failovers[-1].victim)
                run = await failover.measure(cluster, dataclasses.replace(base, keep_cookies=keep_cookies))
                failovers.append(run)
                print(
                    f"  failover ({'cookies' if keep_cookies else 'no cookies'}): {len(run.affected)} clients on "
                    f"{run.victim}, answered again max {max(run.recovery_times, default=float('nan')):.2f} s, "
                    f"{run.unrecovered} not; failed per client {dict(sorted(run.failed_per_client.items()))}, "
                    f"by kind {dict(run.statuses)}, re-initializations {run.reinitializations}, "
                    f"unaffected clients failed {run.unaffected_failed}",
                    flush=True,
                )
        if 9 in args.only:
            if failovers:
                await failover.revive(cluster, failovers[-1].victim)
            rolled = await rolling.measure(cluster, ROLLING_SMOKE if args.smoke else ROLLING_FULL)
            print(
                f"  rolling restart: {rolled.failed} failed ({rolled.in_flight} in flight at a stop) by status "
                f"{dict(rolled.statuses)}, re-initializations {rolled.reinitializations}, adoptions "
                f"{rolled.adoptions}; longest without an answer p50 {rolled.silence_percentile(0.5):.2f} s "
                f"p99 {rolled.silence_percentile(0.99):.2f} s max {max(rolled.silences, default=float('nan')):.2f} s",
                flush=True,
            )
    return proxied, failovers, rolled


def _dump_logs(log_dir: Path) -> None:
    for log in sorted(log_dir.rglob("*.log")):
        print(f"--- {log.name} (last lines)", file=sys.stderr)
        print("\n".join(log.read_text(errors="replace").splitlines()[-30:]), file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
