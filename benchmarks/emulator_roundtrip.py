"""How fast the OMERO emulator answers the real BlitzGateway.

Measures, against an emulator in a child process (its own interpreter lock):

- the round trip of a trivial call (``IAdmin.getSecurityRoles``) through
  the gateway's service wrapper;
- a page of 500 images (``getObjects("Image", opts={"limit": 500})``);
- the throughput of 64 calls kept in flight when every reply is delayed by
  50 ms (ideal: 64 / 0.05 s = 1280 calls/s).

Run: ``python benchmarks/emulator_roundtrip.py [--in-process] [--calls N]``.
Prints a small table; ``--json`` prints the numbers as JSON instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aiomero.testing import Catalog, Emulator, EmulatorProcess

PAGE = 500
IN_FLIGHT = 64
LATENCY_MS = 50.0


def bench_catalog() -> Catalog:
    """The default users, and one dataset of 2,000 images owned by alice."""
    from aiomero.testing import default_catalog

    catalog = default_catalog()
    dataset = catalog.add_dataset("bench-ds", owner="alice", group="private-lab")
    for n in range(2000):
        catalog.add_image(
            f"bench-{n:05d}.tif", owner="alice", group="private-lab", dataset=dataset
        )
    return catalog


@contextmanager
def server(in_process: bool, latency_ms: float = 0.0) -> Iterator[Any]:
    """An emulator serving :func:`bench_catalog`, in or out of process."""
    if in_process:
        latency = latency_ms / 1000 if latency_ms else None
        with Emulator(catalog=bench_catalog(), latency=latency) as emulator:
            yield emulator
        return
    here = str(Path(__file__).resolve().parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [here, env.get("PYTHONPATH")]))
    with EmulatorProcess(
        catalog="emulator_roundtrip:bench_catalog", latency_ms=latency_ms, env=env
    ) as process:
        yield process


def timings(fn: Callable[[], Any], repeat: int) -> list[float]:
    """Seconds taken by each of ``repeat`` calls of ``fn``, after a warm-up."""
    fn()
    found = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        found.append(time.perf_counter() - start)
    return found


def p95(values: list[float]) -> float:
    return sorted(values)[int(len(values) * 0.95) - 1]


def measure(in_process: bool, calls: int) -> dict[str, Any]:
    """Run the three measurements; return their numbers."""
    results: dict[str, Any] = {"in_process": in_process}

    with server(in_process) as srv:
        conn = srv.gateway("alice", "alice-pw")
        assert conn.connect(), conn.getLastError()
        try:
            admin = conn.getAdminService()
            trivial = timings(admin.getSecurityRoles, calls)
            results["trivial_median_ms"] = statistics.median(trivial) * 1000
            results["trivial_p95_ms"] = p95(trivial) * 1000

            def page() -> None:
                rows = list(conn.getObjects("Image", opts={"offset": 0, "limit": PAGE}))
                assert len(rows) == PAGE, len(rows)

            pages = timings(page, max(3, calls // 50))
            results["page_median_ms"] = statistics.median(pages) * 1000
            results["page_per_row_ms"] = results["page_median_ms"] / PAGE
        finally:
            conn.close()

    with server(in_process, latency_ms=LATENCY_MS) as srv:
        conn = srv.gateway("alice", "alice-pw")
        assert conn.connect(), conn.getLastError()
        try:
            raw = conn.c.sf.getAdminService()
            total = IN_FLIGHT * 10
            start = time.perf_counter()
            pending = [raw.begin_getSecurityRoles() for _ in range(IN_FLIGHT)]
            done = 0
            while pending:
                raw.end_getSecurityRoles(pending.pop(0))
                done += 1
                if done + len(pending) < total:
                    pending.append(raw.begin_getSecurityRoles())
            took = time.perf_counter() - start
            results["inflight_calls_per_s"] = total / took
            results["inflight_ideal_per_s"] = IN_FLIGHT / (LATENCY_MS / 1000)
        finally:
            conn.close()
    return results


def table(results: dict[str, Any]) -> str:
    where = "in process" if results["in_process"] else "child process"
    rows = [
        ("trivial call, median", f"{results['trivial_median_ms']:.3f} ms"),
        ("trivial call, p95", f"{results['trivial_p95_ms']:.3f} ms"),
        (f"page of {PAGE} images, median", f"{results['page_median_ms']:.1f} ms"),
        ("  per image", f"{results['page_per_row_ms']:.3f} ms"),
        (
            f"{IN_FLIGHT} in flight at {LATENCY_MS:.0f} ms",
            f"{results['inflight_calls_per_s']:.0f} calls/s "
            f"(ideal {results['inflight_ideal_per_s']:.0f})",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"OMERO emulator round trips (server {where})", ""]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = measure(args.in_process, args.calls)
    print(json.dumps(results, indent=2) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
