"""Ways to make an AsyncGateway: arguments, environment, YAML, a session key,
an omero.client; each one knows its session."""

from __future__ import annotations

from pathlib import Path

import omero
import pytest

from aiomero._logging import fingerprint
from aiomero.gateway import AsyncGateway
from aiomero.testing import Emulator
from gateway_helpers import gateway_for


def env_of(emulator: Emulator, **values: str) -> dict[str, str]:
    """OMERO_* variables pointing at ``emulator``, plus ``values``."""
    env = {"OMERO_HOST": emulator.host, "OMERO_PORT": str(emulator.port)}
    env.update({f"OMERO_{name.upper()}": value for name, value in values.items()})
    return env


def only_key(emulator: Emulator, user: str) -> str:
    """The one live session key of ``user``."""
    [key] = emulator.session_keys(user)
    return key


async def knows_its_session(gateway: AsyncGateway, key: str) -> bool:
    """Whether the gateway's idea of its session is ``key``."""
    info = await gateway.session_info()
    return gateway.session_fingerprint == info.session == fingerprint(key)


class TestSecure:
    async def test_secure_true_stays_on_ssl(self, omero_emulator: Emulator) -> None:
        """secure=True logs in once and makes every call over SSL."""
        async with gateway_for(omero_emulator, "bob", secure=True) as gateway:
            await gateway.listProjects()
            assert (await gateway.session_info()).secure is True
            counters = omero_emulator.counters
            assert (counters.logins, counters.joins) == (1, 0)
            assert counters.endpoints["tcp"] == 0

    async def test_secure_false_moves_to_tcp_after_the_login(
        self, omero_emulator: Emulator
    ) -> None:
        """secure=False logs in over SSL, then joins and calls over TCP."""
        async with gateway_for(omero_emulator, "bob") as gateway:
            ssl_before = omero_emulator.counters.endpoints["ssl"]
            await gateway.listProjects()
            assert (await gateway.session_info()).secure is False
            counters = omero_emulator.counters
            assert (counters.logins, counters.joins) == (1, 1)
            assert counters.endpoints["ssl"] == ssl_before
            assert await knows_its_session(gateway, only_key(omero_emulator, "bob"))


class TestFromEnv:
    async def test_from_env_logs_in_with_the_variables(
        self, omero_emulator: Emulator
    ) -> None:
        """OMERO_USER, OMERO_PASSWORD, OMERO_HOST/PORT/SECURE/GROUP are used."""
        env = env_of(
            omero_emulator,
            user="bob",
            password="bob-pw",
            secure="yes",
            group="private-lab",
        )
        async with AsyncGateway.from_env(env) as gateway:
            assert (await gateway.getUser()).omeName == "bob"
            assert (await gateway.getGroupFromContext()).name == "private-lab"
            assert gateway.secure is True
            assert omero_emulator.counters.endpoints["tcp"] == 0
            assert await knows_its_session(gateway, only_key(omero_emulator, "bob"))

    async def test_from_env_with_a_session_key_joins_it(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """OMERO_SESSION_KEY joins that session: no login, the same key."""
        await async_gateway("bob")
        key = only_key(omero_emulator, "bob")
        omero_emulator.counters.reset()

        env = env_of(omero_emulator, session_key=key)
        async with AsyncGateway.from_env(env) as joined:
            assert (await joined.getUser()).omeName == "bob"
            assert omero_emulator.counters.logins == 0
            assert await knows_its_session(joined, key)
        assert omero_emulator.session_keys("bob") == [key]

    def test_from_env_options_go_to_the_gateway(self, omero_emulator) -> None:
        """Keyword options of from_env are the constructor's, checked too."""
        env = env_of(omero_emulator, user="bob", password="bob-pw")
        with pytest.raises(ValueError, match="timeout"):
            AsyncGateway.from_env(env, timeout=0)


class TestFromYaml:
    async def test_from_yaml_logs_in_with_the_file(
        self, omero_emulator: Emulator, tmp_path: Path
    ) -> None:
        """A YAML file of username, password, host, port, secure, group works."""
        path = tmp_path / "omero.yaml"
        path.write_text(
            "username: alice\n"
            "password: alice-pw\n"
            f"host: {omero_emulator.host}\n"
            f"port: {omero_emulator.port}\n"
            "secure: on\n"
            "group: read-only-lab\n"
        )
        async with AsyncGateway.from_yaml(path) as gateway:
            assert (await gateway.getUser()).omeName == "alice"
            assert (await gateway.getGroupFromContext()).name == "read-only-lab"
            assert gateway.secure is True
            assert await knows_its_session(gateway, only_key(omero_emulator, "alice"))

    async def test_from_yaml_with_a_session_key_joins_it(
        self, omero_emulator: Emulator, async_gateway, tmp_path: Path
    ) -> None:
        """session_key in the file joins that session instead of logging in."""
        await async_gateway("alice")
        key = only_key(omero_emulator, "alice")
        path = tmp_path / "omero.yaml"
        path.write_text(
            f"host: {omero_emulator.host}\n"
            f"port: {omero_emulator.port}\n"
            f"session_key: {key}\n"
        )
        omero_emulator.counters.reset()
        async with AsyncGateway.from_yaml(path) as gateway:
            assert (await gateway.getUser()).omeName == "alice"
            assert omero_emulator.counters.logins == 0
            assert await knows_its_session(gateway, key)


class TestFromSessionKey:
    async def test_joining_a_key_is_not_a_login(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """from_session_key joins: no login counted, the same session."""
        await async_gateway("bob")
        key = only_key(omero_emulator, "bob")
        omero_emulator.counters.reset()
        gateway = AsyncGateway.from_session_key(
            key, omero_emulator.host, omero_emulator.port
        )
        await gateway.connect()
        try:
            assert omero_emulator.counters.logins == 0
            assert omero_emulator.counters.joins >= 1
            assert (await gateway.getUser()).omeName == "bob"
            assert await knows_its_session(gateway, key)
            assert "session-key@" in repr(gateway)
        finally:
            await gateway.close()

    async def test_closing_a_joined_session_only_detaches(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """close() leaves a joined session alive; close(kill=True) ends it."""
        await async_gateway("bob")
        key = only_key(omero_emulator, "bob")
        host, port = omero_emulator.host, omero_emulator.port

        gateway = AsyncGateway.from_session_key(key, host, port)
        await gateway.connect()
        await gateway.close()
        assert omero_emulator.session_keys("bob") == [key]

        gateway = AsyncGateway.from_session_key(key, host, port)
        await gateway.connect()
        await gateway.close(kill=True)
        assert omero_emulator.session_keys("bob") == []

    def test_a_malformed_key_is_refused_without_echoing_it(self) -> None:
        """A key that is not a UUID is a ValueError that does not repeat it."""
        with pytest.raises(ValueError, match="session_key") as caught:
            AsyncGateway.from_session_key("not-a-key-0123")
        assert "not-a-key-0123" not in str(caught.value)


class TestFromClient:
    def client_of(self, emulator: Emulator, user: str, password: str) -> object:
        client = omero.client(host=emulator.host, port=emulator.port)
        client.createSession(user, password)
        return client

    async def test_from_client_uses_the_clients_session(
        self, omero_emulator: Emulator
    ) -> None:
        """An omero.client with a session becomes a gateway of that session."""
        client = self.client_of(omero_emulator, "alice", "alice-pw")
        key = client.getSessionId()
        omero_emulator.counters.reset()
        gateway = AsyncGateway.from_client(client)
        await gateway.connect()
        try:
            assert (await gateway.getUser()).omeName == "alice"
            assert omero_emulator.counters.logins == 0
            assert await knows_its_session(gateway, key)
        finally:
            await gateway.close(kill=True)
        assert omero_emulator.session_keys("alice") == []

    async def test_closing_an_adopted_client_only_detaches(
        self, omero_emulator: Emulator
    ) -> None:
        """close() of a from_client gateway leaves the session alive."""
        client = self.client_of(omero_emulator, "alice", "alice-pw")
        key = client.getSessionId()
        gateway = AsyncGateway.from_client(client)
        await gateway.connect()
        await gateway.close()
        assert omero_emulator.session_keys("alice") == [key]

    def test_a_client_without_a_session_is_refused(self, omero_emulator) -> None:
        """from_client of a client that never logged in is a ValueError."""
        client = omero.client(host=omero_emulator.host, port=omero_emulator.port)
        try:
            with pytest.raises(ValueError, match="client"):
                AsyncGateway.from_client(client)
        finally:
            client.__del__()
