"""``aiomero crawl``: every project, dataset, screen, plate, well and image."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import click

from ..errors import AiomeroError
from ._connect import (
    EXIT_ERRORS,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    FiniteFloatRange,
    Target,
    connection_options,
    exit_for,
    resolve_target,
    running_target,
    usage_errors,
)
from ._progress import show_progress
from ._run import Interrupted, run_command

__all__ = ["crawl"]

#: The demo's IDR scale: about 160,000 records, crawled in seconds.
DEMO_SCALE = 0.01


def _shard(_ctx: Any, _param: Any, value: str | None) -> tuple[int, int]:
    if value is None:
        return (1, 1)
    k, sep, n = value.partition("/")
    if not sep or not k.isdigit() or not n.isdigit() or not 1 <= int(k) <= int(n):
        raise click.BadParameter(f"{value!r} is not K/N with 1 <= K <= N")
    return (int(k), int(n))


def _groups(_ctx: Any, _param: Any, value: tuple[str, ...]) -> tuple[int | str, ...]:
    groups: list[int | str] = []
    for item in value:
        text = item.strip()
        if not text:
            raise click.BadParameter("a group must not be empty")
        groups.append(int(text) if text.lstrip("-").isdigit() else text)
    return tuple(groups) or (-1,)


@click.command()
@connection_options
@click.option(
    "-g",
    "--group",
    "groups",
    multiple=True,
    callback=_groups,
    help="group id or name to crawl; repeat for several [default: every "
    "group the user can see]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="file of JSON lines [default: standard output]; needed to resume",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    help="checkpoint file [default: OUTPUT.checkpoint]",
)
@click.option("--fresh", is_flag=True, help="ignore any checkpoint and start over")
@click.option(
    "--shard",
    callback=_shard,
    metavar="K/N",
    help="crawl the K-th of N shares of the top-level containers (id modulo N)",
)
@click.option(
    "-c",
    "--concurrency",
    type=click.IntRange(1, 256),
    default=8,
    show_default=True,
    help="sessions, and queries in flight",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 100_000),
    default=1000,
    show_default=True,
    help="rows per query",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 10_000),
    default=10,
    show_default=True,
    help="top-level containers crawled, and checkpointed, together",
)
@click.option(
    "--orphans/--no-orphans",
    default=True,
    show_default=True,
    help="include datasets, plates and images in no container",
)
@click.option(
    "--timeout",
    type=FiniteFloatRange(0, min_open=True),
    default=300.0,
    show_default=True,
    help="seconds a query may take",
)
@click.option(
    "--progress",
    type=click.Choice(["auto", "bar", "lines", "none"]),
    default="auto",
    show_default=True,
    help="progress on stderr: a bar on a terminal, else lines",
)
@click.option(
    "--progress-interval",
    type=FiniteFloatRange(0, min_open=True),
    default=10.0,
    show_default=True,
    help="seconds between progress lines",
)
@click.option(
    "--demo-scale",
    type=FiniteFloatRange(0, 1, min_open=True),
    default=DEMO_SCALE,
    show_default=True,
    help="size of the embedded demo catalog, when no server is given",
)
def crawl(**opts: Any) -> None:
    """Crawl projects > datasets > images and screens > plates > wells >
    images, writing one JSON line per object and parent.

    With --output, progress is checkpointed: run the same command again
    after an interruption and it carries on where it stopped.
    """
    from ..crawl import CheckpointError, CrawlOptions

    if opts["checkpoint"] is not None and opts["output"] is None:
        raise click.UsageError("--checkpoint needs --output")
    with usage_errors():
        options = CrawlOptions(
            groups=opts["groups"],
            shard=opts["shard"],
            concurrency=opts["concurrency"],
            page_size=opts["page_size"],
            batch_size=opts["batch_size"],
            orphans=opts["orphans"],
            timeout=opts["timeout"],
        )
    target = resolve_target(
        host=opts["host"],
        port=opts["port"],
        username=opts["username"],
        secure=opts["secure"],
        config=opts["config"],
        demo_scale=opts["demo_scale"],
    )
    try:
        output = _open_output(opts, target, options)
    except CheckpointError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        raise CliError(f"cannot open the output: {exc}", EXIT_USAGE) from None

    try:
        if output.complete:
            click.echo(
                f"{opts['output']}: this crawl is already complete; "
                "use --fresh to crawl again",
                err=True,
            )
            return
        _crawl(target, output, options, opts)
    finally:
        output.close()


def _open_output(opts: dict[str, Any], target: Target, options: Any) -> Any:
    from ..crawl import CheckpointedOutput, StreamOutput

    path = opts["output"]
    if path is None or str(path) == "-":
        return StreamOutput(sys.stdout.buffer)
    output = CheckpointedOutput(
        path,
        opts["checkpoint"],
        identity={**target.identity(), **options.identity()},
        fresh=opts["fresh"],
    )
    if output.resumed and not output.complete:
        click.echo(
            f"resuming: {len(output.done):,} top-level containers done before",
            err=True,
        )
    return output


def _crawl(target: Target, output: Any, options: Any, opts: dict[str, Any]) -> None:
    from ..crawl import Crawler, UnknownGroupError
    from ..pool import AsyncGatewayPool

    crawlers: list[Crawler] = []

    async def main() -> Any:
        with running_target(target) as settings:
            pool = AsyncGatewayPool(
                settings.username,
                settings.password,
                host=settings.host,
                port=settings.port,
                secure=settings.secure,
                min_size=1,
                max_size=options.concurrency,
            )
            async with pool:
                crawler = Crawler(pool, output, options)
                crawlers.append(crawler)
                progress = _start_progress(crawler, opts)
                try:
                    return await crawler.run()
                finally:
                    if progress is not None:
                        progress.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await progress

    try:
        summary = run_command(main)
    except Interrupted:
        if crawlers:
            _report_interrupted(crawlers[0], output, opts)
        sys.exit(EXIT_INTERRUPTED)
    except UnknownGroupError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    except OSError as exc:
        # A full disk, or a reader of standard output that went away.
        if crawlers:
            _report_interrupted(crawlers[0], output, opts, stopped="stopped")
        raise CliError(f"cannot write the output: {exc}", EXIT_ERRORS) from None
    except AiomeroError as exc:
        error = exit_for(exc, target.where)
        if crawlers:
            # Running a usage error again fails the same way.
            resumable = error.exit_code != EXIT_USAGE
            _report_interrupted(
                crawlers[0], output, opts, stopped="stopped", resumable=resumable
            )
        raise error from None

    _report(summary, output, opts)
    if summary.errors:
        raise CliError(
            f"{summary.errors} unit(s) failed"
            + ("; run the same command again to retry them" if opts["output"] else ""),
            EXIT_ERRORS,
        )


def _start_progress(crawler: Any, opts: dict[str, Any]) -> asyncio.Task[None] | None:
    mode = opts["progress"]
    if mode == "none":
        return None
    bar = None if mode == "auto" else mode == "bar"
    return asyncio.ensure_future(
        show_progress(crawler.stats, interval=opts["progress_interval"], bar=bar)
    )


def _counts_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind} {count:,}" for kind, count in counts.items())


def _report(summary: Any, output: Any, opts: dict[str, Any]) -> None:
    state = "complete" if summary.complete else "finished with errors"
    click.echo(
        f"crawl {state}: {summary.total:,} records in {summary.elapsed:.1f} s "
        f"({summary.rate:,.0f}/s), {summary.round_trips:,} queries, "
        f"{summary.errors} errors",
        err=True,
    )
    click.echo(f"  {_counts_line(dict(summary.counts))}", err=True)
    previous = sum(summary.previous.values())
    if previous:
        totals = {k: summary.counts[k] + summary.previous[k] for k in summary.counts}
        click.echo(
            f"  with {previous:,} records of earlier runs: {_counts_line(totals)}",
            err=True,
        )


def _report_interrupted(
    crawler: Any,
    output: Any,
    opts: dict[str, Any],
    stopped: str = "interrupted",
    *,
    resumable: bool = True,
) -> None:
    stats = crawler.stats
    written = sum(stats.committed.values())
    again = (
        "; run the same command again to resume"
        if resumable and opts["output"] is not None
        else ""
    )
    click.echo(
        f"{stopped}: {written:,} records of {stats.units_done} units written "
        f"in {stats.elapsed:.1f} s{again}",
        err=True,
    )
