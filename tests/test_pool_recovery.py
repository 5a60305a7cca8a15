"""AsyncGatewayPool when sessions idle out, the server restarts, calls are
abandoned, and many tasks of different groups share it."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest

from aiomero import (
    AsyncGatewayPool,
    CallTimeoutError,
    ConnectionLostError,
    SessionExpiredError,
)
from aiomero.testing import Emulator
from pool_helpers import events, pool_for

PRIVATE_LAB, READ_ONLY_LAB, ANNOTATE_LAB = 3, 4, 5


async def _wait_until(predicate: Any, within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not predicate():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


class TestIdleSessions:
    @pytest.mark.slow
    async def test_keepalive_keeps_an_idle_session_past_the_server_timeout(
        self, omero_emulator_factory: Any
    ) -> None:
        """With a 2 s server idle timeout, a session left idle for 30 s is
        still the same, working session."""
        emulator = omero_emulator_factory(idle_timeout=2.0)
        async with pool_for(emulator, check=False) as pool:
            assert pool.keepalive_interval is not None
            assert pool.keepalive_interval < 1.0
            async with pool.acquire() as gw:
                first = gw.session_fingerprint
            await asyncio.sleep(30)
            async with pool.acquire() as gw:
                assert gw.session_fingerprint == first
                assert await gw.keepAlive()
            assert pool.get_stats()["keepalives_num"] >= 20
            assert pool.get_stats()["sessions_num"] == 1

    async def test_without_keepalive_or_check_the_expiry_reaches_the_caller(
        self, omero_emulator_factory: Any
    ) -> None:
        """No keep-alive and no check: the next call raises
        SessionExpiredError; the pool does not hide it."""
        emulator = omero_emulator_factory(idle_timeout=2.0)
        pool = pool_for(emulator, check=False, keepalive_interval=None)
        async with pool:
            await asyncio.sleep(3)
            with pytest.raises(SessionExpiredError):
                async with pool.acquire() as gw:
                    await gw.listProjects()

    async def test_the_acquire_check_replaces_an_expired_session(
        self, omero_emulator_factory: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """No keep-alive but the check on: the pool lends a new session and
        logs session_replaced with the old and new fingerprints."""
        caplog.set_level(logging.INFO, logger="aiomero")
        emulator = omero_emulator_factory(idle_timeout=2.0)
        pool = pool_for(emulator, check=True, keepalive_interval=None)
        async with pool:
            async with pool.acquire() as gw:
                old = gw.session_fingerprint
            await asyncio.sleep(3)
            async with pool.acquire() as gw:
                assert gw.session_fingerprint != old
                assert await gw.keepAlive()
                new = gw.session_fingerprint
        replaced = [e for e in events(caplog) if e.startswith("session_replaced")]
        assert len(replaced) == 1
        assert f"old={old!r}" in replaced[0] and f"new={new!r}" in replaced[0]


class TestServerRestart:
    async def test_the_pool_refills_after_a_restart_that_lost_every_session(
        self, omero_emulator_factory: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Keep-alives find the sessions dead; each is replaced, the pool is
        back to min size, and new acquires work."""
        caplog.set_level(logging.INFO, logger="aiomero")
        emulator = omero_emulator_factory()
        async with pool_for(emulator, min_size=3, keepalive_interval=0.3) as pool:
            before = {m.fingerprint for m in pool._own.idle}
            emulator.restart(keep_sessions=False)
            assert await _wait_until(
                lambda: pool.get_stats()["sessions_replaced"] >= 3, within=15
            )
            assert pool.get_stats()["pool_size"] == 3
            async with pool.acquire() as gw:
                assert await gw.keepAlive()
                assert gw.session_fingerprint not in before
            assert emulator.counters.live_sessions == 3
        replaced = [e for e in events(caplog) if e.startswith("session_replaced")]
        assert len(replaced) == 3

    async def test_a_call_in_flight_when_the_server_dies_fails_typed(
        self, omero_emulator_factory: Any
    ) -> None:
        """A borrower's call on a lost session raises ConnectionLostError or
        SessionExpiredError; the pool never retries it on another session."""
        emulator = omero_emulator_factory()
        async with pool_for(emulator, user="alice") as pool:
            with pytest.raises((ConnectionLostError, SessionExpiredError)):
                async with pool.acquire() as gw:
                    emulator.restart(keep_sessions=False)
                    await gw.listProjects()
            async with pool.acquire() as gw:
                assert [p.name for p in await gw.listProjects()]

    async def test_reconnect_failed_is_called_when_the_server_stays_away(
        self, omero_emulator_factory: Any, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With the server gone past reconnect_timeout, the hook runs and
        reconnect_failed is logged; waiters got PoolTimeout meanwhile."""
        caplog.set_level(logging.INFO, logger="aiomero")
        emulator = omero_emulator_factory()
        failed: list[AsyncGatewayPool] = []
        pool = pool_for(
            emulator,
            keepalive_interval=0.2,
            reconnect_timeout=1.5,
            reconnect_failed=failed.append,
        )
        async with pool:
            emulator.stop()
            assert await _wait_until(lambda: bool(failed), within=20)
            assert failed == [pool]
            emulator.start()
            assert await _wait_until(
                lambda: pool.get_stats()["pool_available"] == 1, within=20
            )
        assert any(e.startswith("reconnect_failed") for e in events(caplog))


class TestAbandonedCalls:
    async def test_a_session_whose_call_timed_out_is_checked_before_reuse(
        self, omero_emulator: Emulator
    ) -> None:
        """After a timed-out call the session is pinged once its thread is
        free, then lent again."""
        async with pool_for(omero_emulator, user="alice") as pool:
            with omero_emulator.faults.stall("findAllByQuery", seconds=1.0):
                with pytest.raises(CallTimeoutError):
                    async with pool.acquire() as gw:
                        first = gw.session_fingerprint
                        await gw.listProjects(timeout=0.3)
                async with pool.acquire(timeout=10) as gw:
                    projects = await gw.listProjects()
            assert projects
            assert omero_emulator.counters.calls["keepAlive"] >= 1, (
                omero_emulator.counters.calls,
                pool.get_stats(),
            )
            assert pool.get_stats()["pool_size"] == 1
            assert gw.session_fingerprint == first

    async def test_a_session_whose_group_was_switched_is_not_lent_again(
        self, omero_emulator: Emulator
    ) -> None:
        """setGroupForSession by a borrower retires that session."""
        async with pool_for(omero_emulator, user="bob") as pool:
            async with pool.acquire() as gw:
                switched = gw.session_fingerprint
                await gw.setGroupForSession(PRIVATE_LAB)
            async with pool.acquire() as gw:
                assert gw.session_fingerprint != switched
                projects = await gw.listProjects()
        assert {p.group_id for p in projects} == {READ_ONLY_LAB}


class TestIsolation:
    async def test_interleaved_calls_in_different_groups_never_mix_rows(
        self, omero_emulator: Emulator
    ) -> None:
        """1,000 calls from tasks of three groups, on four shared sessions,
        each see rows of their own group only."""
        async with pool_for(omero_emulator, user="bob", min_size=4, max_size=4) as pool:
            wrong: list[tuple[int, set[int | None]]] = []
            seen: dict[int, int] = {}

            async def worker(group: int, calls: int) -> None:
                for _ in range(calls):
                    async with pool.acquire(group=group) as gw:
                        rows = await gw.listProjects()
                        # A yield with the session held lets others interleave.
                        await asyncio.sleep(0)
                    groups = {p.group_id for p in rows}
                    seen[group] = seen.get(group, 0) + len(rows)
                    if groups != {group}:
                        wrong.append((group, groups))

            groups = [PRIVATE_LAB, READ_ONLY_LAB, ANNOTATE_LAB] * 8
            await asyncio.gather(*(worker(g, 42) for g in groups[:24]))
        assert omero_emulator.counters.calls["findAllByQuery"] >= 1000
        assert wrong == []
        assert all(seen[g] for g in (PRIVATE_LAB, READ_ONLY_LAB, ANNOTATE_LAB))

    async def test_use_group_inside_a_loan_stays_in_its_task(
        self, omero_emulator: Emulator
    ) -> None:
        """A task's use_group on a lent gateway does not leak into the next
        borrower."""
        async with pool_for(omero_emulator, user="bob", max_size=1) as pool:

            async def in_private() -> set[int | None]:
                async with pool.acquire() as gw, gw.use_group(PRIVATE_LAB):
                    return {p.group_id for p in await gw.listProjects()}

            async def plain() -> set[int | None]:
                async with pool.acquire() as gw:
                    return {p.group_id for p in await gw.listProjects()}

            first, second = await asyncio.gather(in_private(), plain())
        assert first == {PRIVATE_LAB}
        assert second == {READ_ONLY_LAB}


class TestCancellation:
    async def test_random_cancellations_lose_no_session(
        self, omero_emulator: Emulator
    ) -> None:
        """100 tasks cancelled at random while waiting for, holding or
        returning sessions leave every session idle and none extra on the
        server."""
        omero_emulator.faults.set_latency((0.0, 0.02))
        rng = random.Random(7)
        async with pool_for(omero_emulator, min_size=2, max_size=4) as pool:

            async def borrower() -> None:
                async with pool.acquire(timeout=30) as gw:
                    await gw.keepAlive()
                    await asyncio.sleep(rng.uniform(0, 0.02))

            tasks = [asyncio.ensure_future(borrower()) for _ in range(100)]
            for task in tasks:
                await asyncio.sleep(rng.uniform(0, 0.004))
                if rng.random() < 0.6:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            omero_emulator.faults.clear_latency()
            # Cancellations did land, and some borrowers finished: both paths ran.
            cancelled = sum(task.cancelled() for task in tasks)
            assert 20 <= cancelled < 100

            def settled() -> bool:
                stats = pool.get_stats()
                return stats["pool_available"] == stats["pool_size"]

            assert await _wait_until(settled, within=15)
            stats = pool.get_stats()
            assert 2 <= stats["pool_size"] <= 4
            assert stats["requests_waiting"] == 0
            assert omero_emulator.counters.live_sessions == stats["pool_size"]
            async with pool.acquire() as gw:
                assert await gw.keepAlive()
        assert omero_emulator.counters.live_sessions == 0
