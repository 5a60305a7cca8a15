"""AsyncGatewayPool against the emulator: lending, waiting, options, statistics,
closing, joined sessions and substituted users."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from aiomero import (
    AsyncGateway,
    AsyncGatewayPool,
    AuthenticationError,
    PoolBusyError,
    PoolClosedError,
    PoolTimeout,
)
from aiomero.testing import Emulator
from doc_examples import DOCS, examples, run_example
from pool_helpers import events, pool_for

PRIVATE_LAB, READ_ONLY_LAB = 3, 4


class TestOptions:
    @pytest.mark.parametrize(
        ("options", "error", "field"),
        [
            ({"min_size": "2"}, TypeError, "min_size"),
            ({"min_size": -1}, ValueError, "min_size"),
            ({"min_size": 3, "max_size": 2}, ValueError, "max_size"),
            ({"timeout": 0}, ValueError, "timeout"),
            ({"max_waiting": 1.5}, TypeError, "max_waiting"),
            ({"max_idle": -1}, ValueError, "max_idle"),
            ({"keepalive_interval": "often"}, TypeError, "keepalive_interval"),
            ({"check": "yes"}, TypeError, "check"),
            ({"configure": 3}, TypeError, "configure"),
            ({"port": "4064"}, TypeError, "port"),
        ],
    )
    def test_bad_options_are_refused_before_any_call(
        self, omero_emulator: Emulator, options: dict[str, Any], error: type, field: str
    ) -> None:
        """Each bad option raises the error that names it, with no login made."""
        kwargs: dict[str, Any] = {"host": omero_emulator.host, "port": 4064}
        kwargs.update(options)
        with pytest.raises(error, match=field):
            AsyncGatewayPool("root", "omero", **kwargs)
        assert omero_emulator.counters.logins == 0

    def test_a_factory_excludes_connection_arguments(self) -> None:
        """Giving both a factory and a password is a TypeError."""
        with pytest.raises(TypeError, match="factory"):
            AsyncGatewayPool("root", "omero", factory=lambda: AsyncGateway("a", "b"))


class TestLending:
    async def test_open_logs_in_min_size_sessions(
        self, omero_emulator: Emulator
    ) -> None:
        """Opening makes min_size sessions, one login each, all idle."""
        async with pool_for(omero_emulator, min_size=3, max_size=5) as pool:
            stats = pool.get_stats()
            assert stats["pool_size"] == 3
            assert stats["pool_available"] == 3
            assert omero_emulator.counters.logins == 3
            assert omero_emulator.counters.live_sessions == 3
        assert omero_emulator.counters.live_sessions == 0

    async def test_a_returned_session_is_lent_again(
        self, omero_emulator: Emulator
    ) -> None:
        """Two acquires in a row get the same session and make no new login."""
        async with pool_for(omero_emulator, user="alice") as pool:
            async with pool.acquire() as gw:
                first = gw.session_fingerprint
                assert [p.name for p in await gw.listProjects()]
            async with pool.acquire() as gw:
                assert gw.session_fingerprint == first
        assert omero_emulator.counters.logins == 1

    async def test_the_pool_grows_to_max_size_and_no_further(
        self, omero_emulator: Emulator
    ) -> None:
        """Concurrent borrowers make the pool grow up to max_size only."""
        omero_emulator.faults.set_latency(0.05)
        async with pool_for(omero_emulator, min_size=1, max_size=3) as pool:

            async def use() -> None:
                async with pool.acquire() as gw:
                    await gw.keepAlive()

            await asyncio.gather(*(use() for _ in range(12)))
            assert pool.get_stats()["pool_size"] == 3
        assert omero_emulator.counters.logins == 3

    async def test_waiting_tasks_are_served_first_come_first_served(
        self, omero_emulator: Emulator
    ) -> None:
        """With one session, waiters get it in the order they asked."""
        async with pool_for(omero_emulator, max_size=1) as pool:
            order: list[int] = []

            async def use(n: int) -> None:
                async with pool.acquire():
                    order.append(n)
                    await asyncio.sleep(0.01)

            async with pool.acquire():
                tasks = []
                for n in range(6):
                    tasks.append(asyncio.ensure_future(use(n)))
                    await asyncio.sleep(0.005)
            await asyncio.gather(*tasks)
            assert order == list(range(6))

    async def test_an_exhausted_pool_times_out_with_pool_timeout(
        self, omero_emulator: Emulator
    ) -> None:
        """PoolTimeout, a TimeoutError, after the acquire timeout."""
        async with pool_for(omero_emulator, max_size=1) as pool:
            async with pool.acquire():
                loop = asyncio.get_running_loop()
                started = loop.time()
                with pytest.raises(PoolTimeout) as caught:
                    async with pool.acquire(timeout=0.3):
                        pass
                assert 0.25 < loop.time() - started < 2.0
                assert isinstance(caught.value, TimeoutError)
            assert pool.get_stats()["requests_errors"] == 1

    async def test_too_many_waiters_are_refused_at_once(
        self, omero_emulator: Emulator
    ) -> None:
        """Beyond max_waiting, acquire raises PoolBusyError without waiting."""
        async with pool_for(omero_emulator, max_size=1, max_waiting=2) as pool:
            async with pool.acquire():
                waiters = [asyncio.ensure_future(_hold(pool, 0)) for _ in range(2)]
                await asyncio.sleep(0.05)
                with pytest.raises(PoolBusyError, match="2 tasks"):
                    async with pool.acquire(timeout=5):
                        pass
            await asyncio.gather(*waiters)

    async def test_acquire_group_is_the_default_of_the_block_only(
        self, omero_emulator: Emulator
    ) -> None:
        """Calls in an acquire(group=...) block see that group; the next
        borrower of the same session sees the pool's default again."""
        async with pool_for(omero_emulator, user="bob", group=READ_ONLY_LAB) as pool:
            async with pool.acquire(group=PRIVATE_LAB) as gw:
                private = await gw.listProjects()
            async with pool.acquire() as gw:
                default = await gw.listProjects()
        assert {p.group_id for p in private} == {PRIVATE_LAB}
        assert {p.group_id for p in default} == {READ_ONLY_LAB}

    async def test_a_loan_that_ran_code_has_its_services_closed_on_return(
        self, omero_emulator: Emulator
    ) -> None:
        """After a loan that used run(), the pool asks the server for the
        session's stateful services (to close them) before lending it again;
        after a plain loan it does not."""
        async with pool_for(omero_emulator, user="alice", max_size=1) as pool:
            async with pool.acquire() as gw:
                await gw.listProjects()
            async with pool.acquire() as gw:
                assert omero_emulator.counters.calls["activeServices"] == 0
                assert await gw.run(lambda bg: bg.getEventContext().userName)
            async with pool.acquire() as gw:
                assert omero_emulator.counters.calls["activeServices"] == 1
                session = gw.session_fingerprint
            assert pool.get_stats()["sessions_num"] == 1
            assert session is not None

    async def test_statistics_count_requests_and_waits(
        self, omero_emulator: Emulator
    ) -> None:
        """get_stats counts requests and queued waits; pop_stats resets them."""
        async with pool_for(omero_emulator, max_size=1) as pool:
            async with pool.acquire():
                waiter = asyncio.ensure_future(_hold(pool, 0))
                await asyncio.sleep(0.05)
            await waiter
            stats = pool.pop_stats()
            assert stats["requests_num"] == 2
            assert stats["requests_queued"] == 1
            assert stats["requests_wait_ms"] >= 40
            assert stats["sessions_num"] == 1
            assert pool.get_stats()["requests_num"] == 0


class TestOpenAndClose:
    async def test_a_bad_password_fails_open_with_one_login_attempt(
        self, omero_emulator: Emulator
    ) -> None:
        """open() raises AuthenticationError itself, after one attempt."""
        pool = AsyncGatewayPool(
            "alice", "wrong", host=omero_emulator.host, port=omero_emulator.port
        )
        with pytest.raises(AuthenticationError):
            await pool.open()
        assert omero_emulator.counters.calls["createSession"] == 1
        assert omero_emulator.counters.live_sessions == 0
        with pytest.raises(PoolClosedError):
            async with pool.acquire():
                pass

    async def test_close_waits_for_lent_sessions(
        self, omero_emulator: Emulator
    ) -> None:
        """close() lets a borrower finish within its timeout, then ends every
        session."""
        pool = await pool_for(omero_emulator).__aenter__()
        done = asyncio.Event()

        async def borrower() -> None:
            async with pool.acquire() as gw:
                await asyncio.sleep(0.2)
                await gw.keepAlive()
            done.set()

        task = asyncio.ensure_future(borrower())
        await asyncio.sleep(0.05)
        await pool.close(timeout=5)
        await task
        assert done.is_set()
        assert omero_emulator.counters.live_sessions == 0

    async def test_close_past_its_timeout_warns_of_lent_sessions(
        self, omero_emulator: Emulator
    ) -> None:
        """A session kept past the close timeout gives a ResourceWarning and
        is closed anyway."""
        pool = await pool_for(omero_emulator).__aenter__()
        release = asyncio.Event()
        task = asyncio.ensure_future(_hold_until(pool, release))
        await asyncio.sleep(0.05)
        with pytest.warns(ResourceWarning, match="still lent"):
            await pool.close(timeout=0.2)
        release.set()
        await task
        assert omero_emulator.counters.live_sessions == 0

    async def test_waiters_are_told_when_the_pool_closes(
        self, omero_emulator: Emulator
    ) -> None:
        """A task waiting for a session gets PoolClosedError on close."""
        pool = await pool_for(omero_emulator, max_size=1).__aenter__()
        release = asyncio.Event()
        holder = asyncio.ensure_future(_hold_until(pool, release))
        await asyncio.sleep(0.05)
        waiter = asyncio.ensure_future(_hold(pool, 0))
        await asyncio.sleep(0.05)
        closing = asyncio.ensure_future(pool.close(timeout=5))
        with pytest.raises(PoolClosedError):
            await waiter
        release.set()
        await asyncio.gather(holder, closing)

    async def test_a_pool_collected_open_warns(self, omero_emulator: Emulator) -> None:
        """Dropping an open pool without closing it gives a ResourceWarning."""
        pool = await pool_for(omero_emulator, min_size=0).__aenter__()
        with pytest.warns(ResourceWarning, match="not closed"):
            del pool
            gc.collect()

    async def test_open_cannot_reopen_a_closed_pool(
        self, omero_emulator: Emulator
    ) -> None:
        """A closed pool stays closed."""
        pool = pool_for(omero_emulator)
        async with pool:
            pass
        with pytest.raises(PoolClosedError):
            await pool.open()

    async def test_a_pool_used_from_another_loop_says_so(
        self, omero_emulator: Emulator
    ) -> None:
        """acquire() from a second event loop raises RuntimeError."""
        async with pool_for(omero_emulator) as pool:

            def elsewhere() -> None:
                async def use() -> None:
                    async with pool.acquire():
                        pass

                asyncio.run(use())

            with pytest.raises(RuntimeError, match="event loop"):
                await asyncio.get_running_loop().run_in_executor(None, elsewhere)


class TestHooks:
    async def test_configure_runs_on_each_new_session(
        self, omero_emulator: Emulator
    ) -> None:
        """configure(gw) sees every session once, before its first loan."""
        seen: list[str | None] = []

        async def configure(gw: AsyncGateway) -> None:
            assert gw.isConnected()
            seen.append(gw.session_fingerprint)

        pool = pool_for(omero_emulator, min_size=2, configure=configure)
        async with pool, pool.acquire() as gw:
            assert gw.session_fingerprint in seen
        assert len(seen) == 2 and len(set(seen)) == 2

    async def test_a_configure_that_is_not_async_is_named_at_open(
        self, omero_emulator: Emulator
    ) -> None:
        """A plain function as configure fails open with a TypeError that
        says what configure must be, and leaves no session behind."""
        pool = pool_for(omero_emulator, configure=lambda gw: None)
        with pytest.raises(TypeError, match="configure must return an awaitable"):
            await pool.open()
        assert omero_emulator.counters.live_sessions == 0

    async def test_sessions_past_their_lifetime_are_renewed(
        self, omero_emulator: Emulator
    ) -> None:
        """After max_lifetime, the pool lends a new session."""
        async with pool_for(omero_emulator, max_lifetime=0.5) as pool:
            async with pool.acquire() as gw:
                first = gw.session_fingerprint
            await asyncio.sleep(1.5)
            async with pool.acquire() as gw:
                assert gw.session_fingerprint != first
        assert omero_emulator.counters.live_sessions == 0

    async def test_idle_sessions_above_the_minimum_are_closed(
        self, omero_emulator: Emulator
    ) -> None:
        """After max_idle, the pool shrinks back to min_size."""
        omero_emulator.faults.set_latency(0.05)
        async with pool_for(omero_emulator, min_size=1, max_idle=0.5) as pool:
            await asyncio.gather(*(_hold(pool, 0.1) for _ in range(4)))
            assert pool.get_stats()["pool_size"] == 4
            omero_emulator.faults.clear_latency()
            await asyncio.sleep(2.0)
            assert pool.get_stats()["pool_size"] == 1
            assert omero_emulator.counters.live_sessions == 1


class TestJoinedSessions:
    async def test_one_login_and_joins_for_the_rest(
        self, omero_emulator: Emulator
    ) -> None:
        """join_sessions logs in once and joins that session for the others;
        closing the pool ends the one session."""
        pool = pool_for(omero_emulator, min_size=4, join_sessions=True, secure=True)
        async with pool:
            assert omero_emulator.counters.logins == 1
            assert omero_emulator.counters.joins == 3
            assert omero_emulator.counters.live_sessions == 1
            fingerprints = set()
            for _ in range(2):
                async with pool.acquire() as gw:
                    fingerprints.add(gw.session_fingerprint)
            assert len(fingerprints) == 1
        assert omero_emulator.counters.live_sessions == 0

    async def test_joins_of_a_plain_tcp_session_go_straight_to_tcp(
        self, omero_emulator: Emulator
    ) -> None:
        """With secure=False only the first login uses SSL (and its own move
        to TCP); the other connections join on the plain endpoint at once."""
        pool = pool_for(omero_emulator, min_size=4, join_sessions=True)
        async with pool:
            counters = omero_emulator.counters
            assert (counters.logins, counters.joins) == (1, 4)
            assert counters.calls["createSession"] == 5
            assert counters.calls["getConfigValue"] == 1
            assert counters.live_sessions == 1
            async with pool.acquire() as gw:
                assert not (await gw.session_info()).secure
                assert (await gw.getUser()).omeName == "root"
        assert counters.live_sessions == 0

    async def test_a_discarded_joined_connection_leaves_the_session_alive(
        self, omero_emulator: Emulator
    ) -> None:
        """A connection closed by the pool does not kill the shared session."""
        async with pool_for(omero_emulator, min_size=2, join_sessions=True) as pool:
            async with pool.acquire() as gw:
                await gw.close()
            await asyncio.sleep(0.2)
            async with pool.acquire() as a, pool.acquire() as b:
                assert await a.keepAlive() and await b.keepAlive()
            assert omero_emulator.counters.live_sessions == 1

    async def test_joined_connections_refuse_to_switch_the_session_group(
        self, omero_emulator: Emulator
    ) -> None:
        """setGroupForSession would switch every joined connection: refused."""
        pool = pool_for(omero_emulator, join_sessions=True, user="bob")
        async with pool, pool.acquire(group=PRIVATE_LAB) as gw:
            with pytest.raises(RuntimeError, match="share one session"):
                await gw.setGroupForSession(PRIVATE_LAB)
            projects = await gw.listProjects()
        assert {p.group_id for p in projects} == {PRIVATE_LAB}


class TestSubstitutedUsers:
    async def test_an_admin_pool_lends_sessions_of_other_users(
        self, omero_emulator: Emulator
    ) -> None:
        """acquire(user=...) lends that user's session, reused for that user
        only."""
        async with pool_for(omero_emulator) as pool:
            async with pool.acquire(user="alice") as gw:
                assert (await gw.getUser()).omeName == "alice"
                alice_session = gw.session_fingerprint
            async with pool.acquire() as gw:
                assert (await gw.getUser()).omeName == "root"
            async with pool.acquire(user="alice") as gw:
                assert gw.session_fingerprint == alice_session
            async with pool.acquire(user="bob") as gw:
                assert (await gw.getUser()).omeName == "bob"
        assert omero_emulator.counters.live_sessions == 0

    async def test_an_unknown_user_fails_the_acquire(
        self, omero_emulator: Emulator
    ) -> None:
        """A user the server does not know fails with a typed error, not a
        timeout."""
        from aiomero import AiomeroError

        async with pool_for(omero_emulator) as pool:
            with pytest.raises(AiomeroError, match="nobody"):
                async with pool.acquire(user="nobody", timeout=10):
                    pass


async def _hold(pool: AsyncGatewayPool, seconds: float) -> None:
    async with pool.acquire() as gw:
        await asyncio.sleep(seconds)
        await gw.keepAlive()


async def _hold_until(pool: AsyncGatewayPool, release: asyncio.Event) -> None:
    async with pool.acquire():
        await release.wait()


def test_pool_events_are_logged_with_the_pool_name(
    omero_emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    """pool_opened, session_created and pool_closed carry the pool's name."""
    caplog.set_level(logging.INFO, logger="aiomero")

    async def main() -> None:
        async with pool_for(omero_emulator, name="web"):
            pass

    asyncio.run(main())
    found = events(caplog)
    for name in ("pool_opened", "session_created", "pool_closed"):
        assert any(e.startswith(name) and "pool='web'" in e for e in found), name


def test_the_pool_guide_example_runs(
    omero_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/pool.md's example prints each group's projects, then closes."""
    doc = DOCS / "pool.md"
    (code,) = examples(doc)
    run_example(code, doc, HOST=omero_emulator.host, PORT=omero_emulator.port)
    printed = capsys.readouterr().out
    assert "'alice-private'" in printed and "'alice-shared'" in printed
    assert omero_emulator.session_keys("alice") == []
