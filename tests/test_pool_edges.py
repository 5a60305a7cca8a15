"""AsyncGatewayPool at its edges: failures retrying cannot mend, joined
sessions that expire or close, checks on a session handed to a waiter, and
opening and closing under way."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from aiomero import (
    AsyncGateway,
    AsyncGatewayPool,
    PoolClosedError,
    ServerUnreachableError,
    SessionExpiredError,
)
from aiomero.testing import Emulator
from pool_helpers import pool_for

READ_ONLY_LAB = 4


class TestFailuresThatRetryingCannotMend:
    async def test_a_refused_password_does_not_storm_the_server(
        self, omero_emulator: Emulator
    ) -> None:
        """A pool whose password is refused, opened without waiting, pauses
        longer after each refused login: a handful of attempts in 4 s, not
        one per maintenance tick."""
        pool = AsyncGatewayPool(
            "alice", "wrong", host=omero_emulator.host, port=omero_emulator.port,
            min_size=2,
        )  # fmt: skip
        await pool.open(wait=False)
        await asyncio.sleep(4)
        attempts = omero_emulator.counters.calls["createSession"]
        await pool.close()
        assert 1 <= attempts <= 8
        assert pool.get_stats()["sessions_errors"] == attempts

    async def test_a_configure_hook_that_raises_reaches_the_waiter_at_once(
        self, omero_emulator: Emulator
    ) -> None:
        """The hook's own error, well before the acquire timeout."""

        async def configure(gw: AsyncGateway) -> None:
            raise ValueError("configure broke")

        pool = pool_for(omero_emulator, min_size=0, timeout=20, configure=configure)
        async with pool:
            started = time.monotonic()
            with pytest.raises(ValueError, match="configure broke"):
                async with pool.acquire():
                    pass
            assert time.monotonic() - started < 5
        assert omero_emulator.counters.live_sessions == 0

    async def test_a_configured_group_is_where_each_loan_starts(
        self, omero_emulator: Emulator
    ) -> None:
        """configure may switch the session's group: that is the session's
        starting point, not a borrower's change, so it is reused."""

        async def configure(gw: AsyncGateway) -> None:
            await gw.setGroupForSession(READ_ONLY_LAB)

        async with pool_for(omero_emulator, "alice", configure=configure) as pool:
            for _ in range(5):
                async with pool.acquire() as gw:
                    projects = await gw.listProjects()
                assert {p.group_id for p in projects} == {READ_ONLY_LAB}
            assert pool.get_stats()["sessions_num"] == 1


class TestJoinedSessions:
    async def test_close_ends_the_shared_session_after_a_substituted_user(
        self, omero_emulator: Emulator
    ) -> None:
        """The shared session and the substituted user's both end."""
        pool = pool_for(omero_emulator, join_sessions=True)
        async with pool, pool.acquire(user="bob") as gw:
            assert (await gw.getUser()).omeName == "bob"
        assert omero_emulator.counters.live_sessions == 0

    async def test_the_last_connection_shrunk_away_ends_the_session(
        self, omero_emulator: Emulator
    ) -> None:
        """With min_size=0, the idle connection closed by shrinking was the
        last one: the shared session ends with it."""
        pool = pool_for(omero_emulator, min_size=0, join_sessions=True, max_idle=0.3)
        async with pool:
            async with pool.acquire() as gw:
                await gw.keepAlive()
            await asyncio.sleep(2)
            assert pool.get_stats()["pool_size"] == 0
            assert omero_emulator.counters.live_sessions == 0

    async def test_connections_made_together_share_one_login(
        self, omero_emulator: Emulator
    ) -> None:
        """open(wait=False) makes min_size connections at once: one login,
        the others join it, and close ends that one session."""
        pool = pool_for(omero_emulator, min_size=3, join_sessions=True, secure=True)
        await pool.open(wait=False)
        for _ in range(100):
            if pool.get_stats()["pool_available"] == 3:
                break
            await asyncio.sleep(0.05)
        assert omero_emulator.counters.logins == 1
        assert omero_emulator.counters.live_sessions == 1
        await pool.close()
        assert omero_emulator.counters.live_sessions == 0

    async def test_an_expired_shared_session_is_logged_in_anew(
        self, omero_emulator: Emulator
    ) -> None:
        """Loans on the dead session fail with SessionExpiredError; the
        replacements log in again instead of reporting bad credentials."""
        pool = pool_for(
            omero_emulator, min_size=2, max_size=2, join_sessions=True,
            keepalive_interval=None, check=False,
        )  # fmt: skip
        async with pool:
            [key] = omero_emulator.session_keys("root")
            omero_emulator.faults.expire_session(key)
            errors = []
            for _ in range(4):
                try:
                    async with pool.acquire() as gw:
                        await gw.keepAlive()
                except SessionExpiredError as exc:
                    errors.append(exc)
            async with pool.acquire() as gw:
                assert await gw.keepAlive()
            # The loans that met the dead session saw it: no silent swap.
            assert 1 <= len(errors) <= 2
            assert omero_emulator.counters.logins == 2
        assert omero_emulator.counters.live_sessions == 0


class TestLending:
    async def test_check_pings_a_session_handed_straight_to_a_waiter(
        self, omero_emulator: Emulator
    ) -> None:
        """check=True holds for a session given back to a waiting task: an
        expired one is replaced, not lent."""
        pool = pool_for(
            omero_emulator, "alice", max_size=1, check=True, keepalive_interval=None
        )
        async with pool:

            async def borrower() -> str:
                async with pool.acquire() as gw:
                    return str((await gw.getUser()).omeName)

            async with pool.acquire():
                waiting = asyncio.ensure_future(borrower())
                await asyncio.sleep(0.2)
                [key] = omero_emulator.session_keys("alice")
                omero_emulator.faults.expire_session(key)
            assert await waiting == "alice"
            assert pool.get_stats()["sessions_replaced"] == 1

    async def test_open_never_passes_max_size(self, omero_emulator: Emulator) -> None:
        """Borrowers during a slow open do not push the pool over max_size."""
        omero_emulator.faults.set_latency(0.2, op="createSession")
        pool = pool_for(omero_emulator, "alice", min_size=2, max_size=2)
        opening = asyncio.ensure_future(pool.open())
        await asyncio.sleep(0.05)

        async def borrower() -> None:
            async with pool.acquire() as gw:
                await gw.getUser()
                await asyncio.sleep(0.5)

        await asyncio.gather(opening, borrower(), borrower())
        assert pool.get_stats()["pool_size"] <= 2
        assert omero_emulator.counters.logins <= 2
        await pool.close()

    async def test_concurrent_opens_share_the_outcome(
        self, omero_emulator: Emulator
    ) -> None:
        """A second open waits for the first, and fails when it fails."""
        omero_emulator.faults.refuse_connections()
        pool = pool_for(omero_emulator, "alice")
        outcomes = await asyncio.gather(
            pool.open(), pool.open(), return_exceptions=True
        )
        assert all(isinstance(o, ServerUnreachableError) for o in outcomes), outcomes
        with pytest.raises(PoolClosedError):
            async with pool.acquire():
                pass

    async def test_close_keeps_to_its_timeout_with_borrowers_stalled(
        self, omero_emulator: Emulator
    ) -> None:
        """close(timeout=1) with three borrowers on stalled calls returns in
        about a second, and the borrowers' calls fail."""
        pool = await pool_for(omero_emulator, "alice", min_size=3).__aenter__()
        stall = omero_emulator.faults.stall("findAllByQuery", seconds=30)

        async def borrower() -> Any:
            async with pool.acquire() as gw:
                return await gw.listProjects()

        borrowers = [asyncio.ensure_future(borrower()) for _ in range(3)]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        with pytest.warns(ResourceWarning):
            await pool.close(timeout=1)
        took = time.monotonic() - started
        results = await asyncio.gather(*borrowers, return_exceptions=True)
        stall.release()
        assert took < 3.0, took
        assert all(isinstance(r, Exception) for r in results)


class TestGatewayConnect:
    async def test_concurrent_connects_make_one_session(
        self, omero_emulator: Emulator
    ) -> None:
        """Three connects at once: one login, nothing left after close."""
        gw = AsyncGateway(
            "alice", "alice-pw", host=omero_emulator.host, port=omero_emulator.port
        )
        await asyncio.gather(gw.connect(), gw.connect(), gw.connect())
        await gw.close()
        assert omero_emulator.counters.logins == 1
        assert omero_emulator.counters.live_sessions == 0

    async def test_close_during_connect_closes_what_it_made(
        self, omero_emulator: Emulator
    ) -> None:
        """close() waits for the connect under way, then closes it."""
        omero_emulator.faults.set_latency(0.2, op="createSession")
        gw = AsyncGateway(
            "alice", "alice-pw", host=omero_emulator.host, port=omero_emulator.port
        )
        connecting = asyncio.ensure_future(gw.connect())
        await asyncio.sleep(0.05)
        await gw.close()
        await connecting
        assert not gw.isConnected()
        assert omero_emulator.counters.live_sessions == 0
