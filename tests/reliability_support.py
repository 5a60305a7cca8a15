"""Helpers of the reliability tests: silent servers, loop probes, process figures.

Process figures are read from ``/proc/self``: Ice's threads are not Python
threads, so only the kernel's count sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import gateway_helpers
from aiomero.gateway import AsyncGateway

if TYPE_CHECKING:
    from aiomero.testing import Emulator

__all__ = [
    "LoopProbe",
    "free_port",
    "gateway_for",
    "open_fds",
    "os_threads",
    "rss_kib",
    "settle",
    "silent_server",
]


def gateway_for(emulator: Emulator, username: str = "alice", **options: Any) -> Any:
    """A new, unconnected AsyncGateway of a default-catalog user (alice by
    default), with that user's password unless ``passwd`` is given."""
    options.setdefault("passwd", gateway_helpers.password(username))
    return AsyncGateway(username, host=emulator.host, port=emulator.port, **options)


# Same port helpers as the gateway tests, under the names these tests use.
free_port = gateway_helpers.closed_port
silent_server = gateway_helpers.silent_port
os_threads = gateway_helpers.os_threads


class LoopProbe:
    """A task that ticks every 10 ms and records the longest gap between ticks.

    A gap much longer than the tick means something blocked the event loop.
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _tick(self) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            now = time.monotonic()
            self.longest = max(self.longest, now - last)
            last = now

    async def __aenter__(self) -> LoopProbe:
        self._task = asyncio.create_task(self._tick())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        # One more tick, so a block that ended just now is counted too.
        await asyncio.sleep(0.02)
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_kib() -> int:
    """The process's resident memory in KiB."""
    return _status("VmRSS")


def open_fds() -> int:
    """The process's open file descriptors."""
    return len(os.listdir("/proc/self/fd"))


async def settle(at_most: int, read: Any = os_threads, within: float = 5.0) -> int:
    """Wait up to ``within`` seconds for ``read()`` to fall to ``at_most``.

    Threads a close stopped end a moment later; returns the last reading.
    """
    deadline = time.monotonic() + within
    value = read()
    while value > at_most and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        value = read()
    return int(value)


@contextlib.asynccontextmanager
async def connected(
    emulator: Emulator, username: str = "alice", **options: Any
) -> AsyncIterator[Any]:
    """A connected AsyncGateway, closed on leaving the block."""
    gateway = gateway_for(emulator, username, **options)
    await gateway.connect()
    try:
        yield gateway
    finally:
        emulator.faults.reset()
        await gateway.close()
