"""Every failure of the server or the network is a typed aiomero error."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import traceback
from collections.abc import Iterator

import omero
import pytest

from aiomero import (
    AccountDisabledError,
    AuthenticationError,
    ConnectionLostError,
    GatewayClosedError,
    PermissionDeniedError,
    ServerError,
    ServerUnreachableError,
    SessionExpiredError,
)
from aiomero._logging import fingerprint
from aiomero.gateway import AsyncGateway
from aiomero.testing import Emulator
from gateway_helpers import closed_port, gateway_for, held


@pytest.fixture
def hanging_up_port() -> Iterator[int]:
    """A local port that accepts each connection and closes it at once."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    server.shutdown(socket.SHUT_RDWR)
    server.close()
    thread.join(5)


def login_attempts(emulator: Emulator) -> int:
    """createSession calls the emulator received, failed ones included."""
    return emulator.counters.calls["createSession"]


class TestConnectErrors:
    async def test_a_wrong_password_is_one_refused_attempt(
        self, omero_emulator: Emulator
    ) -> None:
        """A bad password raises AuthenticationError after a single attempt."""
        gateway = AsyncGateway(
            "bob", "wrong", host=omero_emulator.host, port=omero_emulator.port
        )
        with pytest.raises(AuthenticationError) as caught:
            await gateway.connect()
        assert type(caught.value) is AuthenticationError
        assert caught.value.__cause__ is not None
        assert login_attempts(omero_emulator) == 1
        assert omero_emulator.counters.logins == 0
        assert not gateway.isConnected()

    async def test_an_unknown_user_is_an_authentication_error(
        self, omero_emulator: Emulator
    ) -> None:
        """A user the server does not know is refused like a bad password."""
        gateway = AsyncGateway(
            "nobody", "x-pw", host=omero_emulator.host, port=omero_emulator.port
        )
        with pytest.raises(AuthenticationError):
            await gateway.connect()
        assert login_attempts(omero_emulator) == 1

    async def test_an_inactive_account_is_account_disabled(
        self, omero_emulator: Emulator
    ) -> None:
        """An account that may not log in raises AccountDisabledError."""
        with pytest.raises(AccountDisabledError, match="inactive") as caught:
            await gateway_for(omero_emulator, "erin").connect()
        assert isinstance(caught.value, AuthenticationError)
        assert login_attempts(omero_emulator) == 1

    @pytest.mark.parametrize("secure", [True, False])
    async def test_a_connect_is_one_login(
        self, omero_emulator: Emulator, secure: bool
    ) -> None:
        """One connect logs in once (and joins once more over TCP if insecure)."""
        async with gateway_for(omero_emulator, "bob", secure=secure):
            counters = omero_emulator.counters
            assert counters.logins == 1
            assert counters.joins == (0 if secure else 1)
            assert login_attempts(omero_emulator) == (1 if secure else 2)

    async def test_a_closed_port_is_server_unreachable(self) -> None:
        """Nothing listening: ServerUnreachableError, with the Ice error as cause."""
        gateway = AsyncGateway("bob", "bob-pw", host="127.0.0.1", port=closed_port())
        started = time.monotonic()
        with pytest.raises(ServerUnreachableError) as caught:
            await gateway.connect()
        assert time.monotonic() - started < 5
        assert "Refused" in type(caught.value.__cause__).__name__

    async def test_an_unresolvable_host_is_server_unreachable(self) -> None:
        """A host name that does not resolve: ServerUnreachableError."""
        gateway = AsyncGateway("bob", "bob-pw", host="omero.invalid", port=4064)
        with pytest.raises(ServerUnreachableError, match="resolve"):
            await gateway.connect(timeout=10)

    async def test_a_port_that_hangs_up_is_server_unreachable(
        self, hanging_up_port: int
    ) -> None:
        """Something other than OMERO that closes at once: unreachable, fast."""
        gateway = AsyncGateway("bob", "bob-pw", host="127.0.0.1", port=hanging_up_port)
        started = time.monotonic()
        with pytest.raises(ServerUnreachableError):
            await gateway.connect()
        assert time.monotonic() - started < 5

    @pytest.mark.parametrize(
        ("user", "password", "error"),
        [
            ("bob", "wrong", AuthenticationError),
            ("erin", "erin-pw", AccountDisabledError),
            ("bob", "bob-pw", ServerUnreachableError),
        ],
    )
    async def test_async_with_raises_what_connect_raises(
        self, omero_emulator: Emulator, user: str, password: str, error
    ) -> None:
        """``async with`` fails with the connect's own typed error."""
        port = closed_port() if error is ServerUnreachableError else None
        gateway = AsyncGateway(
            user, password, host="127.0.0.1", port=port or omero_emulator.port
        )
        entered = False
        with pytest.raises(error) as caught:
            async with gateway:
                entered = True
        assert type(caught.value) is error
        assert not entered


class TestCallErrors:
    async def test_an_expired_session_is_session_expired(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """A call on a session the server timed out raises SessionExpiredError."""
        bob = await async_gateway("bob")
        [key] = omero_emulator.session_keys("bob")
        omero_emulator.faults.expire_session(key)
        with pytest.raises(SessionExpiredError):
            await bob.listProjects()
        assert not bob.isConnected()
        with pytest.raises(SessionExpiredError):
            await bob.keepAlive()

    async def test_a_session_ended_elsewhere_is_session_expired(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """A session killed through another gateway is gone for this one too."""
        bob = await async_gateway("bob")
        [key] = omero_emulator.session_keys("bob")
        other = AsyncGateway.from_session_key(
            key, omero_emulator.host, omero_emulator.port
        )
        await other.connect()
        await other.close(kill=True)
        with pytest.raises(SessionExpiredError):
            await bob.getUser()

    async def test_a_stopped_server_is_connection_lost(
        self, omero_emulator_factory
    ) -> None:
        """A call after the server went away raises ConnectionLostError; once
        it is back, connect() logs in anew."""
        emulator = omero_emulator_factory()
        gateway = gateway_for(emulator, "bob")
        await gateway.connect()
        emulator.stop()
        try:
            with pytest.raises(ConnectionLostError) as caught:
                await gateway.listProjects()
            assert caught.value.__cause__ is not None
            assert not gateway.isConnected()
        finally:
            emulator.start()
        await gateway.connect()
        try:
            assert (await gateway.getUser()).omeName == "bob"
        finally:
            await gateway.close()

    async def test_a_call_in_flight_at_close_is_gateway_closed(
        self, omero_emulator: Emulator
    ) -> None:
        """close() past its timeout makes a stuck call raise GatewayClosedError."""
        gateway = gateway_for(omero_emulator, "bob", timeout=None)
        await gateway.connect()
        with omero_emulator.faults.stall("findAllByQuery") as stall:
            stuck = asyncio.create_task(gateway.listProjects())
            assert await held(stall)
            await gateway.close(timeout=0.2)
            with pytest.raises(GatewayClosedError):
                await stuck

    async def test_a_server_failure_is_a_server_error_with_its_cause(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """An exception the server raises is ServerError; the session lives."""
        bob = await async_gateway("bob")
        omero_emulator.faults.fail_next("findAllByQuery")
        with pytest.raises(ServerError) as caught:
            await bob.listProjects()
        assert isinstance(caught.value.__cause__, omero.InternalException)
        assert bob.isConnected()
        assert len(await bob.listProjects()) == 2

    async def test_a_security_violation_is_permission_denied(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """omero.SecurityViolation from the server is PermissionDeniedError."""
        bob = await async_gateway("bob")
        omero_emulator.faults.fail_next(
            "findAllByQuery", error=omero.SecurityViolation(message="not yours")
        )
        with pytest.raises(PermissionDeniedError, match="not yours"):
            await bob.listProjects()


class TestNoKeyInTracebacks:
    async def test_a_lost_router_session_shows_only_a_fingerprint(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """Ice names the session by its key; the traceback shows a fingerprint."""
        bob = await async_gateway("bob")
        [key] = omero_emulator.session_keys("bob")
        omero_emulator.faults.drop_connections()
        with pytest.raises(SessionExpiredError) as caught:
            await bob.listProjects()
        text = "".join(traceback.format_exception(caught.value))
        assert key not in text
        assert str(fingerprint(key)) in text

    async def test_an_expired_session_traceback_has_no_key(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """The traceback and message of an expiry never hold the whole key."""
        bob = await async_gateway("bob")
        [key] = omero_emulator.session_keys("bob")
        omero_emulator.faults.expire_session(key)
        with pytest.raises(SessionExpiredError) as caught:
            await bob.getUser()
        text = "".join(traceback.format_exception(caught.value))
        assert key not in text
        assert key not in str(caught.value)
