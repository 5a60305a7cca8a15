"""Scenario 5: a whole IDR-shaped server, walked and crawled.

The emulator serves ``idr_catalog(scale)`` (about 100,000 images at the
full size) with a latency on every reply. Each client runs in a child
process of its own, so its CPU time is its own, never the emulator's:

- ``walk``: the sequential ``BlitzGateway`` walk as users write it, in
  every group (``SERVICE_OPTS.setOmeroGroup(-1)``):
  ``getObjects("Project")`` → ``listChildren()`` → ``listChildren()``, and
  screens → plates → wells → their images, counting the objects;
- ``crawler``: :class:`aiomero.crawl.Crawler` through an
  ``AsyncGatewayPool`` of up to S sessions, writing its records to a file;
- ``cli``: ``aiomero crawl -c S -o FILE``, the command, timed from outside
  (interpreter start, imports and logins included);
- ``startup``: a child that only imports what the command imports, to
  show that fixed cost.

Wall time and CPU time are measured inside the ``walk`` and ``crawler``
children from the login to the last object (the process's CPU clock
counts every thread), and from outside for the command. The emulator's own
CPU time over each run is read from ``/proc``.

Run alone, ``python -m benchmarks.crawl --child walk|crawler|startup HOST
PORT SESSIONS`` prints one child's figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._support import Servers, Size, cpu_seconds, own_cpu, ratio, run_child

USER = "public"
PASSWORD = "public"
CLIENTS = ("startup", "walk", "crawler", "cli")


def run(servers: Servers, size: Size) -> dict[str, Any]:
    """The four clients against one emulator; their figures and ratios."""
    process = servers.get(size.crawl_latency, catalog="idr", scale=size.crawl_scale)
    sessions = size.crawl_sessions
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="aiomero-bench-") as scratch:
        for client in CLIENTS:
            server_before = cpu_seconds(process.pid)
            if client == "cli":
                found[client] = _cli(process, sessions, Path(scratch) / "crawl.jsonl")
            else:
                found[client] = _child(client, process, sessions)
            found[client]["server_cpu_s"] = cpu_seconds(process.pid) - server_before
    servers.stop(process)

    walk, crawler, cli = found["walk"], found["crawler"], found["cli"]
    for figures in (walk, crawler, cli):
        figures["objects_per_s"] = ratio(figures["objects"], figures["wall_s"])
        figures["cpu_ms_per_object"] = ratio(
            figures["cpu_s"] * 1000, figures["objects"]
        )
    return {
        "scale": size.crawl_scale,
        "latency_ms": size.crawl_latency,
        "sessions": sessions,
        "clients": found,
        "same_objects": walk["objects"] == crawler["objects"] == cli["objects"],
        "crawler_speedup": ratio(walk["wall_s"], crawler["wall_s"]),
        "cli_speedup": ratio(walk["wall_s"], cli["wall_s"]),
        "crawler_cpu_over_walk": ratio(
            crawler["cpu_ms_per_object"], walk["cpu_ms_per_object"]
        ),
        "cli_cpu_over_walk": ratio(cli["cpu_ms_per_object"], walk["cpu_ms_per_object"]),
    }


def _child(client: str, process: Any, sessions: int) -> dict[str, Any]:
    child = run_child(
        [
            "-m",
            "benchmarks.crawl",
            "--child",
            client,
            process.host,
            str(process.port),
            str(sessions),
        ]
    )
    figures = child.result
    figures["process_wall_s"] = child.wall
    figures["process_cpu_s"] = child.cpu
    figures["max_rss_mib"] = child.max_rss_kib / 1024
    if client == "startup":
        figures.update(objects=0, wall_s=child.wall, cpu_s=child.cpu)
    return figures


def _cli(process: Any, sessions: int, output: Path) -> dict[str, Any]:
    child = run_child(
        [
            "-m",
            "aiomero.cli",
            "crawl",
            "--host",
            process.host,
            "--port",
            str(process.port),
            "--user",
            USER,
            "--output",
            str(output),
            "--fresh",
            "--progress",
            "none",
            "--concurrency",
            str(sessions),
        ],
        env={"OMERO_PASSWORD": PASSWORD},
        json_result=False,
    )
    counts: collections.Counter[str] = collections.Counter()
    with output.open("rb") as lines:
        for line in lines:
            counts[json.loads(line)["type"]] += 1
    return {
        "objects": sum(counts.values()),
        "counts": dict(counts),
        "wall_s": child.wall,
        "cpu_s": child.cpu,
        "max_rss_mib": child.max_rss_kib / 1024,
        "summary": child.stderr.strip().splitlines()[-2:],
    }


# -- the children -------------------------------------------------------------


def _walk(host: str, port: int) -> dict[str, Any]:
    from omero.gateway import BlitzGateway

    counts: collections.Counter[str] = collections.Counter()
    started, cpu = time.perf_counter(), own_cpu()
    conn = BlitzGateway(USER, PASSWORD, host=host, port=port)
    assert conn.connect(), conn.getLastError()
    conn.SERVICE_OPTS.setOmeroGroup(-1)
    queries = 2
    for project in conn.getObjects("Project"):
        counts["Project"] += 1
        queries += 1
        for dataset in project.listChildren():
            counts["Dataset"] += 1
            queries += 1
            for _image in dataset.listChildren():
                counts["Image"] += 1
    for screen in conn.getObjects("Screen"):
        counts["Screen"] += 1
        queries += 1
        for plate in screen.listChildren():
            counts["Plate"] += 1
            queries += 1
            for well in plate.listChildren():
                counts["Well"] += 1
                for sample in well.listChildren():
                    sample.getImage()
                    counts["Image"] += 1
    wall, cpu = time.perf_counter() - started, own_cpu() - cpu
    conn.close()
    return {
        "objects": sum(counts.values()),
        "counts": dict(counts),
        "queries": queries,
        "wall_s": wall,
        "cpu_s": cpu,
    }


async def _crawler(host: str, port: int, sessions: int) -> dict[str, Any]:
    from aiomero import AsyncGatewayPool
    from aiomero.crawl import CheckpointedOutput, Crawler, CrawlOptions

    options = CrawlOptions(concurrency=sessions)
    with tempfile.TemporaryDirectory(prefix="aiomero-bench-") as scratch:
        output = CheckpointedOutput(
            Path(scratch) / "crawl.jsonl", identity=options.identity()
        )
        try:
            started, cpu = time.perf_counter(), own_cpu()
            pool = AsyncGatewayPool(
                USER, PASSWORD, host=host, port=port, min_size=1, max_size=sessions
            )
            async with pool:
                summary = await Crawler(pool, output, options).run()
                wall, cpu = time.perf_counter() - started, own_cpu() - cpu
        finally:
            output.close()
    assert summary.complete and not summary.errors, summary
    return {
        "objects": summary.total,
        "counts": dict(summary.counts),
        "queries": summary.round_trips,
        "wall_s": wall,
        "cpu_s": cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one child of the crawl scenario")
    parser.add_argument(
        "--child", nargs=4, metavar=("CLIENT", "HOST", "PORT", "SESSIONS")
    )
    args = parser.parse_args(argv)
    client, host, port, sessions = args.child
    if client == "walk":
        found = _walk(host, int(port))
    elif client == "crawler":
        found = asyncio.run(_crawler(host, int(port), int(sessions)))
    elif client == "startup":
        # What the command imports before it can do anything.
        import omero.gateway  # noqa: F401

        import aiomero.cli.crawl
        import aiomero.crawl
        import aiomero.pool  # noqa: F401

        found = {}
    else:
        parser.error("CLIENT must be walk, crawler or startup")
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
