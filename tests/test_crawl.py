"""The crawl engine against the emulator, through the pool and the real
BlitzGateway: what it finds, for whom, in shares, and after failures."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from aiomero.crawl import (
    CheckpointedOutput,
    Crawler,
    CrawlOptions,
    CrawlSummary,
    StreamOutput,
    UnknownGroupError,
)
from aiomero.errors import (
    ConnectionLostError,
    PermissionDeniedError,
    SessionExpiredError,
)
from aiomero.pool import AsyncGatewayPool
from aiomero.testing import Catalog, Emulator
from aiomero.testing.catalog import READ_ONLY
from crawl_expect import Record, expected, parse

PASSWORDS = {"root": "omero", "alice": "alice-pw", "bob": "bob-pw"}
PASSWORDS.update({name: f"{name}-pw" for name in ("carol", "dave", "ann")})


async def crawl(
    emulator: Emulator,
    user: str = "root",
    output: Any = None,
    **options: Any,
) -> tuple[collections.Counter[Record], CrawlSummary]:
    """Crawl ``emulator`` as ``user``; the records written and the summary."""
    chosen = CrawlOptions(**options)
    stream = io.BytesIO()
    sink = output if output is not None else StreamOutput(stream)
    async with AsyncGatewayPool(
        user,
        PASSWORDS[user],
        host=emulator.host,
        port=emulator.port,
        min_size=1,
        max_size=chosen.concurrency,
    ) as pool:
        summary = await Crawler(pool, sink, chosen).run()
    return parse(stream.getvalue().splitlines()), summary


@contextlib.asynccontextmanager
async def crawling(
    emulator: Emulator, output: Any, **options: Any
) -> AsyncIterator[tuple[AsyncGatewayPool, Crawler, asyncio.Future[CrawlSummary]]]:
    """A crawl as root started in the background, with its pool open for
    the block, so that a test can strike while it runs."""
    chosen = CrawlOptions(**options)
    pool = AsyncGatewayPool(
        "root",
        "omero",
        host=emulator.host,
        port=emulator.port,
        max_size=chosen.concurrency,
    )
    async with pool:
        crawler = Crawler(pool, output, chosen)
        yield pool, crawler, asyncio.ensure_future(crawler.run())


async def rerun_completes(
    emulator: Emulator, path: Path, **options: Any
) -> CrawlSummary:
    """Check that the crawl written to ``path`` stopped short, run it again
    as root, and check that the output is now the whole catalog, once."""
    want = expected(emulator.catalog, "root")
    assert written(path) < want
    output = CheckpointedOutput(path, identity={"test": 1})
    _, again = await crawl(emulator, output=output, **options)
    output.close()
    assert again.complete and again.errors == 0
    assert written(path) == want
    return again


def written(path: Path) -> collections.Counter[Record]:
    """The records a crawl wrote to ``path``."""
    return parse(path.read_bytes().splitlines())


def two_parent_catalog() -> Catalog:
    """A dataset in two projects and a plate in two screens."""
    catalog = Catalog()
    lab = catalog.add_group("lab", READ_ONLY)
    catalog.add_user("ann", "ann-pw", groups=[lab])
    kw: dict[str, Any] = {"owner": "ann", "group": lab}
    p1 = catalog.add_project("p1", **kw)
    p2 = catalog.add_project("p2", **kw)
    shared = catalog.add_dataset("shared", project=[p1, p2], **kw)
    catalog.add_dataset("only-p2", project=p2, **kw)
    for name in ("i1.tif", "i2.tif"):
        catalog.add_image(name, dataset=shared, **kw)
    s1 = catalog.add_screen("s1", **kw)
    s2 = catalog.add_screen("s2", **kw)
    plate = catalog.add_plate("plate", screen=[s2, s1], **kw)
    for column in range(3):
        well = catalog.add_well(plate=plate, row=1, column=column)
        catalog.add_image(f"w{column}.tif", well=well, **kw)
    return catalog


class TestWhatACrawlFinds:
    async def test_crawl_of_the_default_catalog_matches_it_exactly(
        self, omero_emulator: Emulator
    ) -> None:
        """As root, every object and parent link once, names resolved."""
        found, summary = await crawl(omero_emulator, batch_size=2, page_size=3)

        want = expected(omero_emulator.catalog, "root")
        assert found == want
        assert summary.complete and summary.errors == 0
        assert summary.total == sum(want.values())
        # The image in two datasets is there once per dataset.
        both = [r for r in found if r[0] == "Image" and r[2] == "ro-both.tif"]
        assert sorted(r[4] for r in both) == [3, 4]

    @pytest.mark.parametrize("user", ["alice", "bob", "carol", "dave"])
    async def test_an_ordinary_user_finds_what_the_user_may_see_and_nothing_else(
        self, omero_emulator: Emulator, user: str
    ) -> None:
        """Across all the user's groups, private groups show only the user's
        own data (or all of it to their leader)."""
        found, _ = await crawl(omero_emulator, user)

        assert found == expected(omero_emulator.catalog, user)

    async def test_named_groups_limit_the_crawl_to_them(
        self, omero_emulator: Emulator
    ) -> None:
        """--group by name crawls that group only, and every object in it."""
        catalog = omero_emulator.catalog
        group = catalog.group_by_name("read-only-lab")
        assert group is not None

        found, _ = await crawl(omero_emulator, "bob", groups=("read-only-lab",))

        assert found == expected(catalog, "bob", group=group.id)
        assert {r[7] for r in found} == {group.id}

    async def test_an_unknown_group_name_is_an_error(
        self, omero_emulator: Emulator
    ) -> None:
        """A group name the server does not know raises UnknownGroupError."""
        with pytest.raises(UnknownGroupError, match="no-such-lab"):
            await crawl(omero_emulator, groups=("no-such-lab",))

    async def test_without_orphans_only_contained_objects_are_found(
        self, omero_emulator: Emulator
    ) -> None:
        """orphans=False: only projects and screens lack a parent."""
        found, _ = await crawl(omero_emulator, orphans=False)

        want = expected(omero_emulator.catalog, "root", orphans=False)
        assert found == want
        assert not [
            r for r in found if r[0] != "Project" and r[0] != "Screen" and r[3] is None
        ]


class TestSharing:
    async def test_two_shards_make_the_whole_and_split_the_top_level(
        self, omero_emulator: Emulator
    ) -> None:
        """Shards 1/2 and 2/2 together write the whole crawl, once."""
        first, _ = await crawl(omero_emulator, shard=(1, 2), batch_size=1)
        second, _ = await crawl(omero_emulator, shard=(2, 2), batch_size=1)

        assert first + second == expected(omero_emulator.catalog, "root")
        tops = [{(r[0], r[1]) for r in s if r[3] is None} for s in (first, second)]
        assert tops[0] and tops[1]
        assert not tops[0] & tops[1]

    @pytest.mark.parametrize("shards", [1, 2])
    async def test_children_of_a_container_with_two_parents_are_written_once(
        self, omero_emulator_factory: Any, shards: int
    ) -> None:
        """A dataset in two projects is listed under both, its images once,
        whether the projects are crawled in one shard or two."""
        emulator = omero_emulator_factory(catalog=two_parent_catalog())
        found: collections.Counter[Record] = collections.Counter()
        for k in range(1, shards + 1):
            part, _ = await crawl(emulator, "ann", shard=(k, shards), batch_size=1)
            found += part

        assert found == expected(emulator.catalog, "ann")
        shared = [r for r in found if r[0] == "Dataset" and r[2] == "shared"]
        assert len(shared) == 2


class TestFailures:
    async def test_a_failing_unit_is_counted_and_retried_by_the_next_run(
        self, omero_emulator_factory: Any, tmp_path: Path
    ) -> None:
        """One query failing costs its unit only; the crawl goes on, is not
        complete, and running it again completes it without duplicates."""
        emulator = omero_emulator_factory(latency=0.01)
        path = tmp_path / "crawl.jsonl"
        options = {"concurrency": 1, "batch_size": 1, "retries": 0}

        output = CheckpointedOutput(path, identity={"test": 1})
        async with crawling(emulator, output, **options) as (_, crawler, running):
            # Fail a query once the listings are done: one inside a unit.
            while not crawler.stats.units_total:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            emulator.faults.fail_next("projection")
            summary = await running
        output.close()

        assert summary.errors == 1
        assert not summary.complete
        again = await rerun_completes(emulator, path, **options)
        assert again.previous == summary.counts

    async def test_a_server_restart_midway_is_retried_and_loses_nothing(
        self,
        omero_emulator_factory: Any,
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """The server restarts, losing every session, while units are in
        flight: their calls fail as lost, the pool makes new sessions, the
        units are retried, and the crawl completes with every record once."""
        caplog.set_level(logging.INFO)
        emulator = omero_emulator_factory(latency=0.02)
        path = tmp_path / "crawl.jsonl"
        output = CheckpointedOutput(path, identity={"test": 1})
        options = {"concurrency": 2, "batch_size": 1}
        async with crawling(emulator, output, **options) as (pool, crawler, running):
            while crawler.stats.units_done < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            emulator.restart(keep_sessions=False)
            summary = await running
            stats = pool.get_stats()
        output.close()

        retried = [
            r.getMessage()
            for r in caplog.records
            if "crawl_unit_retry" in r.getMessage()
        ]
        assert any(
            "ConnectionLostError" in m or "SessionExpiredError" in m for m in retried
        )
        assert stats["sessions_lost"] >= 1
        assert summary.complete and summary.errors == 0
        assert parse(path.read_bytes().splitlines()) == expected(
            emulator.catalog, "root"
        )

    async def test_a_restart_beyond_the_retries_stops_and_a_rerun_completes(
        self, omero_emulator_factory: Any, tmp_path: Path
    ) -> None:
        """Without retries, a unit whose connection is lost stops the crawl
        with ConnectionLostError; run again, the crawl completes what was
        left, with nothing lost or repeated."""
        emulator = omero_emulator_factory(latency=0.02)
        path = tmp_path / "crawl.jsonl"
        options = {"concurrency": 2, "batch_size": 1, "retries": 0}
        output = CheckpointedOutput(path, identity={"test": 1})
        async with crawling(emulator, output, **options) as (_, crawler, running):
            while crawler.stats.units_done < 1:  # noqa: ASYNC110
                await asyncio.sleep(0.005)
            emulator.restart(keep_sessions=False)
            with pytest.raises((ConnectionLostError, SessionExpiredError)):
                await running
        output.close()
        await rerun_completes(emulator, path, **options)


class TestEdges:
    async def test_a_user_who_sees_nothing_gets_an_empty_complete_crawl(
        self, omero_emulator_factory: Any
    ) -> None:
        """A user with nothing to see gets no records and a complete crawl."""
        catalog = Catalog()
        catalog.add_user("ann", "ann-pw", groups=[catalog.add_group("lab")])
        emulator = omero_emulator_factory(catalog=catalog)

        found, summary = await crawl(emulator, "ann")

        assert not found
        assert summary.complete and summary.total == 0

    async def test_a_group_the_user_is_not_in_is_refused(
        self, omero_emulator: Emulator
    ) -> None:
        """A group the user is not a member of raises PermissionDeniedError."""
        with pytest.raises(PermissionDeniedError):
            await crawl(omero_emulator, "alice", groups=("read-write-lab",))
