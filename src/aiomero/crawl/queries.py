"""The queries of a crawl: HQL projections, paged and batched by parent.

Every query selects only the columns a record needs (ids, names, owner and
group ids, parent ids), so neither side builds model objects. Children are
asked for by the ids of many parents at once (``in (:ids)``), at most
``ids_per_query`` per query, and read ``page_size`` rows per round trip,
ordered by parent first: a total order (a link's parent and child are
unique together), so that offset paging is stable, and one a server can
follow through its parent index instead of sorting every row. The texts
are plain HQL that a real OMERO server (Hibernate) accepts as well as the
emulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Protocol, TypeVar

__all__ = [
    "CHILD_LINKS",
    "GROUPS",
    "PAGES_AHEAD",
    "PARENT_LINKS",
    "PEOPLE",
    "TOP_LEVEL",
    "WELLS",
    "WELL_IMAGES",
    "Fetcher",
    "GatewayPool",
    "PageHandler",
    "gather_all",
]

T = TypeVar("T")

#: Called with each page of rows as it arrives.
PageHandler = Callable[[list[list[Any]]], None]

#: The most pages of one listing asked for at once.
PAGES_AHEAD = 8

_OWNED = "{a}.details.owner.id, {a}.details.group.id"

#: Top-level containers, and objects in no container, per listing name.
TOP_LEVEL: dict[str, str] = {
    "Project": (
        f"select obj.id, obj.name, {_OWNED.format(a='obj')} from Project obj "
        "order by obj.id"
    ),
    "Screen": (
        f"select obj.id, obj.name, {_OWNED.format(a='obj')} from Screen obj "
        "order by obj.id"
    ),
    "Dataset": (
        f"select obj.id, obj.name, {_OWNED.format(a='obj')} from Dataset obj "
        "where not exists (select l.id from ProjectDatasetLink l "
        "where l.child.id = obj.id) order by obj.id"
    ),
    "Plate": (
        f"select obj.id, obj.name, {_OWNED.format(a='obj')} from Plate obj "
        "where not exists (select l.id from ScreenPlateLink l "
        "where l.child.id = obj.id) order by obj.id"
    ),
    "Image": (
        f"select obj.id, obj.name, {_OWNED.format(a='obj')} from Image obj "
        "where not exists (select l.id from DatasetImageLink l "
        "where l.child.id = obj.id) "
        "and not exists (select ws.id from WellSample ws "
        "where ws.image.id = obj.id) order by obj.id"
    ),
}


def _children(link: str) -> str:
    return (
        f"select l.parent.id, l.child.id, l.child.name, {_OWNED.format(a='l.child')} "
        f"from {link} l where l.parent.id in (:ids) order by l.parent.id, l.child.id"
    )


def _parents(link: str) -> str:
    return (
        f"select l.child.id, l.parent.id from {link} l "
        "where l.child.id in (:ids) order by l.child.id, l.parent.id"
    )


#: Children of containers: rows of (parent id, child id, name, owner, group).
CHILD_LINKS: dict[str, str] = {
    "Project": _children("ProjectDatasetLink"),
    "Dataset": _children("DatasetImageLink"),
    "Screen": _children("ScreenPlateLink"),
}

#: Every parent of a child: rows of (child id, parent id).
PARENT_LINKS: dict[str, str] = {
    "Dataset": _parents("ProjectDatasetLink"),
    "Plate": _parents("ScreenPlateLink"),
}

#: Wells of plates: (plate id, well id, row, column, owner, group).
WELLS = (
    f"select w.plate.id, w.id, w.row, w.column, {_OWNED.format(a='w')} "
    "from Well w where w.plate.id in (:ids) order by w.plate.id, w.id"
)

#: Images of wells, one row per field: (well id, image id, name, owner, group).
WELL_IMAGES = (
    f"select ws.well.id, ws.image.id, ws.image.name, {_OWNED.format(a='ws.image')} "
    "from WellSample ws where ws.well.id in (:ids) order by ws.well.id, ws.id"
)

#: Names for owner and group ids.
PEOPLE = "select e.id, e.omeName from Experimenter e order by e.id"
GROUPS = "select g.id, g.name from ExperimenterGroup g order by g.id"


class GatewayPool(Protocol):
    """The part of :class:`aiomero.pool.AsyncGatewayPool` a crawl uses."""

    def acquire(self, *args: Any, **kwargs: Any) -> Any:
        """An async context manager lending a connected gateway."""


class Fetcher:
    """Runs a crawl's queries through a pool, at most ``concurrency`` at once.

    The limit is kept here rather than left to the pool, so that fanning out
    over thousands of parents never queues more waiters than the pool has
    sessions. ``round_trips`` counts the queries made.
    """

    def __init__(
        self,
        pool: GatewayPool,
        *,
        concurrency: int,
        page_size: int,
        ids_per_query: int,
        timeout: float | None = None,
    ) -> None:
        self._pool = pool
        self._slots = asyncio.Semaphore(concurrency)
        self.page_size = page_size
        self.ids_per_query = ids_per_query
        self._timeout = timeout
        self.round_trips = 0

    async def rows(
        self,
        hql: str,
        *,
        group: int | str,
        ids: Sequence[int] | None = None,
        each_page: PageHandler | None = None,
    ) -> list[list[Any]]:
        """Every row of ``hql``, a page per round trip.

        The first page is asked for alone; after a full one, the next pages
        are asked for together, twice as many each time up to
        ``PAGES_AHEAD``, so that a long listing costs a few round trips in a
        row instead of one per page. Pages past the end come back empty and
        are dropped. With ``each_page``, each page is handed to it in order
        and not kept (the result is empty), so a long listing holds at most
        ``PAGES_AHEAD`` pages at a time. Raises what
        :meth:`AsyncGateway.projection` raises. Cancelling it abandons the
        pages in flight.
        """
        found: list[list[Any]] = []
        offset, ahead = 0, 1
        while True:
            pages = await gather_all(
                [
                    self._page(hql, group, ids, offset + n * self.page_size)
                    for n in range(ahead)
                ]
            )
            for page in pages:
                if each_page is not None:
                    each_page(page)
                else:
                    found += page
                # A short page is the last one; any after it are empty.
                if len(page) < self.page_size:
                    return found
            offset += ahead * self.page_size
            ahead = min(2 * ahead, PAGES_AHEAD)

    async def _page(
        self, hql: str, group: int | str, ids: Sequence[int] | None, offset: int
    ) -> list[list[Any]]:
        from omero.sys import ParametersI

        params = ParametersI()
        if ids is not None:
            params.addIds(list(ids))
        params.page(offset, self.page_size)
        async with self._slots, self._pool.acquire() as gateway:
            self.round_trips += 1
            page: list[list[Any]] = await gateway.projection(
                hql, params, group=group, timeout=self._timeout
            )
        return page

    async def rows_for(
        self,
        hql: str,
        ids: Iterable[int],
        *,
        group: int | str,
        each_page: PageHandler | None = None,
    ) -> list[list[Any]]:
        """Every row of ``hql`` for the parents ``ids``, asked in batches of
        ``ids_per_query`` that run concurrently; rows come batch by batch.
        ``each_page`` works as in :meth:`rows`.

        The first failure cancels the other batches and is raised.
        """
        unique = sorted(set(ids))
        if not unique:
            return []
        step = self.ids_per_query
        batches = [unique[i : i + step] for i in range(0, len(unique), step)]
        pages = await gather_all(
            [
                self.rows(hql, group=group, ids=batch, each_page=each_page)
                for batch in batches
            ]
        )
        return [row for page in pages for row in page]


async def gather_all(awaitables: Sequence[Awaitable[T]]) -> list[T]:
    """Await all of ``awaitables`` concurrently; their results in order.

    Unlike ``asyncio.gather``, the first exception cancels the others (and
    waits for them) before it is raised, so no query outlives its caller.
    """
    if len(awaitables) <= 1:
        return [await a for a in awaitables]
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception():
                raise task.exception()  # type: ignore[misc]
        return [task.result() for task in tasks]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
