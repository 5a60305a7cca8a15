"""A bounded soak: a mixed workload on a pool while faults strike at random.

Tasks borrow sessions from one ``AsyncGatewayPool`` (of an administrator,
lending its own sessions and substituted users') and make queries with short
timeouts, some of them cancelled midway, while a fault task keeps injecting
latency, stalls, failed calls, dropped connections, expired sessions,
refused logins and restarts into an emulator. At the end the pool is
closed and the emulator must hold no session.

Run: ``python -m benchmarks.soak [--seconds 120] [--json report.json]``. It
stops by itself and prints calls, errors by type and resident memory at the
start and the end. An error that is not an aiomero error is counted as
untyped and makes the exit status 1; so does a session still alive on the
server once its idle timeout has passed after the pool closed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

from aiomero import AiomeroError, AsyncGatewayPool
from aiomero.testing import Emulator

WORKERS = 16
# The emulator's session idle timeout: short, so leftovers show quickly.
IDLE_TIMEOUT = 3.0


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Soak:
    """One soak run: its workload, its faults and its figures."""

    def __init__(self, emulator: Emulator, seconds: float, seed: int) -> None:
        self.emulator = emulator
        self.seconds = seconds
        self.rng = random.Random(seed)
        self.calls = 0
        self.cancelled = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.untyped: list[str] = []
        self.faults: collections.Counter[str] = collections.Counter()

    async def run(self) -> None:
        pool = AsyncGatewayPool(
            "root", "omero", host=self.emulator.host, port=self.emulator.port,
            min_size=2, max_size=8, timeout=5, keepalive_interval=0.5,
            reconnect_timeout=10,
        )  # fmt: skip
        deadline = time.monotonic() + self.seconds
        async with pool:
            faults = asyncio.ensure_future(self._faults(deadline))
            workers = [
                asyncio.ensure_future(self._work(pool, deadline))
                for _ in range(WORKERS)
            ]
            await asyncio.gather(*workers)
            faults.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await faults
            self.emulator.faults.reset()

    async def _work(self, pool: AsyncGatewayPool, deadline: float) -> None:
        while time.monotonic() < deadline:
            call = asyncio.ensure_future(self._one_call(pool))
            # Some calls are abandoned midway, as a web request may be.
            if self.rng.random() < 0.1:
                await asyncio.sleep(self.rng.uniform(0, 0.05))
                call.cancel()
            try:
                await call
                self.calls += 1
            except asyncio.CancelledError:
                self.cancelled += 1
            except AiomeroError as exc:
                self.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.05)
            except Exception as exc:
                self.untyped.append(f"{type(exc).__name__}: {exc}")

    async def _one_call(self, pool: AsyncGatewayPool) -> None:
        kind = self.rng.choice(("projects", "images", "sudo", "keepalive"))
        user = "alice" if kind == "sudo" else None
        async with pool.acquire(user=user, group=-1) as gw:
            if kind == "projects":
                await gw.listProjects(timeout=1)
            elif kind == "images":
                await gw.getObjects("Image", opts={"limit": 20}, timeout=1)
            elif kind == "sudo":
                await gw.getUser(timeout=1)
            else:
                await gw.keepAlive(timeout=1)

    async def _faults(self, deadline: float) -> None:
        faults = self.emulator.faults
        while time.monotonic() < deadline:
            await asyncio.sleep(self.rng.uniform(0.2, 0.8))
            kind = self.rng.choice(
                ("latency", "stall", "fail", "drop", "expire", "refuse", "restart")
            )
            self.faults[kind] += 1
            if kind == "latency":
                faults.set_latency((0.0, 0.05))
            elif kind == "stall":
                faults.stall("findAllByQuery", seconds=1.5)
            elif kind == "fail":
                faults.fail_next("findAllByQuery", count=2)
            elif kind == "drop":
                faults.drop_connections()
            elif kind == "expire":
                keys = self.emulator.session_keys()
                if keys:
                    faults.expire_session(self.rng.choice(keys))
            elif kind == "refuse":
                faults.refuse_connections()
                await asyncio.sleep(0.3)
                faults.accept_connections()
            else:
                keep = self.rng.random() < 0.5
                await asyncio.to_thread(self.emulator.restart, keep)
            await asyncio.sleep(self.rng.uniform(0.2, 0.5))
            faults.clear_latency()

    def report(self, rss_start: int, rss_end: int, live_after: int) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "calls": self.calls,
            "cancelled": self.cancelled,
            "errors": dict(self.errors),
            "untyped_errors": len(self.untyped),
            "untyped_examples": self.untyped[:5],
            "faults_injected": sum(self.faults.values()),
            "faults": dict(self.faults),
            "rss_kib_start": rss_start,
            "rss_kib_end": rss_end,
            "live_sessions_after": live_after,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    # The warnings of every failed call would drown the report.
    logging.basicConfig(level=logging.ERROR, format="%(name)s: %(message)s")
    rss_start = _rss_kib()
    with Emulator(idle_timeout=IDLE_TIMEOUT) as emulator:
        soak = Soak(emulator, args.seconds, args.seed)
        asyncio.run(soak.run())
        # A session the pool could not end while the server was away is the
        # server's to time out; one still alive after that is kept alive by
        # something, which would be a leak.
        time.sleep(IDLE_TIMEOUT + 1.0)
        live_after = emulator.counters.live_sessions
    figures = soak.report(rss_start, _rss_kib(), live_after)

    print(f"soak: {figures['calls']:,} calls in {args.seconds:g} s, "
          f"{figures['cancelled']:,} cancelled, "
          f"{figures['faults_injected']} faults injected")  # fmt: skip
    for name, count in sorted(figures["errors"].items()):
        print(f"  {name}: {count:,}")
    print(f"  untyped errors: {figures['untyped_errors']}")
    print(f"  resident memory: {rss_start / 1024:.0f} MB at start, "
          f"{figures['rss_kib_end'] / 1024:.0f} MB at the end")  # fmt: skip
    print(f"  sessions alive on the server after its idle timeout: {live_after}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 1 if figures["untyped_errors"] or live_after else 0


if __name__ == "__main__":
    sys.exit(main())
