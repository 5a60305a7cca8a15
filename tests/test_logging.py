"""What aiomero logs, what it leaves to the application, and what never shows."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
import traceback
import warnings

import pytest
import structlog

from aiomero import (
    AsyncGatewayPool,
    AuthenticationError,
    CallTimeoutError,
    ConnectionLostError,
    PermissionDeniedError,
    ServerError,
    SessionExpiredError,
)
from aiomero._logging import (
    fingerprint,
    redact,
    register_secret,
    unregister_secret,
)
from aiomero.gateway import AsyncGateway
from aiomero.testing import Catalog, Emulator
from gateway_helpers import gateway_for

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
SENTINEL_PASSWORD = "Sentinel-Password-7f3a9c1e"


def events(caplog: pytest.LogCaptureFixture, level: int = logging.DEBUG) -> list[str]:
    """aiomero's own messages at ``level`` or above, oldest first."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "aiomero" and r.levelno >= level
    ]


def named(messages: list[str], event: str) -> list[str]:
    return [m for m in messages if m.split(" ", 1)[0] == event]


class TestEvents:
    async def test_connect_and_close_are_logged_at_info(
        self, omero_emulator: Emulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """'connected' and 'closed' name the user and the session fingerprint."""
        caplog.set_level(logging.INFO, "aiomero")
        async with gateway_for(omero_emulator, "bob") as gateway:
            fp = gateway.session_fingerprint
        messages = events(caplog, logging.INFO)
        [connected] = named(messages, "connected")
        assert "user='bob'" in connected
        assert f"session='{fp}'" in connected
        [closed] = named(messages, "closed")
        assert f"session='{fp}'" in closed
        assert "killed=True" in closed

    async def test_a_failed_connect_is_a_warning(
        self, omero_emulator: Emulator, caplog: pytest.LogCaptureFixture
    ) -> None:
        """'connect_failed' names the server, the user and the error type."""
        caplog.set_level(logging.INFO, "aiomero")
        gateway = AsyncGateway(
            "bob", "bad-pw-4242", host=omero_emulator.host, port=omero_emulator.port
        )
        with pytest.raises(AuthenticationError):
            await gateway.connect()
        [failed] = named(events(caplog, logging.WARNING), "connect_failed")
        assert "user='bob'" in failed
        assert "AuthenticationError" in failed
        assert "bad-pw-4242" not in caplog.text

    async def test_a_timed_out_call_is_a_warning(
        self,
        omero_emulator: Emulator,
        async_gateway,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """'call_timed_out' names the call and its timeout."""
        gateway = await async_gateway("bob")
        caplog.set_level(logging.INFO, "aiomero")
        stall = omero_emulator.faults.stall("findAllByQuery")
        with stall, pytest.raises(CallTimeoutError):
            await gateway.listProjects(timeout=0.3)
        [timed_out] = named(events(caplog, logging.WARNING), "call_timed_out")
        assert "timeout=0.3" in timed_out
        assert "call='getObjects'" in timed_out

    async def test_each_call_is_a_debug_event_only_when_asked_for(
        self, async_gateway, caplog: pytest.LogCaptureFixture
    ) -> None:
        """'call' with its name and duration appears at DEBUG, not at INFO."""
        gateway = await async_gateway("bob")
        caplog.set_level(logging.INFO, "aiomero")
        await gateway.getUser()
        assert named(events(caplog), "call") == []

        caplog.set_level(logging.DEBUG, "aiomero")
        await gateway.getUser()
        [call] = named(events(caplog), "call")
        assert "call='getUser'" in call
        assert "duration_ms=" in call

    async def test_an_application_structlog_configuration_is_used(
        self, async_gateway
    ) -> None:
        """With structlog configured, events go through its processors and
        every call still works."""
        gateway = await async_gateway("bob")
        try:
            with structlog.testing.capture_logs() as captured:
                user = await gateway.getUser()
                with pytest.raises(ValueError):
                    await gateway.getObjects("Project", opts={"bogus": 1})
                await gateway.close()
        finally:
            structlog.reset_defaults()
        assert user.omeName == "bob"
        assert {"call", "closed"} <= {entry["event"] for entry in captured}


def root_handlers_after(code: str) -> int:
    """The root logger's handlers once ``code`` ran in a fresh interpreter."""
    script = textwrap.dedent(code) + "\nprint(len(logging.getLogger().handlers))\n"
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr
    return int(run.stdout.split()[-1])


class TestLoggingIsTheApplications:
    def test_omero_client_alone_configures_the_root_logger(self) -> None:
        """Without aiomero, creating an omero.client adds a root handler."""
        code = """
            import logging
            import omero.clients
            omero.client(host="127.0.0.1", port=1)
        """
        assert root_handlers_after(code) == 1

    def test_a_connect_through_aiomero_adds_no_root_handler(self) -> None:
        """With aiomero, omero.client's logging.basicConfig() does nothing."""
        code = """
            import asyncio, logging
            from aiomero.gateway import AsyncGateway
            from aiomero.testing import Emulator

            async def main(emulator):
                gateway = AsyncGateway(
                    "bob", "bob-pw", host=emulator.host, port=emulator.port
                )
                async with gateway:
                    await gateway.getUser()

            with Emulator() as emulator:
                asyncio.run(main(emulator))
        """
        assert root_handlers_after(code) == 0


class TestOmeroLoggers:
    async def test_omero_py_warnings_carry_no_session_key(
        self,
        omero_emulator: Emulator,
        async_gateway,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """omero-py logs a failed call with its Ice context; the session's key
        in it is replaced by its fingerprint."""
        gateway = await async_gateway("bob")
        [key] = omero_emulator.session_keys("bob")
        caplog.set_level(logging.DEBUG)
        omero_emulator.faults.fail_next("findAllByQuery")
        with pytest.raises(ServerError):
            await gateway.listProjects()
        omero_records = [r for r in caplog.records if r.name.startswith("omero")]
        assert any("findAllByQuery" in r.getMessage() for r in omero_records)
        assert str(fingerprint(key)) in caplog.text
        assert key not in caplog.text


class TestRedaction:
    def test_a_password_is_masked_where_it_stands_alone(self) -> None:
        """A password is masked as a whole value, not inside other words."""
        register_secret("x")
        register_secret("p@ss!")
        try:
            text = redact("Ice.ConnectionRefusedException pw=x, x; token p@ss!")
        finally:
            unregister_secret("x")
            unregister_secret("p@ss!")
        assert text == "Ice.ConnectionRefusedException pw=***, ***; token ***"


class TestSecretsNeverShow:
    class Everything(logging.Handler):
        """Formats every record, traceback included, as a handler would."""

        def __init__(self) -> None:
            super().__init__(logging.DEBUG)
            self.texts: list[str] = []
            self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

        def emit(self, record: logging.LogRecord) -> None:
            self.texts.append(self.format(record))

    @pytest.fixture
    def sentinel_emulator(self, omero_emulator_factory) -> Emulator:
        catalog = Catalog()
        catalog.add_group("vault")
        catalog.add_user("sentinel", SENTINEL_PASSWORD, groups=["vault"])
        catalog.add_project("vault-project", owner="sentinel", group="vault")
        return omero_emulator_factory(catalog=catalog)

    @pytest.fixture
    def everything(self):
        root = logging.getLogger()
        handler, level = self.Everything(), root.level
        root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        yield handler
        root.removeHandler(handler)
        root.setLevel(level)

    @staticmethod
    def shown(error: BaseException) -> list[str]:
        """Everything a user may see of an error."""
        return [str(error), repr(error), "".join(traceback.format_exception(error))]

    async def test_no_log_repr_or_error_shows_the_password_or_key(
        self, sentinel_emulator: Emulator, everything, capfd
    ) -> None:
        """Through a connect, failed calls, a timeout, a lost session and
        failed connects, at DEBUG on every logger, neither the password nor
        any session key appears."""
        emulator = sentinel_emulator
        where = {"host": emulator.host, "port": emulator.port}
        texts: list[str] = []
        gateway = AsyncGateway("sentinel", SENTINEL_PASSWORD, **where)
        texts.append(repr(gateway))

        await gateway.connect()
        [key] = emulator.session_keys("sentinel")
        texts += [repr(gateway), repr(await gateway.session_info())]
        assert [p.name for p in await gateway.listProjects()] == ["vault-project"]

        emulator.faults.fail_next("findAllByQuery")
        with pytest.raises(ServerError) as failed:
            await gateway.listProjects()
        stall = emulator.faults.stall("findAllByQuery")
        with stall, pytest.raises(CallTimeoutError) as timed_out:
            await gateway.listProjects(timeout=0.5)
        emulator.faults.drop_connections()
        # The reset may reach the client during the call or before it.
        with pytest.raises((SessionExpiredError, ConnectionLostError)) as lost:
            await gateway.listProjects()
        texts.append(repr(gateway))
        await gateway.close()

        refused = AsyncGateway("sentinel", SENTINEL_PASSWORD + "-not", **where)
        with pytest.raises(AuthenticationError) as bad_password:
            await refused.connect()
        foreign = AsyncGateway("sentinel", SENTINEL_PASSWORD, group="lab", **where)
        with pytest.raises(PermissionDeniedError) as bad_group:
            await foreign.connect()
        texts += [repr(refused), repr(foreign)]

        for caught in (failed, timed_out, lost, bad_password, bad_group):
            texts += self.shown(caught.value)
        out, err = capfd.readouterr()
        texts += [*everything.texts, out, err]
        assert len(everything.texts) > 20
        assert any(r.startswith("omero") for r in everything.texts)
        everywhere = "\n".join(texts)
        assert SENTINEL_PASSWORD not in everywhere
        assert key not in everywhere
        assert UUID.findall(everywhere) == []
        assert str(fingerprint(key)) in everywhere

    async def test_event_context_expiry_pool_and_warnings_show_no_secret(
        self, sentinel_emulator: Emulator, everything, capfd
    ) -> None:
        """The event context, an expired session, a pool's sessions (made,
        replaced, closed with one still lent) and the warnings raised on the
        way show neither the password nor any session key."""
        emulator = sentinel_emulator
        where = {"host": emulator.host, "port": emulator.port}
        texts: list[str] = []
        keys: set[str] = set()

        gateway = AsyncGateway("sentinel", SENTINEL_PASSWORD, **where)
        await gateway.connect()
        [key] = emulator.session_keys("sentinel")
        keys.add(key)
        ec = await gateway.getEventContext()
        # The key is still there for code that needs it; its text hides it.
        assert ec.sessionUuid == key
        assert ec.userName == "sentinel"
        texts += [repr(ec), str(ec)]
        emulator.faults.expire_session(key)
        with pytest.raises(SessionExpiredError) as expired:
            await gateway.listProjects()
        texts += self.shown(expired.value)
        await gateway.close()

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pool = AsyncGatewayPool(
                "sentinel", SENTINEL_PASSWORD, min_size=2, check=True, **where
            )
            texts.append(repr(pool))
            await pool.open()
            keys.update(emulator.session_keys("sentinel"))
            async with pool.acquire() as gw:
                texts.append(repr(gw))
                lent_key = (await gw.getEventContext()).sessionUuid
                emulator.faults.expire_session(lent_key)
            # The check on acquire finds the expired one and replaces it.
            for _ in range(2):
                async with pool.acquire() as gw:
                    assert [p.name for p in await gw.listProjects()] == [
                        "vault-project"
                    ]
            keys.update(emulator.session_keys("sentinel"))
            lent = pool.acquire()
            await lent.__aenter__()
            await pool.close(timeout=0.2)
        assert any(issubclass(w.category, ResourceWarning) for w in caught)
        texts += [str(w.message) for w in caught]

        out, err = capfd.readouterr()
        texts += [*everything.texts, out, err]
        assert any("session_replaced" in t for t in everything.texts)
        assert len(keys) >= 3
        everywhere = "\n".join(texts)
        assert SENTINEL_PASSWORD not in everywhere
        for one in keys:
            assert one not in everywhere
        assert UUID.findall(everywhere) == []
        assert str(fingerprint(key)) in everywhere
