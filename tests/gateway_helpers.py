"""Helpers of the AsyncGateway tests: passwords, thread counts, probes, ports."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from aiomero.gateway import AsyncGateway
from aiomero.testing import Emulator
from aiomero.testing.faults import Stall

PASSWORDS = {"root": "omero", "guest": "guest"}


def password(user: str) -> str:
    """The default catalog's password of ``user``."""
    return PASSWORDS.get(user, f"{user}-pw")


def gateway_for(emulator: Emulator, user: str = "root", **options: Any) -> AsyncGateway:
    """An AsyncGateway of ``user`` on ``emulator``, not connected yet."""
    return AsyncGateway(
        user, password(user), host=emulator.host, port=emulator.port, **options
    )


def os_threads() -> int:
    """The threads of this process as the OS counts them, Ice's included."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    raise RuntimeError("no thread count in /proc/self/status")


async def settle_threads(target: int, within: float = 5.0) -> int:
    """Wait until at most ``target`` OS threads run, or ``within`` seconds pass;
    the count seen last."""
    # Ice ends its threads on its own schedule; nothing to wait on but time.
    for _ in range(round(within / 0.05)):
        if os_threads() <= target:
            break
        await asyncio.sleep(0.05)
    return os_threads()


async def held(stall: Stall, count: int = 1, within: float = 5.0) -> bool:
    """Whether ``stall`` holds ``count`` calls within ``within`` seconds.

    Polled from the loop: waiting in an executor would start a thread, which
    thread-count assertions would then see.
    """
    for _ in range(round(within / 0.02)):
        if stall.held >= count:
            return True
        await asyncio.sleep(0.02)
    return stall.held >= count


class LoopLagProbe:
    """A task that sleeps 1 ms in a loop and records the longest oversleep."""

    def __init__(self) -> None:
        self.worst = 0.0
        self.wakeups = 0

    async def _run(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.monotonic() - before - 0.001)
            self.wakeups += 1

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LoopLagProbe]:
        task = asyncio.create_task(self._run())
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def closed_port() -> int:
    """A local port where nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never sends a byte."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        # shutdown() wakes the blocked accept(); close() alone may not.
        with contextlib.suppress(OSError):
            server.shutdown(socket.SHUT_RDWR)
        server.close()
        for conn in held:
            conn.close()
        acceptor.join(5)
