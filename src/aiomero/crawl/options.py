"""What a crawl is asked to do, and how far it got.

:class:`CrawlOptions` says what to crawl and how hard; :class:`CrawlStats`
holds the live figures a progress display reads; :class:`CrawlSummary` is
what :meth:`Crawler.run <aiomero.crawl.Crawler.run>` returns.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Mapping
from typing import Any

from ..settings import check_group, check_timeout

__all__ = ["CrawlOptions", "CrawlStats", "CrawlSummary"]


@dataclasses.dataclass(frozen=True)
class CrawlOptions:
    """What to crawl and how hard.

    ``groups`` are group ids or names, or ``(-1,)`` for every group the
    user can see. ``shard`` ``(k, n)`` keeps the top-level containers whose
    id is ``k - 1`` modulo ``n``. ``concurrency`` bounds the queries in
    flight, ``page_size`` the rows per query and ``batch_size`` the
    top-level containers per unit. ``orphans`` adds the datasets, plates and
    images in no container. A unit that meets a transient error is tried
    ``retries`` more times. ``timeout`` bounds each query, in seconds.
    Invalid values raise ``ValueError`` (or ``TypeError`` for a group or
    timeout of the wrong type).
    """

    groups: tuple[int | str, ...] = (-1,)
    shard: tuple[int, int] = (1, 1)
    concurrency: int = 8
    page_size: int = 1000
    batch_size: int = 10
    ids_per_query: int = 500
    orphans: bool = True
    retries: int = 2
    timeout: float | None = 300.0

    def __post_init__(self) -> None:
        k, n = self.shard
        if not 1 <= k <= n:
            raise ValueError(f"shard {k}/{n}: need 1 <= K <= N")
        for name in ("concurrency", "page_size", "batch_size", "ids_per_query"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.retries < 0:
            raise ValueError("retries must not be negative")
        if not self.groups:
            raise ValueError("groups must name at least one group, or -1")
        for group in self.groups:
            check_group(group)
        check_timeout(self.timeout, "timeout")

    def identity(self) -> dict[str, Any]:
        """The options that decide what a crawl writes (a resumed crawl must
        keep them); concurrency and paging only change how fast."""
        return {
            "groups": sorted(str(g) for g in self.groups),
            "shard": f"{self.shard[0]}/{self.shard[1]}",
            "orphans": self.orphans,
        }


@dataclasses.dataclass
class CrawlStats:
    """Live figures of a running crawl, read by progress displays.

    ``produced`` counts records as queries return them (a unit tried twice
    counts twice); ``committed`` counts records written to the output.
    """

    started: float = dataclasses.field(default_factory=time.monotonic)
    produced: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter
    )
    committed: collections.Counter[str] = dataclasses.field(
        default_factory=collections.Counter
    )
    previous: dict[str, int] = dataclasses.field(default_factory=dict)
    units_total: int = 0
    units_done: int = 0
    units_failed: int = 0
    skipped: int = 0
    round_trips: int = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Records produced per second so far."""
        return sum(self.produced.values()) / max(self.elapsed, 1e-9)


@dataclasses.dataclass(frozen=True)
class CrawlSummary:
    """How a crawl ended.

    ``counts`` are the records this run wrote, per type; ``previous`` those
    of earlier runs of a resumed crawl. ``errors`` counts the units that
    failed (their containers are not marked done: running the crawl again
    retries them). ``complete`` says whether the whole crawl is now written.
    """

    counts: Mapping[str, int]
    previous: Mapping[str, int]
    errors: int
    elapsed: float
    round_trips: int
    skipped: int
    complete: bool

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def rate(self) -> float:
        """Records written per second by this run."""
        return self.total / max(self.elapsed, 1e-9)
