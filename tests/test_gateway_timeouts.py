"""Deadlines and cancellation: the caller, the worker thread and Ice all let go."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from aiomero import CallTimeoutError
from aiomero.gateway import AsyncGateway
from aiomero.testing import Emulator
from gateway_helpers import (
    LoopLagProbe,
    gateway_for,
    held,
    os_threads,
    settle_threads,
    silent_port,
)

BOB_PROJECTS = {"bob-shared", "alice-shared"}


def nothing_remote(conn: Any) -> str:
    """A call that reaches no server: it runs as soon as the worker is free."""
    return "free"


# Every awaitable of a connected gateway that reaches the server, by name.
REMOTE_CALLS: dict[str, Callable[[AsyncGateway, float], Awaitable[Any]]] = {
    "getUser": lambda gw, t: gw.getUser(timeout=t),
    "isFullAdmin": lambda gw, t: gw.isFullAdmin(timeout=t),
    "getCurrentAdminPrivileges": lambda gw, t: gw.getCurrentAdminPrivileges(timeout=t),
    "getGroupFromContext": lambda gw, t: gw.getGroupFromContext(timeout=t),
    "getGroupsMemberOf": lambda gw, t: gw.getGroupsMemberOf(timeout=t),
    "getAdministrators": lambda gw, t: gw.getAdministrators(timeout=t),
    "getObject": lambda gw, t: gw.getObject("Project", 1, timeout=t),
    "getObjects": lambda gw, t: gw.getObjects("Project", timeout=t),
    "listProjects": lambda gw, t: gw.listProjects(timeout=t),
    "projection": lambda gw, t: gw.projection("select p.id from Project p", timeout=t),
    "keepAlive": lambda gw, t: gw.keepAlive(timeout=t),
    "ping": lambda gw, t: gw.ping(timeout=t),
    "session_info": lambda gw, t: gw.session_info(timeout=t),
    "setGroupForSession": lambda gw, t: gw.setGroupForSession("system", timeout=t),
    "suConn": lambda gw, t: gw.suConn("alice", timeout=t),
    "run": lambda gw, t: gw.run(
        lambda conn: conn.getQueryService().projection("select 1", None), timeout=t
    ),
    "iter_objects": lambda gw, t: anext(gw.iter_objects("Image", timeout=t)),
}


class TestCallDeadlines:
    @pytest.mark.parametrize("name", sorted(REMOTE_CALLS))
    async def test_every_awaitable_honours_its_timeout(
        self, omero_emulator: Emulator, async_gateway, name: str
    ) -> None:
        """Against a server that answers nothing, timeout= ends the call."""
        gateway = await async_gateway("root")
        with omero_emulator.faults.stall():
            started = time.monotonic()
            with pytest.raises(CallTimeoutError):
                await REMOTE_CALLS[name](gateway, 0.3)
            assert time.monotonic() - started < 3

    async def test_calls_answered_from_the_session_take_timeout_too(
        self, async_gateway
    ) -> None:
        """isAdmin() and getEventContext() accept timeout= like the rest."""
        gateway = await async_gateway("bob")
        assert await gateway.isAdmin(timeout=1) is False
        assert (await gateway.getEventContext(timeout=1)).userName == "bob"

    async def test_call_timeout_error_is_a_timeout_error(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """``except TimeoutError`` catches a call that ran out of time."""
        gateway = await async_gateway("bob")
        stall = omero_emulator.faults.stall("findAllByQuery")
        with stall, pytest.raises(TimeoutError) as caught:
            await gateway.listProjects(timeout=0.2)
        assert isinstance(caught.value, CallTimeoutError)
        assert "within 0.2 s" in str(caught.value)

    async def test_the_default_timeout_applies_without_an_argument(
        self, omero_emulator: Emulator
    ) -> None:
        """The constructor's timeout is the deadline of a call given none."""
        async with gateway_for(omero_emulator, "bob", timeout=0.5) as gateway:
            with omero_emulator.faults.stall("findAllByQuery"):
                started = time.monotonic()
                with pytest.raises(CallTimeoutError):
                    await gateway.listProjects()
                assert time.monotonic() - started < 3

    async def test_timeout_none_waits_for_a_slow_answer(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """timeout=None sets no limit: a call answered after 1.5 s succeeds."""
        gateway = await async_gateway("bob", timeout=0.5)
        omero_emulator.faults.stall("findAllByQuery", seconds=1.5)
        projects = await gateway.listProjects(timeout=None)
        assert {p.name for p in projects} == BOB_PROJECTS


class TestStalledServer:
    @pytest.mark.parametrize("op", [None, "findAllByQuery"], ids=["all", "query"])
    @pytest.mark.parametrize("warm", [False, True], ids=["first-use", "cached"])
    async def test_a_stalled_call_times_out_and_frees_the_worker(
        self, omero_emulator: Emulator, async_gateway, warm: bool, op: str | None
    ) -> None:
        """timeout=1 ends in 3 s, the worker is free in a few, the gateway
        answers once the stall ends: with the whole server or only the query
        stalled, on the query service's first use or a later one."""
        gateway = await async_gateway("bob")
        if warm:
            await gateway.getObjects("Project")
        threads = os_threads()

        with omero_emulator.faults.stall(op) as stall:
            started = time.monotonic()
            with pytest.raises(CallTimeoutError):
                await gateway.getObjects("Project", timeout=1)
            assert time.monotonic() - started < 3
            assert stall.held >= 1

            # The worker runs a call that needs no server only once it is free.
            assert await gateway.run(nothing_remote, timeout=5) == "free"
            assert time.monotonic() - started < 6
            assert os_threads() <= threads

        projects = await gateway.getObjects("Project", timeout=5)
        assert {p.name for p in projects} == BOB_PROJECTS
        assert gateway.isConnected()

    async def test_connect_to_a_port_that_never_answers_times_out(self) -> None:
        """connect(timeout=2) against a silent listener ends within 3 s."""
        threads = os_threads()
        with silent_port() as port:
            gateway = AsyncGateway("bob", "bob-pw", host="127.0.0.1", port=port)
            async with LoopLagProbe().running() as probe:
                started = time.monotonic()
                with pytest.raises(CallTimeoutError):
                    await gateway.connect(timeout=2)
                assert time.monotonic() - started < 3
            assert probe.worst < 0.5
        assert not gateway.isConnected()
        assert await settle_threads(threads) <= threads

    async def test_a_stalled_login_times_out(self, omero_emulator: Emulator) -> None:
        """connect(timeout=1) to a server that holds the login ends in 3 s."""
        gateway = gateway_for(omero_emulator, "bob")
        with omero_emulator.faults.stall("createSession") as stall:
            started = time.monotonic()
            with pytest.raises(CallTimeoutError, match="connect"):
                await gateway.connect(timeout=1)
            assert time.monotonic() - started < 3
            assert stall.held == 1
        await gateway.connect()
        try:
            assert (await gateway.getUser()).omeName == "bob"
        finally:
            await gateway.close()

    async def test_close_with_a_call_stuck_ends_within_its_timeout(
        self, omero_emulator: Emulator
    ) -> None:
        """close(timeout=) gives up on a stuck call and still frees the thread."""
        # The loop's executor thread, which close may use, is no gateway's.
        await asyncio.to_thread(nothing_remote, None)
        threads = os_threads()
        gateway = gateway_for(omero_emulator, "bob", timeout=None)
        await gateway.connect()
        with omero_emulator.faults.stall():
            stuck = asyncio.create_task(gateway.listProjects())
            await asyncio.sleep(0.2)
            started = time.monotonic()
            await gateway.close(timeout=0.5)
            assert time.monotonic() - started < 3
            with pytest.raises(Exception):  # noqa: B017 - the call died with Ice
                await stuck
        assert not gateway.isConnected()
        assert await settle_threads(threads) <= threads


class TestCancellation:
    async def test_cancelling_a_call_leaves_the_session_usable(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """A task cancelled in a stalled call goes; the gateway keeps working."""
        gateway = await async_gateway("bob", timeout=2)
        with omero_emulator.faults.stall("findAllByQuery") as stall:
            task = asyncio.create_task(gateway.listProjects())
            assert await held(stall)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert gateway.isConnected()
        projects = await gateway.listProjects()
        assert {p.name for p in projects} == BOB_PROJECTS

    async def test_a_cancelled_call_still_queued_never_runs(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """A call cancelled before the worker reached it is not sent later."""
        gateway = await async_gateway("bob", timeout=2)
        with omero_emulator.faults.stall("findAllByQuery") as stall:
            first = asyncio.create_task(gateway.listProjects())
            assert await held(stall)
            queued = asyncio.create_task(
                gateway.projection("select p.id from Project p")
            )
            await asyncio.sleep(0.1)
            queued.cancel()
            with pytest.raises(asyncio.CancelledError):
                await queued
        await first
        await gateway.keepAlive()
        assert omero_emulator.counters.calls["projection"] == 0

    async def test_a_cancelled_connect_frees_its_thread(
        self, omero_emulator: Emulator
    ) -> None:
        """Cancelling connect() abandons the login and its resources."""
        threads = os_threads()
        gateway = gateway_for(omero_emulator, "bob")
        with omero_emulator.faults.stall("createSession") as stall:
            task = asyncio.create_task(gateway.connect())
            assert await held(stall)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert not gateway.isConnected()
        assert await settle_threads(threads) <= threads


@pytest.mark.slow
async def test_concurrent_slow_calls_never_block_the_loop(
    omero_emulator: Emulator,
) -> None:
    """200 ms per reply, 20 calls on 4 gateways: the loop never lags 100 ms."""
    omero_emulator.faults.set_latency(0.2)
    gateways = [gateway_for(omero_emulator, user) for user in ("bob", "alice") * 2]

    async def five_calls(gateway: AsyncGateway) -> int:
        calls = (gateway.getObjects("Project") for _ in range(5))
        return len(await asyncio.gather(*calls))

    async with LoopLagProbe().running() as probe:
        await asyncio.gather(*(g.connect() for g in gateways))
        counts = await asyncio.gather(*(five_calls(g) for g in gateways))
        await asyncio.gather(*(g.close() for g in gateways))

    assert counts == [5, 5, 5, 5]
    assert probe.wakeups > 100
    assert probe.worst < 0.1, f"the loop was blocked for {probe.worst:.3f} s"
