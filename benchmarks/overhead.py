"""Scenario 1: what one call costs through AsyncGateway, over BlitzGateway.

Sequential calls on one session, at each latency:

- ``getObjects("Project")`` returning ten projects: ``BlitzGateway`` called
  directly (``list(conn.getObjects("Project"))``), the same call through
  ``asyncio.to_thread``, and ``await AsyncGateway.getObjects("Project")``;
- ``keepAlive()``, one remote call with no result, the same three ways;
- the floor: a no-op run on a dedicated thread fed by a
  ``queue.SimpleQueue`` that completes an asyncio future with
  ``loop.call_soon_threadsafe`` (:class:`benchmarks._support.ThreadHop`),
  the cheapest way measured to leave the event loop and come back; and the
  same ``BlitzGateway`` calls made through that bare hop, which leaves
  aiomero's own code as the difference;
- ``AsyncGateway(timeout=None)``, whose calls carry no Ice invocation
  timeout: the difference to the default (60 s) is what that deadline
  costs.

The variants take turns call by call (the order rotating each round), so
a noisy neighbour slows them alike; the figures are medians of every call.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiomero import AsyncGateway

from ._support import Servers, Size, ThreadHop, noop, percentile, ratio
from .catalogs import PASSWORD, PROJECTS, USER

VARIANTS = (
    "hop",
    "getObjects_blocking",
    "getObjects_hop",
    "getObjects_to_thread",
    "getObjects_aiomero",
    "getObjects_aiomero_untimed",
    "keepAlive_blocking",
    "keepAlive_hop",
    "keepAlive_to_thread",
    "keepAlive_aiomero",
    "keepAlive_aiomero_untimed",
)


def run(servers: Servers, size: Size) -> dict[str, Any]:
    """Every latency of ``size``; figures per latency."""
    found = {}
    for latency in size.latencies:
        process = servers.get(latency)
        found[_key(latency)] = asyncio.run(
            _measure(process, size.overhead_rounds, size.calls_at(latency))
        )
        found[_key(latency)]["latency_ms"] = latency
    return {"by_latency": found}


def _key(latency: float) -> str:
    return f"{latency:g}ms"


async def _measure(process: Any, rounds: int, calls: int) -> dict[str, Any]:
    conn = process.gateway(USER, PASSWORD)
    assert conn.connect(), conn.getLastError()
    hop = ThreadHop()
    gateway = AsyncGateway(USER, PASSWORD, host=process.host, port=process.port)
    untimed = AsyncGateway(
        USER, PASSWORD, host=process.host, port=process.port, timeout=None
    )
    await gateway.connect()
    await untimed.connect()
    try:
        return await _rounds(conn, gateway, untimed, hop, rounds, calls)
    finally:
        await gateway.close()
        await untimed.close()
        hop.close()
        conn.close()


async def _rounds(
    conn: Any,
    gateway: AsyncGateway,
    untimed: AsyncGateway,
    hop: ThreadHop,
    rounds: int,
    calls: int,
) -> dict[str, Any]:
    def projects() -> list[Any]:
        return list(conn.getObjects("Project"))

    async def blocking_projects() -> list[Any]:
        return projects()

    async def blocking_keepalive() -> bool:
        return bool(conn.keepAlive())

    variants: dict[str, Callable[[], Awaitable[Any]]] = {
        "hop": lambda: hop.call(noop),
        "getObjects_blocking": blocking_projects,
        "getObjects_hop": lambda: hop.call(projects),
        "getObjects_to_thread": lambda: asyncio.to_thread(projects),
        "getObjects_aiomero": lambda: gateway.getObjects("Project"),
        "getObjects_aiomero_untimed": lambda: untimed.getObjects("Project"),
        "keepAlive_blocking": blocking_keepalive,
        "keepAlive_hop": lambda: hop.call(conn.keepAlive),
        "keepAlive_to_thread": lambda: asyncio.to_thread(conn.keepAlive),
        "keepAlive_aiomero": gateway.keepAlive,
        "keepAlive_aiomero_untimed": untimed.keepAlive,
    }

    # Every variant's first call is a warm-up (proxies, caches), and the
    # answers are checked once: ten projects each way.
    for name, call in variants.items():
        answer = await call()
        if name.startswith("getObjects"):
            assert len(answer) == PROJECTS, (name, len(answer))

    # One call of each variant after the other, so that a burst of load
    # from elsewhere falls on all of them; the order rotates each round.
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for turn in range(rounds):
        gc.collect()
        order = names[turn % len(names) :] + names[: turn % len(names)]
        timed = [(variants[name], samples[name]) for name in order]
        for _ in range(calls):
            for call, into in timed:
                started = time.perf_counter()
                await call()
                into.append(time.perf_counter() - started)
    return _figures(samples)


def _figures(samples: dict[str, list[float]]) -> dict[str, Any]:
    per_call = {
        name: {
            "n": len(values),
            "median_us": statistics.median(values) * 1e6,
            "p90_us": percentile(values, 90) * 1e6,
        }
        for name, values in samples.items()
    }

    def med(name: str) -> float:
        return float(per_call[name]["median_us"])

    hop = med("hop")
    figures: dict[str, Any] = {"per_call": per_call, "hop_us": hop}
    for call in ("getObjects", "keepAlive"):
        blocking, aiomero = med(f"{call}_blocking"), med(f"{call}_aiomero")
        hopped = med(f"{call}_hop")
        figures[call] = {
            "blocking_us": blocking,
            "hop_us": hopped,
            "to_thread_us": med(f"{call}_to_thread"),
            "aiomero_us": aiomero,
            "aiomero_over_blocking": ratio(aiomero, blocking),
            "to_thread_over_blocking": ratio(med(f"{call}_to_thread"), blocking),
            "added_us": aiomero - blocking,
            # what the floor allows: the direct call plus one no-op hop
            "aiomero_over_blocking_plus_hop": ratio(aiomero, blocking + hop),
            # aiomero's own code: what it adds to the same call on a bare hop
            "aiomero_over_hop_us": aiomero - hopped,
            # the part of that due to the deadline every call carries in Ice
            "untimed_us": med(f"{call}_aiomero_untimed"),
            "deadline_us": aiomero - med(f"{call}_aiomero_untimed"),
        }
    return figures
