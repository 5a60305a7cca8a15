"""Faults injected from the test process change what the real gateway meets."""

from __future__ import annotations

import threading
import time

import Glacier2
import Ice
import omero
import pytest

from aiomero.testing import Emulator


def admin_of(conn):
    """The raw IAdmin proxy, so that calls bypass the gateway's caches."""
    return conn.c.sf.getAdminService()


def timed(fn, *args):
    start = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - start


class TestLatency:
    def test_latency_delays_every_reply(self, emulator, gateway) -> None:
        """A latency for all operations delays a trivial call by that much."""
        admin = admin_of(gateway())
        emulator.faults.set_latency(0.3)
        _, took = timed(admin.getEventContext)
        assert took >= 0.25

        emulator.faults.clear_latency()
        _, took = timed(admin.getEventContext)
        assert took < 0.25

    def test_latency_of_one_operation_leaves_others_alone(self, emulator, gateway):
        """A latency set for one operation name delays only that operation."""
        admin = admin_of(gateway())
        emulator.faults.set_latency(0.4, op="getEventContext")

        _, slow = timed(admin.getEventContext)
        _, fast = timed(admin.getSecurityRoles)
        assert slow >= 0.35
        assert fast < 0.35

    def test_random_latency_stays_in_its_range(self, emulator, gateway) -> None:
        """A (low, high) latency draws each delay from that range."""
        admin = admin_of(gateway())
        emulator.faults.set_latency((0.1, 0.2), op="getEventContext")
        for _ in range(3):
            _, took = timed(admin.getEventContext)
            assert 0.09 <= took < 1.0

    def test_delayed_calls_hold_no_server_thread(self, emulator, gateway) -> None:
        """64 calls in flight at 0.5 s each finish together, not one by one."""
        admin = admin_of(gateway())
        emulator.faults.set_latency(0.5)

        start = time.monotonic()
        pending = [admin.begin_getSecurityRoles() for _ in range(64)]
        results = [admin.end_getSecurityRoles(p) for p in pending]
        took = time.monotonic() - start

        assert len(results) == 64
        # Each reply waits its 0.5 s, so all of them take at least that long.
        assert took >= 0.45
        # Four server threads, one at a time, would need 8 s or more.
        assert took < 4.0


class TestStall:
    def test_stalled_call_waits_until_released(self, emulator, gateway) -> None:
        """A stalled call gets no answer until the stall is released."""
        admin = admin_of(gateway())
        stall = emulator.faults.stall("getSecurityRoles")
        done = threading.Event()

        def call() -> None:
            admin.getSecurityRoles()
            done.set()

        worker = threading.Thread(target=call, daemon=True)
        worker.start()
        assert stall.wait_held(1, timeout=5)
        assert not done.wait(0.3)

        stall.release()
        assert done.wait(5)

    def test_stall_ends_by_itself_after_its_duration(self, emulator, gateway) -> None:
        """A stall given a duration answers its calls when it runs out."""
        admin = admin_of(gateway())
        emulator.faults.stall(seconds=0.3)
        _, took = timed(admin.getSecurityRoles)
        assert took >= 0.25

    def test_stall_as_context_manager_releases_on_exit(self, emulator, gateway):
        """Leaving the with block releases the held calls."""
        admin = admin_of(gateway())
        with emulator.faults.stall("getSecurityRoles") as stall:
            pending = admin.begin_getSecurityRoles()
            assert stall.wait_held(1, timeout=5)
            assert not pending.isCompleted()
        assert admin.end_getSecurityRoles(pending).rootName == "root"


class TestFailures:
    def test_fail_next_fails_exactly_that_many_calls(self, emulator, gateway) -> None:
        """fail_next(op, 2) fails the next two calls of op, then stops."""
        admin = admin_of(gateway())
        emulator.faults.fail_next("getSecurityRoles", 2)

        for _ in range(2):
            with pytest.raises(omero.InternalException):
                admin.getSecurityRoles()
        assert admin.getSecurityRoles().rootName == "root"

    def test_fail_next_raises_the_given_error(self, emulator, gateway) -> None:
        """The injected error is the one the test chose."""
        admin = admin_of(gateway())
        emulator.faults.fail_next(
            "getEventContext", error=omero.SecurityViolation(message="nope")
        )
        with pytest.raises(omero.SecurityViolation, match="nope"):
            admin.getEventContext()

    def test_failed_login_makes_connect_return_false(self, emulator) -> None:
        """A login failed by injection looks like a refused login."""
        denied = Glacier2.PermissionDeniedException(reason="injected")
        emulator.faults.fail_next("createSession", 2, denied)
        conn = emulator.gateway()
        assert conn.connect() is False
        assert "injected" in str(conn.getLastError())
        conn.close()
        assert emulator.counters.logins == 0


class TestConnections:
    def test_refusing_fails_new_logins_only(self, emulator, gateway) -> None:
        """While refusing, a new connect fails and open sessions still work."""
        conn = gateway()
        emulator.faults.refuse_connections()

        newcomer = emulator.gateway("alice", "alice-pw")
        try:
            assert newcomer.connect() is False
        except Ice.LocalException:
            pass
        finally:
            newcomer.close()
        assert admin_of(conn).getSecurityRoles().rootName == "root"

        emulator.faults.accept_connections()
        again = gateway("alice", "alice-pw")
        assert again.getEventContext().userName == "alice"

    def test_dropped_connections_break_open_gateways(self, emulator, gateway):
        """After a drop the next call fails, and the session can be joined."""
        conn = gateway("bob", "bob-pw", secure=True)
        key = conn.getEventContext().sessionUuid

        assert emulator.faults.drop_connections() >= 1
        with pytest.raises(Ice.Exception):
            conn.c.sf.getAdminService().getSecurityRoles()
        assert key in emulator.session_keys("bob")

        rejoined = emulator.gateway()
        assert rejoined.connect(sUuid=key)
        assert rejoined.getEventContext().sessionUuid == key
        rejoined.close()

    def test_restart_keeping_sessions(self, emulator, gateway) -> None:
        """After restart(keep_sessions=True) an old key joins on the same port."""
        conn = gateway("carol", "carol-pw", secure=True)
        key = conn.getEventContext().sessionUuid
        port = emulator.port

        emulator.restart(keep_sessions=True)
        assert emulator.port == port
        with pytest.raises(Ice.Exception):
            conn.c.sf.getAdminService().getSecurityRoles()

        rejoined = emulator.gateway()
        assert rejoined.connect(sUuid=key)
        rejoined.close()

    def test_restart_losing_sessions(self, emulator, gateway) -> None:
        """After restart(keep_sessions=False) an old key no longer joins."""
        key = gateway("carol", "carol-pw").getEventContext().sessionUuid

        emulator.restart(keep_sessions=False)
        assert emulator.session_keys() == []
        late = emulator.gateway()
        assert late.connect(sUuid=key) is False
        late.close()


class TestSessionLifetime:
    def test_expired_session_raises_on_next_call(self, emulator, gateway) -> None:
        """expire_session makes the next call raise SessionTimeoutException."""
        conn = gateway("dave", "dave-pw")
        key = conn.getEventContext().sessionUuid

        emulator.faults.expire_session(key)
        with pytest.raises(omero.SessionTimeoutException):
            admin_of(conn).getEventContext()
        assert conn.keepAlive() is False
        assert emulator.session_keys("dave") == []

    def test_idle_session_times_out(self, omero_emulator_factory) -> None:
        """A session unused for longer than the idle timeout ends."""
        emulator: Emulator = omero_emulator_factory(idle_timeout=1.0)
        conn = emulator.gateway()
        assert conn.connect()
        try:
            admin = admin_of(conn)
            time.sleep(1.3)
            with pytest.raises(omero.SessionTimeoutException):
                admin.getEventContext()
        finally:
            conn.close()

    def test_keep_alive_refreshes_the_idle_time(self, omero_emulator_factory):
        """Calling keepAlive more often than the idle timeout keeps it open."""
        emulator: Emulator = omero_emulator_factory(idle_timeout=1.0)
        conn = emulator.gateway()
        assert conn.connect()
        try:
            for _ in range(8):
                time.sleep(0.2)
                assert conn.keepAlive() is True
            assert admin_of(conn).getEventContext().userName == "root"
        finally:
            conn.close()

    def test_time_to_live_ends_even_a_busy_session(self, omero_emulator_factory):
        """A session ends at its time to live however often it is used."""
        emulator: Emulator = omero_emulator_factory(time_to_live=0.5)
        conn = emulator.gateway()
        assert conn.connect()
        try:
            deadline = time.monotonic() + 3
            with pytest.raises(omero.SessionTimeoutException):
                while time.monotonic() < deadline:
                    conn.c.sf.keepAlive(None)
                    time.sleep(0.05)
        finally:
            conn.close()


class TestCounters:
    def test_calls_are_counted_by_operation(self, emulator, gateway) -> None:
        """Every remote call is counted under its operation name."""
        admin = admin_of(gateway())
        before = emulator.counters.calls["getSecurityRoles"]
        for _ in range(3):
            admin.getSecurityRoles()
        assert emulator.counters.calls["getSecurityRoles"] == before + 3

    def test_live_sessions_follow_logins_and_closes(self, emulator) -> None:
        """live_sessions counts sessions open now."""
        conn = emulator.gateway("alice", "alice-pw")
        assert conn.connect()
        assert emulator.counters.live_sessions == 1
        conn.close()
        assert emulator.counters.live_sessions == 0
