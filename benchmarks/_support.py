"""What every scenario needs: emulators, statistics, the machine, child clients."""

from __future__ import annotations

import asyncio
import datetime
import gc
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from aiomero.testing import EmulatorProcess

#: The repository's root: where ``python -m benchmarks`` runs from.
ROOT = Path(__file__).resolve().parent.parent

#: The catalog of scenarios 1 to 4 (see :mod:`benchmarks.catalogs`).
BENCH_CATALOG = "benchmarks.catalogs:bench_catalog"

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Size:
    """How much each scenario measures: the full run or a quick check."""

    quick: bool
    latencies: tuple[float, ...]
    # scenario 1: rounds, and calls of each variant per round at 0/5/50 ms
    overhead_rounds: int
    overhead_calls: dict[float, int]
    # scenarios 2 and 3
    callers: tuple[int, ...]
    seconds: float
    # scenario 4
    pooled: int
    repeats: int
    # scenario 5
    crawl_scale: float
    crawl_latency: float
    crawl_sessions: int

    def calls_at(self, latency_ms: float) -> int:
        return self.overhead_calls[latency_ms]


FULL = Size(
    quick=False,
    latencies=(0.0, 5.0, 50.0),
    overhead_rounds=10,
    overhead_calls={0.0: 60, 5.0: 15, 50.0: 4},
    callers=(1, 8, 32, 64),
    seconds=3.0,
    pooled=16,
    repeats=3,
    # about 100,000 images (and 14,000 wells) in the IDR-shaped catalog
    crawl_scale=0.0071,
    crawl_latency=50.0,
    crawl_sessions=32,
)

QUICK = Size(
    quick=True,
    latencies=(0.0,),
    overhead_rounds=2,
    overhead_calls={0.0: 10},
    callers=(1, 4),
    seconds=0.2,
    pooled=1,
    repeats=1,
    crawl_scale=0.00005,
    crawl_latency=0.0,
    crawl_sessions=4,
)


# -- statistics ---------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``, linearly interpolated."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def spread(seconds: Sequence[float]) -> dict[str, float]:
    """Median, p99, max and count of durations, in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "n": len(ms),
        "p50_ms": statistics.median(ms) if ms else float("nan"),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else float("nan"),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


# -- the machine --------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _commit() -> str:
    try:
        found = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "?"
    return found.stdout.strip() or "?"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "omero-py": _version("omero-py"),
        "zeroc-ice": _version("zeroc-ice"),
        "aiomero": _version("aiomero"),
        "commit": _commit(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


# -- processes ----------------------------------------------------------------


def proc_status(pid: int | str = "self") -> dict[str, int]:
    """Resident memory (KiB) and OS threads of a process, from /proc."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            found[key] = int(value.split()[0])
    return {"rss_kib": found["VmRSS"], "threads": found["Threads"]}


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; 3 is the first after ")"
    return (int(fields[11]) + int(fields[12])) / _TICKS


def own_cpu() -> float:
    """This process's user and system CPU time so far."""
    times = os.times()
    return times.user + times.system


def child_env() -> dict[str, str]:
    """The environment of child processes: they must find this package."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(ROOT), env.get("PYTHONPATH")])
    )
    return env


@dataclass
class ChildRun:
    """What a child process printed, and what it cost."""

    result: dict[str, Any]
    wall: float
    cpu: float
    max_rss_kib: int
    stderr: str


def run_child(
    argv: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    json_result: bool = True,
    timeout: float = 1800.0,
) -> ChildRun:
    """Run ``python argv...`` and wait for it; with ``json_result``, its last
    line on stdout is JSON.

    Its CPU time and peak memory come from the kernel's accounting of that
    one child. Raises RuntimeError with the child's stderr if it fails.
    """
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**child_env(), **(env or {})},
        cwd=ROOT,
    )
    reader = _Drain(child)
    try:
        _, status, usage = os.wait4(child.pid, 0)
    except BaseException:
        child.kill()
        raise
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    out, err = reader.join(timeout)
    if child.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited with {child.returncode}:\n{err[-4000:]}"
        )
    lines = [line for line in out.splitlines() if line.strip()]
    return ChildRun(
        result=json.loads(lines[-1]) if json_result else {},
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        max_rss_kib=usage.ru_maxrss,
        stderr=err,
    )


class _Drain:
    """Reads a child's two pipes on threads, so it never blocks on a full one."""

    def __init__(self, child: subprocess.Popen[str]) -> None:
        self._parts: dict[str, str] = {}
        self._threads = [
            threading.Thread(target=self._read, args=(name, pipe), daemon=True)
            for name, pipe in (("out", child.stdout), ("err", child.stderr))
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, name: str, pipe: Any) -> None:
        self._parts[name] = pipe.read()

    def join(self, timeout: float) -> tuple[str, str]:
        for thread in self._threads:
            thread.join(timeout)
        return self._parts.get("out", ""), self._parts.get("err", "")


class Servers:
    """Emulator processes, each started on first use and stopped by :meth:`close`.

    One process per catalog and latency: the latency of a child is fixed
    when it starts.
    """

    def __init__(self) -> None:
        self._running: dict[tuple[str, float | None, float], EmulatorProcess] = {}

    def get(
        self,
        latency_ms: float,
        catalog: str = BENCH_CATALOG,
        scale: float | None = None,
    ) -> EmulatorProcess:
        key = (catalog, scale, latency_ms)
        process = self._running.get(key)
        if process is None or not process.running:
            process = EmulatorProcess(
                catalog=catalog,
                scale=scale,
                latency_ms=latency_ms,
                idle_timeout=3600.0,
                env=child_env(),
            ).start()
            self._running[key] = process
        return process

    def stop(self, process: EmulatorProcess) -> None:
        for key, running in list(self._running.items()):
            if running is process:
                del self._running[key]
        process.stop()

    def close(self) -> None:
        for process in self._running.values():
            process.stop()
        self._running.clear()


class GcPauses:
    """Counts the full (oldest generation) garbage collections in a block,
    and the longest: they stop every thread, the event loop's included."""

    def __init__(self) -> None:
        self.count = 0
        self.longest_ms = 0.0
        self._started = 0.0

    def _seen(self, phase: str, info: dict[str, Any]) -> None:
        if info.get("generation") != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.count += 1
            took = (time.perf_counter() - self._started) * 1000
            self.longest_ms = max(self.longest_ms, took)

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._seen)


# -- the thread hop -----------------------------------------------------------


def _settle(future: asyncio.Future[Any], value: Any) -> None:
    if not future.done():
        future.set_result(value)


class ThreadHop:
    """The least a call can cost to leave the event loop and come back.

    A dedicated thread reads ``(future, fn)`` from a ``queue.SimpleQueue``,
    runs ``fn`` and completes the future with ``loop.call_soon_threadsafe``.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="bench-hop", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[[], Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((loop, future, fn))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            loop, future, fn = item
            loop.call_soon_threadsafe(_settle, future, fn())


def noop() -> None:
    return None


def rounded(values: Iterable[float], digits: int = 3) -> list[float]:
    return [round(v, digits) for v in values]
