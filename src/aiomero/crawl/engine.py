"""The crawl engine: every container and image a session can see, once.

A crawl lists the top-level containers (projects and screens, and, unless
told otherwise, the datasets, plates and images in no container), keeps
those of its shard that no earlier run finished, and groups them into
*units* of a few containers each. Worker tasks take one unit at a time and
walk it down to the images: project, its datasets, their images; screen, its
plates, their wells, their images. A unit's records are gathered aside and
handed to the output only once the unit is complete, which is what lets an
interrupted crawl resume without losing or repeating a record (see
:mod:`aiomero.crawl.output`).

A dataset linked to two projects (or a plate to two screens) is listed under
each of them, but its own children are crawled under one parent only: the
one with the lowest id. The choice depends on nothing but the server's data,
so it holds across runs and shards.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import tempfile
import time
from collections.abc import Iterable, Sequence
from typing import IO, Any

import structlog

from .._logging import _render
from ..errors import (
    AiomeroError,
    AuthenticationError,
    CallTimeoutError,
    ConnectionLostError,
    GatewayClosedError,
    PoolTimeout,
    ServerUnreachableError,
    SessionExpiredError,
)
from .options import CrawlOptions, CrawlStats, CrawlSummary
from .output import ContainerKey, CrawlOutput
from .queries import (
    CHILD_LINKS,
    GROUPS,
    PARENT_LINKS,
    PEOPLE,
    TOP_LEVEL,
    WELL_IMAGES,
    WELLS,
    Fetcher,
    GatewayPool,
    gather_all,
)
from .records import KINDS, record_line, well_label

__all__ = ["LOGGER_NAME", "Crawler", "UnknownGroupError"]

#: The logger of crawl events, a child of aiomero's, so that an application
#: can hear a crawl's progress without every session's.
LOGGER_NAME = "aiomero.crawl"

_plain = structlog.wrap_logger(
    logging.getLogger(LOGGER_NAME),
    wrapper_class=structlog.stdlib.BoundLogger,
    processors=[structlog.stdlib.filter_by_level, _render],
)


def _get_logger() -> Any:
    if structlog.is_configured():
        return structlog.get_logger(LOGGER_NAME)
    return _plain


# Errors after which no further query can succeed: the crawl stops.
_FATAL = (AuthenticationError, ServerUnreachableError, GatewayClosedError)
# Errors a second try may not meet.
_TRANSIENT = (ConnectionLostError, SessionExpiredError, CallTimeoutError, PoolTimeout)
# Of those, the ones that still mean the server is gone once retries run out.
_LOST = (ConnectionLostError, SessionExpiredError)

# A unit's records stay in memory up to this size, then go to a temporary file.
_SPOOL_BYTES = 8 * 1024 * 1024


class UnknownGroupError(ValueError):
    """A group given by name that the server does not know."""


@dataclasses.dataclass
class _Unit:
    """A few top-level containers of one kind, crawled and written together."""

    group: int | str
    kind: str
    rows: list[list[Any]]

    @property
    def keys(self) -> list[ContainerKey]:
        return [(self.kind, int(row[0])) for row in self.rows]

    @property
    def ids(self) -> list[int]:
        return [int(row[0]) for row in self.rows]


class _Names:
    """Owner and group names by id, fetched once at the start."""

    def __init__(self, people: Iterable[list[Any]], groups: Iterable[list[Any]]):
        self.people = {int(i): name for i, name in people}
        self.groups = {int(i): name for i, name in groups}

    def group_id(self, group: int | str) -> int:
        if isinstance(group, int):
            return group
        for gid, name in self.groups.items():
            if name == group:
                return gid
        raise UnknownGroupError(f"no group named {group!r}")


class _UnitRecords:
    """The records of one unit, gathered aside until the unit is complete."""

    def __init__(self, names: _Names, stats: CrawlStats) -> None:
        self.body: IO[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
            max_size=_SPOOL_BYTES
        )
        self.counts: collections.Counter[str] = collections.Counter()
        self._names = names
        self._stats = stats

    def add(
        self,
        kind: str,
        cells: Sequence[Any],
        parent_type: str | None = None,
        parent_id: int | None = None,
        **extra: Any,
    ) -> None:
        """Add the record of ``cells`` = (id, name, owner id, group id)."""
        oid, name, owner_id, group_id = cells
        record = {
            "type": kind,
            "id": oid,
            "name": name,
            "parent_type": parent_type,
            "parent_id": parent_id,
            "owner_id": owner_id,
            "owner": self._names.people.get(owner_id),
            "group_id": group_id,
            "group": self._names.groups.get(group_id),
            **extra,
        }
        self.body.write(record_line(record))
        self.counts[kind] += 1
        self._stats.produced[kind] += 1

    def close(self) -> None:
        self.body.close()


class Crawler:
    """Crawls through ``pool`` into ``output`` with ``options``.

    The pool is used, not closed; so is the output. :meth:`run` may be
    called once.
    """

    def __init__(
        self,
        pool: GatewayPool,
        output: CrawlOutput,
        options: CrawlOptions | None = None,
        *,
        logger: Any = None,
    ) -> None:
        self.options = options or CrawlOptions()
        self.output = output
        self.stats = CrawlStats(previous=dict(output.previous_counts))
        self._log = logger if logger is not None else _get_logger()
        self._fetch = Fetcher(
            pool,
            concurrency=self.options.concurrency,
            page_size=self.options.page_size,
            ids_per_query=self.options.ids_per_query,
            timeout=self.options.timeout,
        )
        self._names = _Names((), ())

    async def run(self) -> CrawlSummary:
        """Crawl everything not done yet; return the summary.

        Raises ``AuthenticationError``, ``ServerUnreachableError`` or
        ``ConnectionLostError`` when the server cannot be used at all, and
        :class:`UnknownGroupError` for a group name the server does not know;
        an error confined to one unit is logged and counted instead. Work
        already handed to the output stays there. Cancelling it stops every
        query and writes nothing more.
        """
        self.stats.started = time.monotonic()
        if self.output.complete:
            self._log.info("crawl_already_complete")
            return self._summary()

        people, groups = await gather_all(
            [self._fetch.rows(PEOPLE, group=-1), self._fetch.rows(GROUPS, group=-1)]
        )
        self._names = _Names(people, groups)
        units = await self._plan()
        self.stats.units_total = len(units)
        self._log.info(
            "crawl_started",
            units=len(units),
            skipped=self.stats.skipped,
            shard=f"{self.options.shard[0]}/{self.options.shard[1]}",
        )

        pending = collections.deque(units)
        workers = min(self.options.concurrency, len(units))
        await gather_all([self._work(pending) for _ in range(workers)])

        if self.stats.units_failed == 0:
            self.output.finish()
        summary = self._summary()
        self._log.info(
            "crawl_finished",
            records=summary.total,
            errors=summary.errors,
            seconds=round(summary.elapsed, 2),
        )
        return summary

    def _summary(self) -> CrawlSummary:
        self.stats.round_trips = self._fetch.round_trips
        return CrawlSummary(
            counts={k: self.stats.committed[k] for k in KINDS},
            previous={k: self.stats.previous.get(k, 0) for k in KINDS},
            errors=self.stats.units_failed,
            elapsed=self.stats.elapsed,
            round_trips=self._fetch.round_trips,
            skipped=self.stats.skipped,
            complete=self.output.complete,
        )

    # -- planning --------------------------------------------------------

    async def _plan(self) -> list[_Unit]:
        """The units still to crawl, from the top-level listings."""
        groups: list[int | str] = (
            [-1]
            if -1 in self.options.groups
            else [self._names.group_id(g) for g in self.options.groups]
        )
        kinds = list(TOP_LEVEL) if self.options.orphans else ["Project", "Screen"]
        listings = [(g, kind) for g in groups for kind in kinds]
        found = await gather_all(
            [self._fetch.rows(TOP_LEVEL[kind], group=g) for g, kind in listings]
        )

        k, n = self.options.shard
        done = self.output.done
        seen: set[ContainerKey] = set()
        units: list[_Unit] = []
        for (group, kind), rows in zip(listings, found, strict=True):
            mine = []
            for row in rows:
                key = (kind, int(row[0]))
                if key[1] % n != k - 1 or key in seen:
                    continue
                seen.add(key)
                if key in done:
                    self.stats.skipped += 1
                    continue
                mine.append(row)
            # Images in no container need no further query: larger units.
            size = self.options.batch_size
            if kind == "Image":
                size = max(size, self.options.page_size)
            units += [
                _Unit(group, kind, mine[i : i + size])
                for i in range(0, len(mine), size)
            ]
        return units

    # -- running units ---------------------------------------------------

    async def _work(self, pending: collections.deque[_Unit]) -> None:
        while pending:
            await self._attempt(pending.popleft())

    async def _attempt(self, unit: _Unit) -> None:
        """Crawl and commit one unit, retrying what may pass a second time."""
        first = unit.keys[0]
        for attempt in range(self.options.retries + 1):
            records = _UnitRecords(self._names, self.stats)
            try:
                await self._crawl(unit, records)
                self.output.commit(unit.keys, records.body, records.counts)
                self.stats.committed.update(records.counts)
                self.stats.units_done += 1
                return
            except _FATAL:
                raise
            except _TRANSIENT as exc:
                last_try = attempt == self.options.retries
                if last_try and isinstance(exc, _LOST):
                    raise
                # A retry is routine; only a unit given up on is a warning.
                log = self._log.warning if last_try else self._log.info
                log(
                    "crawl_unit_failed" if last_try else "crawl_unit_retry",
                    kind=unit.kind,
                    first_id=first[1],
                    containers=len(unit.rows),
                    attempt=attempt + 1,
                    error=f"{type(exc).__name__}: {exc}",
                )
                if last_try:
                    self.stats.units_failed += 1
                    return
                await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
            except AiomeroError as exc:
                self._log.warning(
                    "crawl_unit_failed",
                    kind=unit.kind,
                    first_id=first[1],
                    containers=len(unit.rows),
                    error=f"{type(exc).__name__}: {exc}",
                )
                self.stats.units_failed += 1
                return
            finally:
                records.close()

    async def _crawl(self, unit: _Unit, out: _UnitRecords) -> None:
        for row in unit.rows:
            out.add(unit.kind, row)
        if unit.kind == "Project":
            datasets = await self._children("Project", unit.ids, unit.group, out)
            mine = await self._first_parent_here("Dataset", datasets, unit)
            await self._children("Dataset", mine, unit.group, out)
        elif unit.kind == "Dataset":
            await self._children("Dataset", unit.ids, unit.group, out)
        elif unit.kind == "Screen":
            plates = await self._children("Screen", unit.ids, unit.group, out)
            mine = await self._first_parent_here("Plate", plates, unit)
            await self._wells(mine, unit.group, out)
        elif unit.kind == "Plate":
            await self._wells(unit.ids, unit.group, out)

    async def _children(
        self, kind: str, ids: Sequence[int], group: int | str, out: _UnitRecords
    ) -> list[int]:
        """Add the children of the containers ``ids`` of ``kind``; their ids."""
        child_kind = {"Project": "Dataset", "Dataset": "Image", "Screen": "Plate"}[kind]
        found: set[int] = set()

        def write(page: list[list[Any]]) -> None:
            for parent_id, *child in page:
                out.add(child_kind, child, kind, parent_id)
                found.add(int(child[0]))

        await self._fetch.rows_for(CHILD_LINKS[kind], ids, group=group, each_page=write)
        return sorted(found)

    async def _first_parent_here(
        self, kind: str, ids: Sequence[int], unit: _Unit
    ) -> list[int]:
        """Those of ``ids`` whose lowest-id parent is in ``unit``: the ones
        whose children this unit crawls."""
        links = await self._fetch.rows_for(PARENT_LINKS[kind], ids, group=unit.group)
        first: dict[int, int] = {}
        for child, parent in links:
            first[child] = min(first.get(child, parent), parent)
        here = set(unit.ids)
        return [i for i in ids if first.get(i) is None or first[i] in here]

    async def _wells(
        self, plates: Sequence[int], group: int | str, out: _UnitRecords
    ) -> None:
        wells: set[int] = set()

        def write_wells(page: list[list[Any]]) -> None:
            for plate_id, well_id, row, column, owner_id, group_id in page:
                cells = (well_id, well_label(row, column), owner_id, group_id)
                out.add("Well", cells, "Plate", plate_id, row=row, column=column)
                wells.add(int(well_id))

        def write_images(page: list[list[Any]]) -> None:
            for well_id, *image in page:
                out.add("Image", image, "Well", well_id)

        await self._fetch.rows_for(WELLS, plates, group=group, each_page=write_wells)
        await self._fetch.rows_for(
            WELL_IMAGES, wells, group=group, each_page=write_images
        )
