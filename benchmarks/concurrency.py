"""Scenarios 2 and 3: many callers at once, and the event loop meanwhile.

N callers (1, 8, 32, 64) each make ``getObjects("Project")`` calls, one
after the other, for a fixed time, in four ways:

- ``sequential``: one ``BlitzGateway`` called directly from the event loop,
  one call at a time whatever N is (so it is measured once per latency);
- ``threads``: N ``BlitzGateway`` sessions on a ``ThreadPoolExecutor`` of N
  threads, each thread with its own session, awaited with
  ``loop.run_in_executor``;
- ``to_thread``: ``asyncio.to_thread`` over one shared ``BlitzGateway``
  (the default executor: ``min(32, cores + 4)`` threads);
- ``pool``: an ``AsyncGatewayPool`` of N sessions,
  ``async with pool.acquire() as gw: await gw.getObjects("Project")``.

Each caller's latency is measured from the caller, as awaited. The ideal
throughput is N calls per round trip, the round trip being the median of
a lone caller on ``BlitzGateway`` at that latency.

Meanwhile a probe task sleeps 1 ms in a loop and records how late it wakes
(scenario 3): an event loop that is blocked, or starved of the interpreter
lock, wakes late.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import statistics
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiomero import AsyncGatewayPool

from ._support import GcPauses, Servers, Size, cpu_seconds, own_cpu, ratio, spread
from .catalogs import PASSWORD, PROJECTS, USER

ALTERNATIVES = ("sequential", "threads", "to_thread", "pool")

_PROBE_SLEEP = 0.001


def run(servers: Servers, size: Size) -> dict[str, Any]:
    """Every latency and N of ``size``; the rows of both scenarios."""
    rows = []
    for latency in size.latencies:
        rows += asyncio.run(_at_latency(servers.get(latency), latency, size))
    return {"rows": rows, "callers": list(size.callers)}


async def _at_latency(process: Any, latency: float, size: Size) -> list[dict[str, Any]]:
    most = max(size.callers)
    gateways = await _connect_blocking(process, most + 1)
    shared, own = gateways[0], gateways[1:]
    try:
        rows = []
        lone = await _measure(_sequential(shared), 1, size.seconds, process)
        round_trip = lone["p50_ms"] / 1000
        for n in size.callers:
            ideal = n / round_trip
            rows.append(_row("sequential", n, latency, lone, ideal))
            for name in ALTERNATIVES[1:]:
                async with _alternative(name, n, process, shared, own) as call:
                    found = await _measure(call, n, size.seconds, process)
                rows.append(_row(name, n, latency, found, ideal))
        return rows
    finally:
        await asyncio.gather(*(asyncio.to_thread(g.close) for g in gateways))


def _row(
    name: str, n: int, latency: float, found: dict[str, Any], ideal: float
) -> dict[str, Any]:
    return {
        "alternative": name,
        "callers": n,
        "latency_ms": latency,
        "ideal_calls_per_s": ideal,
        "of_ideal": ratio(found["calls_per_s"], ideal),
        **found,
    }


async def _connect_blocking(process: Any, count: int) -> list[Any]:
    def connect() -> Any:
        conn = process.gateway(USER, PASSWORD)
        if not conn.connect():
            raise RuntimeError(f"login failed: {conn.getLastError()}")
        return conn

    with concurrent.futures.ThreadPoolExecutor(16) as executor:
        loop = asyncio.get_running_loop()
        return list(
            await asyncio.gather(
                *(loop.run_in_executor(executor, connect) for _ in range(count))
            )
        )


def _projects(conn: Any) -> list[Any]:
    return list(conn.getObjects("Project"))


def _sequential(conn: Any) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        # Called from the event loop, as code that does not know better
        # would; the loop gets a turn between calls.
        found = _projects(conn)
        await asyncio.sleep(0)
        return found

    return call


class _alternative:
    """The call one caller makes, for ``name`` with ``n`` callers, as an
    async context manager that sets it up and tears it down."""

    def __init__(
        self, name: str, n: int, process: Any, shared: Any, own: list[Any]
    ) -> None:
        self.name, self.n = name, n
        self.process, self.shared, self.own = process, shared, own
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pool: AsyncGatewayPool | None = None

    async def __aenter__(self) -> Callable[[], Awaitable[Any]]:
        if self.name == "threads":
            return self._threads()
        if self.name == "to_thread":
            shared = self.shared
            return lambda: asyncio.to_thread(_projects, shared)
        pool = AsyncGatewayPool(
            USER,
            PASSWORD,
            host=self.process.host,
            port=self.process.port,
            min_size=self.n,
            max_size=self.n,
        )
        await pool.open()
        self._pool = pool

        async def call() -> Any:
            async with pool.acquire() as gw:
                return await gw.getObjects("Project")

        return call

    def _threads(self) -> Callable[[], Awaitable[Any]]:
        # Each executor thread takes a session of its own on its first call.
        spare = iter(self.own[: self.n])
        lock = threading.Lock()
        mine = threading.local()

        def work() -> Any:
            conn = getattr(mine, "conn", None)
            if conn is None:
                with lock:
                    conn = mine.conn = next(spare)
            return _projects(conn)

        self._executor = executor = concurrent.futures.ThreadPoolExecutor(self.n)
        loop = asyncio.get_running_loop()
        return lambda: loop.run_in_executor(executor, work)

    async def __aexit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown()
        if self._pool is not None:
            await self._pool.close()


async def _measure(
    call: Callable[[], Awaitable[Any]], n: int, seconds: float, process: Any
) -> dict[str, Any]:
    """Run ``n`` callers of ``call`` for ``seconds``, with the lag probe.

    Also counts the CPU time of this process and of the emulator's, which
    tells whether the machine, rather than waiting, was the limit.
    """

    # Every caller's first call warms its session up; it is not counted.
    first = await asyncio.gather(*(call() for _ in range(n)))
    assert all(len(rows) == PROJECTS for rows in first)

    latencies: list[float] = []
    lateness: list[float] = []
    stop = asyncio.Event()
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - started)

    async def probe() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            await asyncio.sleep(_PROBE_SLEEP)
            lateness.append(time.perf_counter() - started - _PROBE_SLEEP)

    prober = asyncio.create_task(probe())
    client_cpu, server_cpu = own_cpu(), cpu_seconds(process.pid)
    with GcPauses() as pauses:
        started = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(n)))
        elapsed = time.perf_counter() - started
    client_cpu, server_cpu = (
        own_cpu() - client_cpu,
        cpu_seconds(process.pid) - server_cpu,
    )
    stop.set()
    await prober

    found = spread(latencies)
    lag = spread(lateness)
    return {
        "calls": len(latencies),
        "seconds": elapsed,
        "calls_per_s": len(latencies) / elapsed,
        "p50_ms": found["p50_ms"],
        "p99_ms": found["p99_ms"],
        "lag_p50_ms": lag["p50_ms"],
        "lag_p99_ms": lag["p99_ms"],
        "lag_max_ms": lag["max_ms"],
        "lag_samples": lag["n"],
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else float("nan"),
        "client_cpu_ms_per_call": ratio(client_cpu * 1000, len(latencies)),
        "server_cpu_ms_per_call": ratio(server_cpu * 1000, len(latencies)),
        # CPU seconds used per second, by both processes: the cores they kept busy
        "cores_busy": (client_cpu + server_cpu) / elapsed,
        "gc_full_pauses": pauses.count,
        "gc_full_max_ms": pauses.longest_ms,
    }
