"""The crawl's query runner: paging a listing, with pages read ahead."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aiomero.crawl.queries import PEOPLE, Fetcher
from aiomero.pool import AsyncGatewayPool
from aiomero.testing import Emulator


def root_pool(emulator: Emulator, size: int = 4) -> AsyncGatewayPool:
    return AsyncGatewayPool(
        "root",
        "omero",
        host=emulator.host,
        port=emulator.port,
        min_size=size,
        max_size=size,
    )


async def every_person(pool: AsyncGatewayPool) -> list[list[Any]]:
    async with pool.acquire() as gw:
        return await gw.projection(PEOPLE, group=-1)


class TestFetcherRows:
    @pytest.mark.parametrize("page_size", [1, 2, 3, 8, 1000])
    async def test_pages_give_every_row_once_in_order(
        self, omero_emulator: Emulator, page_size: int
    ) -> None:
        """Whatever the page size, a listing comes back whole, in order."""
        async with root_pool(omero_emulator) as pool:
            whole = await every_person(pool)
            fetcher = Fetcher(pool, concurrency=4, page_size=page_size, ids_per_query=5)
            pages: list[list[list[Any]]] = []
            kept = await fetcher.rows(PEOPLE, group=-1)
            handed = await fetcher.rows(PEOPLE, group=-1, each_page=pages.append)
        assert len(whole) > 3
        assert kept == whole
        assert handed == []
        assert [row for page in pages for row in page] == whole
        assert all(len(page) == page_size for page in pages[:-1])

    async def test_after_a_full_page_the_next_pages_are_asked_for_together(
        self, omero_emulator: Emulator
    ) -> None:
        """A full first page is followed by two pages in flight at once."""
        async with root_pool(omero_emulator) as pool:
            whole = await every_person(pool)
            fetcher = Fetcher(pool, concurrency=4, page_size=1, ids_per_query=5)
            first = omero_emulator.faults.stall("projection")
            listing = asyncio.create_task(fetcher.rows(PEOPLE, group=-1))
            try:
                assert await asyncio.to_thread(first.wait_held, 1, 10.0)
                second = omero_emulator.faults.stall("projection")
                first.release()
                assert await asyncio.to_thread(second.wait_held, 2, 10.0)
                second.release()
                rows = await asyncio.wait_for(listing, 30)
            finally:
                omero_emulator.faults.reset()
                listing.cancel()
        assert rows == whole
        assert fetcher.round_trips < 2 * len(whole)
