"""Progress of a crawl on stderr: a bar on a terminal, log lines elsewhere."""

from __future__ import annotations

import asyncio
import sys
from typing import IO

import click

from ..crawl import CrawlStats

__all__ = ["show_progress"]


def _records(stats: CrawlStats) -> int:
    return sum(stats.produced.values())


async def show_progress(
    stats: CrawlStats,
    *,
    interval: float,
    stream: IO[str] | None = None,
    bar: bool | None = None,
) -> None:
    """Report ``stats`` until cancelled.

    ``bar`` (default: whether ``stream`` is a terminal) draws a tqdm bar of
    units done, with records and their rate; otherwise one plain line is
    written every ``interval`` seconds.
    """
    out = stream if stream is not None else sys.stderr
    if bar is None:
        bar = out.isatty()
    if bar:
        await _bar(stats, out)
    else:
        await _lines(stats, out, interval)


async def _bar(stats: CrawlStats, out: IO[str]) -> None:
    from tqdm import tqdm

    with tqdm(
        desc="crawl", unit=" units", file=out, dynamic_ncols=True, leave=False
    ) as progress:
        try:
            while True:
                if stats.units_total and progress.total != stats.units_total:
                    progress.total = stats.units_total
                    progress.refresh()
                progress.update(stats.units_done - progress.n)
                progress.set_postfix_str(
                    f"{_records(stats):,} records, {stats.rate:,.0f}/s, "
                    f"{stats.units_failed} errors",
                    refresh=True,
                )
                await asyncio.sleep(0.25)
        finally:
            progress.update(stats.units_done - progress.n)


async def _lines(stats: CrawlStats, out: IO[str], interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        total = stats.units_total or "?"
        click.echo(
            f"crawl: {stats.units_done}/{total} units, {_records(stats):,} records, "
            f"{stats.rate:,.0f}/s, {stats.units_failed} errors, "
            f"{stats.elapsed:.0f} s",
            file=out,
        )
