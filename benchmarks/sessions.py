"""Scenario 4: what one more session costs, and how long a pool takes to open.

Memory and threads: a child process opens K sessions (K = 1, then 1 + P),
makes one ``getObjects`` call on each, and reads its resident memory and
OS threads from ``/proc/self/status``. The cost of a session is the
difference divided by P, for

- ``pool``: an ``AsyncGatewayPool`` of K sessions, each logged in;
- ``joined``: the same with ``join_sessions=True`` (one login, joined);
- ``blocking``: K ``BlitzGateway`` objects, for comparison.

Each child runs alone (the emulator is another process), so the figures
are of the client only; runs alternate and the medians are kept.

Opening time: a pool of P sessions opened by logging in P times, and with
``join_sessions=True``, at each latency, alternating, medians.

Run alone, ``python -m benchmarks.sessions --child KIND K HOST PORT``
prints one child's figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import time
from typing import Any

from ._support import Servers, Size, proc_status, ratio, run_child
from .catalogs import PASSWORD, PROJECTS, USER

KINDS = ("pool", "joined", "blocking")


def run(servers: Servers, size: Size) -> dict[str, Any]:
    """Per-session cost at no latency, and opening times at every latency."""
    process = servers.get(0.0)
    added = size.pooled
    samples: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for _ in range(size.repeats):
        for kind in KINDS:
            for count in (1, 1 + added):
                child = run_child(
                    [
                        "-m",
                        "benchmarks.sessions",
                        "--child",
                        kind,
                        str(count),
                        process.host,
                        str(process.port),
                    ]
                )
                samples.setdefault((kind, count), []).append(child.result)

    per_session = {}
    for kind in KINDS:
        one, many = samples[(kind, 1)], samples[(kind, 1 + added)]
        rss = _median(many, "rss_kib") - _median(one, "rss_kib")
        threads = _median(many, "threads") - _median(one, "threads")
        per_session[kind] = {
            "rss_kib_with_1": _median(one, "rss_kib"),
            f"rss_kib_with_{1 + added}": _median(many, "rss_kib"),
            "threads_with_1": _median(one, "threads"),
            f"threads_with_{1 + added}": _median(many, "threads"),
            "rss_mib_per_session": rss / added / 1024,
            "threads_per_session": threads / added,
        }

    opening = {}
    for latency in size.latencies:
        opening[f"{latency:g}ms"] = {
            "latency_ms": latency,
            **asyncio.run(_opening(servers.get(latency), added, size.repeats)),
        }
    return {
        "added_sessions": added,
        "repeats": size.repeats,
        "per_session": per_session,
        "opening": opening,
    }


def _median(results: list[dict[str, Any]], key: str) -> float:
    return float(statistics.median(r[key] for r in results))


async def _opening(process: Any, count: int, repeats: int) -> dict[str, Any]:
    from aiomero import AsyncGatewayPool

    took: dict[str, list[float]] = {"login": [], "joined": []}
    for _ in range(repeats):
        for way in took:
            pool = AsyncGatewayPool(
                USER,
                PASSWORD,
                host=process.host,
                port=process.port,
                min_size=count,
                max_size=count,
                join_sessions=way == "joined",
            )
            started = time.perf_counter()
            await pool.open()
            took[way].append(time.perf_counter() - started)
            await pool.close()
    login = statistics.median(took["login"])
    joined = statistics.median(took["joined"])
    return {
        "sessions": count,
        "login_s": login,
        "joined_s": joined,
        "joined_over_login": ratio(joined, login),
        "login_all_s": took["login"],
        "joined_all_s": took["joined"],
    }


# -- the child ----------------------------------------------------------------


def _child(kind: str, count: int, host: str, port: int) -> dict[str, Any]:
    # Everything a session needs is imported before the first measurement.
    import omero.gateway  # noqa: F401

    import aiomero  # noqa: F401

    before = proc_status()
    if kind == "blocking":
        after = _blocking_sessions(count, host, port)
    else:
        after = asyncio.run(_pooled_sessions(kind == "joined", count, host, port))
    return {"kind": kind, "count": count, "before": before, **after}


def _settled() -> dict[str, int]:
    # Threads finish starting and garbage goes before the figures are read.
    gc.collect()
    time.sleep(0.3)
    return proc_status()


def _blocking_sessions(count: int, host: str, port: int) -> dict[str, Any]:
    from omero.gateway import BlitzGateway

    gateways = []
    for _ in range(count):
        conn = BlitzGateway(USER, PASSWORD, host=host, port=port)
        assert conn.connect(), conn.getLastError()
        assert len(list(conn.getObjects("Project"))) == PROJECTS
        gateways.append(conn)
    status = _settled()
    for conn in gateways:
        conn.close()
    return status


async def _pooled_sessions(joined: bool, count: int, host: str, port: int) -> Any:
    from aiomero import AsyncGatewayPool

    async with AsyncGatewayPool(
        USER,
        PASSWORD,
        host=host,
        port=port,
        min_size=count,
        max_size=count,
        join_sessions=joined,
    ) as pool:
        # Every session is held at once, so each one makes its call.
        holding = [0]
        everyone = asyncio.Event()

        async def use() -> int:
            async with pool.acquire() as gw:
                rows = await gw.getObjects("Project")
                holding[0] += 1
                if holding[0] == count:
                    everyone.set()
                await everyone.wait()
                return len(rows)

        assert (
            await asyncio.gather(*(use() for _ in range(count))) == [PROJECTS] * count
        )
        assert pool.get_stats()["pool_size"] == count
        return await asyncio.to_thread(_settled)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one child of the sessions scenario")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "K", "HOST", "PORT"))
    args = parser.parse_args(argv)
    kind, count, host, port = args.child
    if kind not in KINDS:
        parser.error(f"KIND must be one of {', '.join(KINDS)}")
    print(json.dumps(_child(kind, int(count), host, int(port))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
