"""The goals the figures are read against: reported, never asserted.

Each goal is judged from one run's figures, side by side; a scenario that
did not run, or a latency that was not measured (``--quick`` has no 50 ms),
leaves its goal "not measured".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Verdict = dict[str, Any]


def judge(scenarios: dict[str, Any]) -> list[Verdict]:
    """One verdict per goal, in the order of the scenarios."""
    found = []
    for name, goal, check in _GOALS:
        try:
            measured, met = check(scenarios)
        except (KeyError, ValueError):
            measured, met = "not measured", None
        found.append({"scenario": name, "goal": goal, "measured": measured, "met": met})
    return found


def _overhead_getobjects(s: dict[str, Any]) -> tuple[str, bool]:
    at = s["overhead"]["by_latency"]["0ms"]["getObjects"]
    r = at["aiomero_over_blocking"]
    return (
        f"{r:.3f}x ({at['aiomero_us']:.0f} µs vs {at['blocking_us']:.0f} µs)",
        r <= 1.15,
    )


def _overhead_keepalive(s: dict[str, Any]) -> tuple[str, bool]:
    at = s["overhead"]["by_latency"]["0ms"]
    k = at["keepAlive"]
    r = k["aiomero_over_blocking_plus_hop"]
    return (
        f"{r:.3f}x of blocking + hop ({k['aiomero_us']:.0f} µs vs "
        f"{k['blocking_us']:.0f} + {at['hop_us']:.0f} µs)",
        r <= 1.10,
    )


def _concurrency(s: dict[str, Any]) -> tuple[str, bool]:
    rows = [
        row
        for row in s["concurrency"]["rows"]
        if row["alternative"] == "pool"
        and row["latency_ms"] == 50.0
        and row["callers"] <= 32
    ]
    if not rows:
        raise ValueError("no pool rows at 50 ms")
    parts = [f"N={row['callers']}: {row['of_ideal']:.2f}" for row in rows]
    return ", ".join(parts), all(row["of_ideal"] >= 0.9 for row in rows)


def _concurrency_vs_threads(s: dict[str, Any]) -> tuple[str, bool]:
    rows = s["concurrency"]["rows"]
    threads = {
        row["callers"]: row["calls_per_s"]
        for row in rows
        if row["alternative"] == "threads" and row["latency_ms"] == 50.0
    }
    pool = {
        row["callers"]: row["calls_per_s"]
        for row in rows
        if row["alternative"] == "pool"
        and row["latency_ms"] == 50.0
        and row["callers"] <= 32
    }
    if not pool:
        raise ValueError("no pool rows at 50 ms")
    of_threads = {n: calls / threads[n] for n, calls in pool.items()}
    parts = [f"N={n}: {r:.3f}" for n, r in of_threads.items()]
    return ", ".join(parts), all(r >= 0.95 for r in of_threads.values())


def _loop_lag(s: dict[str, Any]) -> tuple[str, bool]:
    rows = [row for row in s["concurrency"]["rows"] if row["alternative"] == "pool"]
    if not rows:
        raise ValueError("no pool rows")
    missed: dict[float, list[int]] = {}
    for row in rows:
        if row["lag_p99_ms"] > 5 or row["lag_max_ms"] > 20:
            missed.setdefault(row["latency_ms"], []).append(row["callers"])
    worst = (
        f"worst p99 {max(row['lag_p99_ms'] for row in rows):.2f} ms, "
        f"max {max(row['lag_max_ms'] for row in rows):.2f} ms"
    )
    if not missed:
        return f"all {len(rows)} runs within ({worst})", True
    where = "; ".join(
        f"{latency:g} ms N={', '.join(map(str, callers))}"
        for latency, callers in missed.items()
    )
    count = sum(map(len, missed.values()))
    return f"{count} of {len(rows)} runs miss: {where} ({worst})", False


def _memory(s: dict[str, Any]) -> tuple[str, bool]:
    pool = s["sessions"]["per_session"]["pool"]
    mib = pool["rss_mib_per_session"]
    return f"{mib:.2f} MiB per session", mib <= 1.0


def _threads(s: dict[str, Any]) -> tuple[str, bool]:
    pool = s["sessions"]["per_session"]["pool"]
    threads = pool["threads_per_session"]
    return f"{threads:.1f} threads per session", threads <= 5


def _crawl_speed(s: dict[str, Any]) -> tuple[str, bool]:
    c = s["crawl"]
    speedup = c["crawler_speedup"]
    return (
        f"{speedup:.1f}x (command, start-up included: {c['cli_speedup']:.1f}x)",
        speedup >= 10,
    )


def _crawl_cpu(s: dict[str, Any]) -> tuple[str, bool]:
    c = s["crawl"]
    r = c["crawler_cpu_over_walk"]
    return (
        f"{r:.3f} of the walk's (command, start-up included: "
        f"{c['cli_cpu_over_walk']:.3f})",
        r <= 0.2,
    )


_GOALS: list[tuple[str, str, Callable[[dict[str, Any]], tuple[str, bool]]]] = [
    (
        "overhead",
        "getObjects at 0 ms: aiomero median ≤ 1.15 x BlitzGateway",
        _overhead_getobjects,
    ),
    (
        "overhead",
        "keepAlive at 0 ms: aiomero median ≤ 1.10 x (BlitzGateway + thread hop)",
        _overhead_keepalive,
    ),
    (
        "concurrency",
        "pool at 50 ms, N ≤ 32: ≥ 0.9 of ideal throughput",
        _concurrency,
    ),
    (
        "concurrency",
        "pool at 50 ms, N ≤ 32: ≥ 0.95 of the throughput of N BlitzGateways "
        "on N threads",
        _concurrency_vs_threads,
    ),
    (
        "loop-lag",
        "pool at every latency and N: event-loop lag p99 ≤ 5 ms and max ≤ 20 ms",
        _loop_lag,
    ),
    ("sessions", "≤ 1 MiB resident memory per pooled session", _memory),
    ("sessions", "≤ 5 OS threads per pooled session", _threads),
    ("crawl", "crawl ≥ 10x faster than the sequential walk", _crawl_speed),
    ("crawl", "crawl client CPU per object ≤ 1/5 of the walk's", _crawl_cpu),
]


def met_text(met: bool | None) -> str:
    if met is None:
        return "not measured"
    return "yes" if met else "**no**"
