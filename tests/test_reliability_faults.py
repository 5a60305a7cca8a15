"""What AsyncGateway guarantees when the server or the network fails.

Each test injects one fault (a closed port, a silent port, a server starting
late, a refused password, an expired session, a stalled call, a close with
calls in flight) and checks the typed error, the time it took and that the
event loop kept running. docs/reliability.md lists the same faults.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from collections.abc import Callable

import Glacier2
import Ice
import pytest

from aiomero.errors import (
    AccountDisabledError,
    AuthenticationError,
    CallTimeoutError,
    ConnectionLostError,
    GatewayClosedError,
    ServerUnreachableError,
    SessionExpiredError,
)
from aiomero.gateway import AsyncGateway
from aiomero.testing import Emulator
from reliability_support import (
    LoopProbe,
    connected,
    free_port,
    gateway_for,
    os_threads,
    settle,
    silent_server,
)

# The longest the event loop may go without running a ready task. Blocking
# the loop on a thread join or a blocking Ice call shows up as a gap of
# hundreds of milliseconds; scheduling noise on a busy machine stays far below.
LOOP_GAP = 0.25

# Slack on a deadline: the timer fires on time, the clean-up after it is quick.
SLACK = 0.5


def _retries(caplog: pytest.LogCaptureFixture) -> int:
    return sum(r.getMessage().startswith("connect_retry") for r in caplog.records)


class TestUnreachableServer:
    async def test_nothing_listening_is_unreachable_within_the_connect_timeout(
        self,
    ) -> None:
        """A port nothing listens on raises ServerUnreachableError at once."""
        gateway = AsyncGateway("root", "omero", port=free_port(), connect_timeout=3)
        started = time.monotonic()
        with pytest.raises(ServerUnreachableError) as caught:
            await gateway.connect()
        assert time.monotonic() - started < 3
        assert isinstance(caught.value.__cause__, Ice.ConnectionRefusedException)
        assert not gateway.isConnected()

    async def test_a_name_that_does_not_resolve_is_unreachable_and_says_so(
        self,
    ) -> None:
        """An unresolvable host is a ServerUnreachableError naming the cause."""
        gateway = AsyncGateway(
            "root", "omero", host="no-such-host.invalid", connect_timeout=5
        )
        started = time.monotonic()
        with pytest.raises(ServerUnreachableError, match="does not resolve"):
            await gateway.connect()
        assert time.monotonic() - started < 5 + SLACK

    async def test_a_silent_port_times_out_at_the_deadline_and_the_loop_runs_on(
        self,
    ) -> None:
        """A port that accepts and never answers: CallTimeoutError on time."""
        before = os_threads()
        with silent_server() as port:
            gateway = AsyncGateway("root", "omero", port=port, connect_timeout=1.5)
            async with LoopProbe() as probe:
                started = time.monotonic()
                with pytest.raises(CallTimeoutError) as caught:
                    await gateway.connect()
                elapsed = time.monotonic() - started
        assert isinstance(caught.value, TimeoutError)
        assert 1.4 <= elapsed <= 1.5 + SLACK
        assert probe.longest < LOOP_GAP
        # The login was cut short on its thread, which then ended.
        assert await settle(before) <= before

    async def test_cancelling_a_connect_to_a_silent_port_frees_its_thread(
        self,
    ) -> None:
        """Cancelling a hanging connect returns at once and frees the thread."""
        before = os_threads()
        with silent_server() as port:
            gateway = AsyncGateway("root", "omero", port=port, connect_timeout=30)
            async with LoopProbe() as probe:
                task = asyncio.create_task(gateway.connect())
                await asyncio.sleep(0.5)
                task.cancel()
                started = time.monotonic()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert time.monotonic() - started < SLACK
            assert probe.longest < LOOP_GAP
        assert not gateway.isConnected()
        assert await settle(before) <= before

    async def test_a_call_the_server_never_answers_times_out_at_its_deadline(
        self, omero_emulator: Emulator
    ) -> None:
        """A stalled call raises CallTimeoutError at its own deadline."""
        async with connected(omero_emulator) as gateway:
            omero_emulator.faults.stall("findAllByQuery")
            async with LoopProbe() as probe:
                started = time.monotonic()
                with pytest.raises(CallTimeoutError):
                    await gateway.listProjects(timeout=1.0)
                elapsed = time.monotonic() - started
            assert 0.9 <= elapsed <= 1.0 + SLACK
            assert probe.longest < LOOP_GAP


class TestServerStarting:
    async def test_retry_refused_connects_once_a_late_server_starts(
        self,
        omero_emulator_factory: Callable[..., Emulator],
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """A server that starts late is reached by retrying, with one login."""
        caplog.set_level(logging.INFO, logger="aiomero")
        emulator = omero_emulator_factory()
        emulator.stop()
        emulator.counters.reset()
        ready: list[float] = []

        def start_late() -> None:
            emulator.start()
            ready.append(time.monotonic())

        starter = threading.Timer(1.5, start_late)
        gateway = gateway_for(emulator, retry_refused=20)
        starter.start()
        try:
            started = time.monotonic()
            await gateway.connect()
            connected_at = time.monotonic()
            assert (await gateway.getUser()).omeName == "alice"
        finally:
            starter.join()
            await gateway.close()
        # Retries are at most 2 s apart, so the login follows within one pause.
        assert connected_at - started >= 1.4  # nothing listened before
        assert connected_at <= ready[0] + 2.0 + SLACK
        assert _retries(caplog) >= 2
        assert emulator.counters.logins == 1

    async def test_retry_refused_rides_out_a_server_refusing_connections(
        self, omero_emulator: Emulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Connections turned away for a while are retried until accepted."""
        caplog.set_level(logging.INFO, logger="aiomero")
        omero_emulator.faults.refuse_connections()
        opener = threading.Timer(1.5, omero_emulator.faults.accept_connections)
        opener.start()
        gateway = gateway_for(omero_emulator, retry_refused=20)
        try:
            await gateway.connect()
            assert gateway.isConnected()
        finally:
            opener.join()
            await gateway.close()
        counters = omero_emulator.counters
        assert _retries(caplog) >= 2
        assert counters.calls["createSession"] >= 3  # refused tries, then 2
        assert counters.logins == 1

    async def test_retry_refused_gives_up_at_its_deadline_with_backoff(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A server that never starts: ServerUnreachableError after the
        deadline, having retried a few times, not in a busy loop."""
        caplog.set_level(logging.INFO, logger="aiomero")
        gateway = AsyncGateway("root", "omero", port=free_port(), retry_refused=2.0)
        started = time.monotonic()
        with pytest.raises(ServerUnreachableError):
            await gateway.connect()
        elapsed = time.monotonic() - started
        assert 2.0 <= elapsed <= 2.0 + SLACK
        # Pauses of 0.2, 0.4, 0.8 s, ... fit about five tries in two seconds.
        assert 3 <= _retries(caplog) <= 8

    async def test_without_retry_refused_a_refusal_fails_at_once(
        self, omero_emulator: Emulator
    ) -> None:
        """Retrying is opt-in: by default one refused attempt raises."""
        omero_emulator.faults.refuse_connections()
        gateway = gateway_for(omero_emulator)
        started = time.monotonic()
        with pytest.raises(ServerUnreachableError):
            await gateway.connect()
        assert time.monotonic() - started < 1.0
        assert omero_emulator.counters.calls["createSession"] == 1

    async def test_retry_refused_never_retries_a_wrong_password(
        self, omero_emulator: Emulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A refused password fails at once, after exactly one login attempt."""
        caplog.set_level(logging.INFO, logger="aiomero")
        gateway = gateway_for(omero_emulator, passwd="wrong", retry_refused=20)
        started = time.monotonic()
        with pytest.raises(AuthenticationError):
            await gateway.connect()
        assert time.monotonic() - started < 1.0
        assert omero_emulator.counters.calls["createSession"] == 1
        assert _retries(caplog) == 0


class TestRefusedCredentials:
    async def test_a_wrong_password_is_one_login_attempt(
        self, omero_emulator: Emulator
    ) -> None:
        """A wrong password raises AuthenticationError after one attempt."""
        gateway = gateway_for(omero_emulator, passwd="not-alices-password")
        with pytest.raises(AuthenticationError) as caught:
            await gateway.connect()
        counters = omero_emulator.counters
        assert counters.calls["createSession"] == 1
        assert (counters.logins, counters.live_sessions) == (0, 0)
        assert isinstance(caught.value.__cause__, Glacier2.PermissionDeniedException)
        assert not gateway.isConnected()

    async def test_a_wrong_password_is_not_in_the_error(
        self, omero_emulator: Emulator
    ) -> None:
        """Neither the error nor its cause chain repeats the password."""
        secret = "s3cret-not-alices"
        gateway = gateway_for(omero_emulator, passwd=secret)
        with pytest.raises(AuthenticationError) as caught:
            await gateway.connect()
        text = "".join(traceback.format_exception(caught.value))
        assert secret not in text
        assert secret not in repr(gateway)

    async def test_an_inactive_account_is_one_login_attempt(
        self, omero_emulator: Emulator
    ) -> None:
        """An account that may not log in raises AccountDisabledError once."""
        gateway = gateway_for(omero_emulator, "erin")
        with pytest.raises(AccountDisabledError):
            await gateway.connect()
        assert omero_emulator.counters.calls["createSession"] == 1


class TestExpiredSession:
    @pytest.mark.parametrize("secure", [True, False])
    async def test_an_expired_session_fails_the_next_call(
        self, omero_emulator: Emulator, secure: bool
    ) -> None:
        """The call after an expiry raises SessionExpiredError; the gateway
        then reports itself disconnected."""
        async with connected(omero_emulator, secure=secure) as gateway:
            [key] = omero_emulator.session_keys("alice")
            omero_emulator.faults.expire_session(key)
            assert gateway.isConnected()  # nothing has told it yet
            with pytest.raises(SessionExpiredError) as caught:
                await gateway.getUser()
            assert not gateway.isConnected()
            assert key not in "".join(traceback.format_exception(caught.value))

    async def test_an_expired_session_is_never_replaced_behind_the_callers_back(
        self, omero_emulator: Emulator
    ) -> None:
        """After an expiry every call keeps failing; no new login happens."""
        async with connected(omero_emulator) as gateway:
            [key] = omero_emulator.session_keys("alice")
            fingerprint = gateway.session_fingerprint
            omero_emulator.faults.expire_session(key)
            omero_emulator.counters.reset()
            for call in (gateway.getUser, gateway.listProjects, gateway.keepAlive):
                with pytest.raises(SessionExpiredError):
                    await call()
            counters = omero_emulator.counters
            assert (counters.logins, counters.joins) == (0, 0)
            assert omero_emulator.session_keys("alice") == []
            assert gateway.session_fingerprint == fingerprint

    async def test_connecting_again_after_an_expiry_frees_the_dead_session(
        self, omero_emulator: Emulator
    ) -> None:
        """An explicit connect() logs in anew and leaves no thread behind."""
        gateway = gateway_for(omero_emulator, secure=True)
        await gateway.connect()
        await gateway.close()
        before = await settle(os_threads())
        await gateway.connect()
        try:
            [key] = omero_emulator.session_keys("alice")
            omero_emulator.faults.expire_session(key)
            with pytest.raises(SessionExpiredError):
                await gateway.getUser()
            await gateway.connect()
            assert (await gateway.getUser()).omeName == "alice"
            assert omero_emulator.session_keys("alice") != [key]
        finally:
            await gateway.close()
        assert await settle(before) <= before


class TestDroppedConnection:
    @pytest.mark.parametrize("secure", [True, False])
    async def test_a_dropped_connection_fails_the_next_call_without_a_new_login(
        self, omero_emulator: Emulator, secure: bool
    ) -> None:
        """The server closing the connection: the next call raises a typed
        error, the gateway reports itself disconnected, nobody logs in."""
        async with connected(omero_emulator, secure=secure) as gateway:
            omero_emulator.counters.reset()
            assert omero_emulator.faults.drop_connections() >= 1
            with pytest.raises((SessionExpiredError, ConnectionLostError)):
                await gateway.getUser()
            assert not gateway.isConnected()
            counters = omero_emulator.counters
            assert (counters.logins, counters.joins) == (0, 0)


class TestStalledCall:
    async def test_a_cancelled_stalled_call_leaves_the_gateway_usable(
        self, omero_emulator: Emulator
    ) -> None:
        """Cancel a stalled call; once the server answers, the next call works."""
        async with connected(omero_emulator) as gateway:
            stall = omero_emulator.faults.stall("findAllByQuery")
            task = asyncio.create_task(gateway.listProjects())
            assert await asyncio.to_thread(stall.wait_held, 1, 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            stall.release()
            projects = await asyncio.wait_for(gateway.listProjects(), 10)
            assert {p.name for p in projects} >= {"alice-private"}
            assert gateway.isConnected()

    async def test_a_timed_out_call_frees_the_thread_while_the_server_stalls(
        self, omero_emulator: Emulator
    ) -> None:
        """A call past its deadline ends on the session thread too, so other
        calls go through while the stalled operation is still held."""
        async with connected(omero_emulator) as gateway:
            omero_emulator.faults.stall("findAllByQuery")
            with pytest.raises(CallTimeoutError):
                await gateway.listProjects(timeout=0.5)
            started = time.monotonic()
            info = await gateway.session_info(timeout=5)
            assert info.user_name == "alice"
            assert time.monotonic() - started < 1.0


class TestCloseWithCallsInFlight:
    async def test_close_lets_calls_in_flight_finish_within_its_timeout(
        self, omero_emulator: Emulator
    ) -> None:
        """Slow calls that finish before the close timeout return results."""
        gateway = gateway_for(omero_emulator)
        await gateway.connect()
        omero_emulator.faults.set_latency(0.3, op="findAllByQuery")
        calls = [asyncio.create_task(gateway.listProjects()) for _ in range(3)]
        await asyncio.sleep(0.05)
        await gateway.close(timeout=10)
        results = await asyncio.gather(*calls)
        assert all(len(projects) >= 1 for projects in results)
        assert omero_emulator.counters.live_sessions == 0

    async def test_close_cancels_calls_still_in_flight_after_its_timeout(
        self, omero_emulator: Emulator
    ) -> None:
        """Calls that outlast the close timeout fail with GatewayClosedError
        and nothing waits longer than the timeout."""
        gateway = gateway_for(omero_emulator)
        await gateway.connect()
        stall = omero_emulator.faults.stall()
        calls = [
            asyncio.create_task(gateway.listProjects(timeout=None)) for _ in range(3)
        ]
        assert await asyncio.to_thread(stall.wait_held, 1, 10)
        async with LoopProbe() as probe:
            started = time.monotonic()
            await gateway.close(timeout=1.0)
            results = await asyncio.wait_for(
                asyncio.gather(*calls, return_exceptions=True), 1.0
            )
            elapsed = time.monotonic() - started
        assert elapsed <= 1.0 + SLACK
        assert all(isinstance(r, GatewayClosedError) for r in results)
        assert probe.longest < LOOP_GAP
        assert not gateway.isConnected()
        with pytest.raises(GatewayClosedError):
            await gateway.listProjects()

    async def test_close_does_not_wait_for_code_stuck_on_the_session_thread(
        self, omero_emulator: Emulator
    ) -> None:
        """User code blocking the thread in run() cannot hold close() past its
        timeout, nor block the event loop; the call ends when the code does."""
        # A timed-out close destroys the communicator on the loop's default
        # executor, whose thread stays for reuse: start it beforehand.
        await asyncio.get_running_loop().run_in_executor(None, lambda: None)
        before = os_threads()
        gateway = gateway_for(omero_emulator)
        await gateway.connect()
        stuck = asyncio.create_task(gateway.run(lambda _gw: time.sleep(2) or "done"))
        await asyncio.sleep(0.2)
        async with LoopProbe() as probe:
            started = time.monotonic()
            await gateway.close(timeout=0.5)
            assert time.monotonic() - started <= 0.5 + SLACK
        assert probe.longest < LOOP_GAP
        assert await asyncio.wait_for(stuck, 2 + SLACK) == "done"
        assert await settle(before) <= before
