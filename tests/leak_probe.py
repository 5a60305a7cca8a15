"""500 pool loans with random cancellations, measured in a clean process.

Run by tests/test_reliability_pool.py as a child process, so that nothing
earlier tests left behind moves the figures. Prints one JSON line: threads,
descriptors and resident memory before and after, and the user's sessions
still open on the server (the asking one included).
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import time
from typing import Any

from aiomero import AsyncGateway, AsyncGatewayPool
from aiomero.testing import EmulatorProcess
from reliability_support import open_fds, os_threads, rss_kib


def _figures() -> tuple[int, int, int]:
    # Closed Ice clients give their sockets back when collected.
    gc.collect()
    return os_threads(), open_fds(), rss_kib()


async def _settled(before: tuple[int, int, int], within: float) -> tuple[int, int, int]:
    # Ice ends a communicator's threads a moment after it is destroyed.
    deadline = time.monotonic() + within
    now = _figures()
    while (now[0] > before[0] or now[1] > before[1]) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
        now = _figures()
    return now


def _open_sessions(gw: Any) -> int:
    return len(gw.getSessionService().getMyOpenSessions())


async def main() -> dict[str, Any]:
    rng = random.Random(11)
    cancelled = 0
    with EmulatorProcess(latency_ms=3) as server:

        def pool() -> AsyncGatewayPool:
            return AsyncGatewayPool(
                "alice", "alice-pw", host=server.host, port=server.port,
                min_size=2, max_size=6,
            )  # fmt: skip

        async def loan(lender: AsyncGatewayPool) -> None:
            async with lender.acquire(timeout=30) as gw:
                await gw.keepAlive()

        async def rounds(lender: AsyncGatewayPool, count: int) -> int:
            # Loans ten at a time, some cancelled waiting, some holding.
            nonlocal cancelled
            for _ in range(count):
                tasks = [asyncio.ensure_future(loan(lender)) for _ in range(10)]
                await asyncio.sleep(rng.uniform(0, 0.01))
                for task in tasks:
                    if rng.random() < 0.3 and task.cancel():
                        cancelled += 1
                await asyncio.gather(*tasks, return_exceptions=True)
            return int(lender.get_stats()["requests_num"])

        # A first, smaller run of the same kind fills Ice's and Python's
        # caches and makes what is made once: the baseline comes after it.
        for _ in range(2):
            async with pool() as warm:
                await rounds(warm, 5)
        await asyncio.sleep(1)
        before = await _settled((0, 0, 0), within=0)
        cancelled = 0

        async with pool() as shared:
            loans = await rounds(shared, 50)

        after = await _settled(before, within=10)
        async with AsyncGateway(
            "alice", "alice-pw", host=server.host, port=server.port
        ) as gw:
            open_sessions = await gw.run(_open_sessions)
    return {
        "loans": loans,
        "cancelled": cancelled,
        "threads_before": before[0],
        "threads_after": after[0],
        "fds_before": before[1],
        "fds_after": after[1],
        "rss_kib_before": before[2],
        "rss_kib_after": after[2],
        "open_sessions_after": open_sessions,
    }


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
