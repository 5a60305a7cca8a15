"""AsyncGateway's life cycle and BlitzGateway's session API, on the emulator."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

from aiomero import GatewayClosedError, PermissionDeniedError
from aiomero.gateway import AsyncGateway
from aiomero.models import ExperimenterInfo, GroupInfo, ObjectInfo
from aiomero.testing import Emulator
from gateway_helpers import gateway_for, os_threads, settle_threads


def session_threads() -> list[str]:
    """Names of the gateways' worker threads alive now."""
    return [t.name for t in threading.enumerate() if t.name.startswith("aiomero-")]


class TestLifeCycle:
    async def test_connect_starts_one_thread_and_close_stops_it(
        self, omero_emulator: Emulator
    ) -> None:
        """A connect starts one worker thread; close stops it and Ice's threads."""
        before, workers = os_threads(), len(session_threads())
        gateway = gateway_for(omero_emulator, "bob")
        assert len(session_threads()) == workers

        await gateway.connect()
        assert len(session_threads()) == workers + 1
        assert os_threads() > before

        await gateway.close()
        assert len(session_threads()) == workers
        assert await settle_threads(before) <= before

    async def test_is_connected_follows_connect_and_close(
        self, omero_emulator: Emulator
    ) -> None:
        """isConnected() is a plain method: False, True after connect, False."""
        gateway = gateway_for(omero_emulator, "bob")
        assert gateway.isConnected() is False
        assert await gateway.connect() is True
        assert gateway.isConnected() is True
        await gateway.close()
        assert gateway.isConnected() is False

    async def test_async_with_connects_and_closes(
        self, omero_emulator: Emulator
    ) -> None:
        """``async with`` yields a connected gateway and ends its session."""
        async with gateway_for(omero_emulator, "bob") as gateway:
            assert gateway.isConnected()
            assert len(omero_emulator.session_keys("bob")) == 1
        assert not gateway.isConnected()
        assert omero_emulator.session_keys("bob") == []

    async def test_close_is_idempotent(self, omero_emulator: Emulator) -> None:
        """A second close, or a close of a gateway never connected, is a no-op."""
        await gateway_for(omero_emulator, "bob").close()
        gateway = gateway_for(omero_emulator, "bob")
        await gateway.connect()
        await gateway.close()
        await gateway.close()
        assert not gateway.isConnected()

    async def test_close_kills_a_session_it_created(
        self, omero_emulator: Emulator
    ) -> None:
        """Closing a gateway that logged in ends the session on the server."""
        gateway = gateway_for(omero_emulator, "bob")
        await gateway.connect()
        assert len(omero_emulator.session_keys("bob")) == 1
        await gateway.close()
        assert omero_emulator.session_keys("bob") == []

    async def test_connect_after_close_logs_in_again(
        self, omero_emulator: Emulator
    ) -> None:
        """A closed gateway connects again, with a new session."""
        gateway = gateway_for(omero_emulator, "bob")
        await gateway.connect()
        first = gateway.session_fingerprint
        await gateway.close()

        await gateway.connect()
        try:
            assert gateway.isConnected()
            assert (await gateway.getUser()).omeName == "bob"
            assert gateway.session_fingerprint != first
            assert omero_emulator.counters.logins == 2
        finally:
            await gateway.close()

    async def test_calls_before_connect_or_after_close_are_refused(
        self, omero_emulator: Emulator
    ) -> None:
        """A gateway that is not connected raises GatewayClosedError."""
        gateway = gateway_for(omero_emulator, "bob")
        with pytest.raises(GatewayClosedError):
            await gateway.getUser()
        await gateway.connect()
        await gateway.close()
        with pytest.raises(GatewayClosedError):
            await gateway.listProjects()

    async def test_a_collected_connected_gateway_warns_and_frees_resources(
        self, omero_emulator: Emulator
    ) -> None:
        """Garbage-collected while connected: ResourceWarning, threads freed."""
        before, workers = os_threads(), len(session_threads())
        gateway = gateway_for(omero_emulator, "bob")
        await gateway.connect()
        assert os_threads() > before

        with pytest.warns(ResourceWarning, match="not closed"):
            del gateway
            gc.collect()
        assert await settle_threads(before) <= before
        assert len(session_threads()) == workers

    def test_a_gateway_used_from_another_event_loop_says_so(
        self, omero_emulator: Emulator
    ) -> None:
        """A call from a loop other than the one it connected on is refused."""
        gateway = gateway_for(omero_emulator, "bob")
        home, other = asyncio.new_event_loop(), asyncio.new_event_loop()
        try:
            home.run_until_complete(gateway.connect())
            with pytest.raises(RuntimeError, match="another one"):
                other.run_until_complete(gateway.getUser())
            user = home.run_until_complete(gateway.getUser())
            assert user.omeName == "bob"
        finally:
            home.run_until_complete(gateway.close())
            home.close()
            other.close()

    async def test_repr_names_user_server_and_state(
        self, omero_emulator: Emulator
    ) -> None:
        """The repr says who, where and whether connected, never the password."""
        gateway = gateway_for(omero_emulator, "bob")
        assert "bob@127.0.0.1" in repr(gateway)
        assert "not connected" in repr(gateway)
        async with gateway:
            assert " connected" in repr(gateway)
            assert str(gateway.session_fingerprint) in repr(gateway)
            assert "bob-pw" not in repr(gateway)


class TestPeople:
    async def test_get_user_is_the_logged_in_user(self, async_gateway) -> None:
        """getUser() returns the session's user as plain data."""
        user = await (await async_gateway("bob")).getUser()
        assert isinstance(user, ExperimenterInfo)
        assert (user.omeName, user.getFullName()) == ("bob", "Bob Tester")

    @pytest.mark.parametrize(
        ("user", "admin", "full"),
        [("root", True, True), ("operator", True, False), ("bob", False, False)],
    )
    async def test_admin_flags(self, async_gateway, user, admin, full) -> None:
        """isAdmin() is any administrator, isFullAdmin() one with every right."""
        gateway = await async_gateway(user)
        assert await gateway.isAdmin() is admin
        assert await gateway.isFullAdmin() is full

    async def test_current_admin_privileges(self, async_gateway) -> None:
        """getCurrentAdminPrivileges() names the privileges held now."""
        operator = await async_gateway("operator")
        assert set(await operator.getCurrentAdminPrivileges()) == {
            "ModifyUser",
            "ReadSession",
            "Sudo",
        }
        root = await async_gateway("root")
        assert {"Sudo", "ModifyUser", "WriteOwned"} <= set(
            await root.getCurrentAdminPrivileges()
        )
        assert await (await async_gateway("bob")).getCurrentAdminPrivileges() == []

    async def test_group_from_context_is_the_session_group(self, async_gateway) -> None:
        """getGroupFromContext() is the user's default group after login."""
        group = await (await async_gateway("bob")).getGroupFromContext()
        assert isinstance(group, GroupInfo)
        assert (group.name, group.permissions) == ("read-only-lab", "rwr---")

    async def test_groups_member_of_leaves_out_system_groups(
        self, async_gateway
    ) -> None:
        """getGroupsMemberOf() lists the user's groups except 'user'."""
        groups = await (await async_gateway("bob")).getGroupsMemberOf()
        assert {g.name for g in groups} == {
            "read-only-lab",
            "private-lab",
            "annotate-lab",
        }

    async def test_administrators_are_the_system_group(self, async_gateway) -> None:
        """getAdministrators() lists the members of the system group."""
        admins = await (await async_gateway("bob")).getAdministrators()
        assert {e.omeName for e in admins} == {"root", "operator"}


class TestData:
    async def test_get_objects_lists_the_groups_projects(self, async_gateway) -> None:
        """getObjects('Project') returns the session group's projects."""
        projects = await (await async_gateway("bob")).getObjects("Project")
        assert all(isinstance(p, ObjectInfo) for p in projects)
        assert {p.name for p in projects} == {"bob-shared", "alice-shared"}
        assert {p.group_id for p in projects} == {4}

    async def test_get_objects_by_ids_keeps_their_order(self, async_gateway) -> None:
        """ids select objects; respect_order returns them in the ids' order."""
        gateway = await async_gateway("bob")
        ids = sorted(p.id for p in await gateway.getObjects("Project"))
        chosen = await gateway.getObjects("Project", ids[::-1], respect_order=True)
        assert [p.id for p in chosen] == ids[::-1]

    async def test_get_object_finds_one_or_none(self, async_gateway) -> None:
        """getObject(type, id) returns that object, or None for an unknown id."""
        gateway = await async_gateway("bob")
        [shared] = [p for p in await gateway.listProjects() if p.name == "bob-shared"]
        found = await gateway.getObject("Project", shared.id)
        assert (found.id, found.name) == (shared.id, "bob-shared")
        assert found.owner_name == "bob"
        assert await gateway.getObject("Project", 999_999) is None

    async def test_list_projects_of_one_owner(self, async_gateway) -> None:
        """listProjects(eid) keeps the projects that user owns."""
        gateway = await async_gateway("bob")
        bob = await gateway.getUser()
        assert {p.name for p in await gateway.listProjects(bob.id)} == {"bob-shared"}

    async def test_iter_objects_pages_through_every_object(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """iter_objects yields each object once, page_size rows per query."""
        gateway = await async_gateway("bob")
        expected = sorted(p.id for p in await gateway.getObjects("Image", group=-1))
        assert len(expected) == 12
        before = omero_emulator.counters.calls["findAllByQuery"]

        pages = gateway.iter_objects("Image", page_size=5, group=-1)
        seen = [image.id async for image in pages]
        assert sorted(seen) == expected
        assert omero_emulator.counters.calls["findAllByQuery"] - before == 3

    async def test_iter_objects_checks_its_arguments_at_once(
        self, async_gateway
    ) -> None:
        """Bad paging arguments fail on the call, before any iteration."""
        gateway = await async_gateway("bob")
        with pytest.raises(ValueError, match="page_size"):
            gateway.iter_objects("Image", page_size=0)
        with pytest.raises(ValueError, match="limit"):
            gateway.iter_objects("Image", opts={"limit": 3})

    async def test_projection_returns_plain_rows(self, async_gateway) -> None:
        """projection() runs HQL and returns rows of Python values."""
        gateway = await async_gateway("bob")
        rows = await gateway.projection(
            "select p.id, p.name from Project p order by p.name"
        )
        assert [name for _, name in rows] == ["alice-shared", "bob-shared"]
        assert all(isinstance(pid, int) for pid, _ in rows)

    async def test_keep_alive_reaches_the_server(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """keepAlive() returns True after a keep-alive call to the server."""
        gateway = await async_gateway("bob")
        before = omero_emulator.counters.calls["keepAlive"]
        assert await gateway.keepAlive() is True
        assert omero_emulator.counters.calls["keepAlive"] > before

    async def test_ping_measures_a_round_trip(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """ping() asks the server and returns the round trip in seconds."""
        gateway = await async_gateway("bob")
        omero_emulator.faults.set_latency(0.2, op="keepAlive")
        assert 0.15 <= await gateway.ping() < 5

    async def test_run_calls_a_function_on_the_worker_thread(
        self, async_gateway
    ) -> None:
        """run(fn, ...) passes the BlitzGateway and returns fn's result."""
        gateway = await async_gateway("bob")

        def who(conn, prefix, *, suffix):
            name = threading.current_thread().name
            return prefix + conn.getEventContext().userName + suffix, name

        text, thread = await gateway.run(who, "<", suffix=">")
        assert text == "<bob>"
        assert thread.startswith("aiomero-session-")

    async def test_run_lets_other_exceptions_through(self, async_gateway) -> None:
        """An exception of fn's own that is not about the server passes as is."""
        gateway = await async_gateway("bob")

        def broken(conn):
            raise KeyError("mine")

        with pytest.raises(KeyError, match="mine"):
            await gateway.run(broken)
        assert (await gateway.getUser()).omeName == "bob"


class TestSudo:
    async def test_su_conn_returns_a_gateway_of_the_other_user(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """suConn(name) from an admin is a connected gateway of that user."""
        root = await async_gateway("root")
        alice = await root.suConn("alice")
        try:
            assert isinstance(alice, AsyncGateway)
            assert (await alice.getUser()).omeName == "alice"
            assert len(omero_emulator.session_keys("alice")) == 1
        finally:
            await alice.close()
        assert omero_emulator.session_keys("alice") == []
        assert (await root.getUser()).omeName == "root"

    async def test_su_conn_of_a_plain_tcp_session_joins_on_tcp_at_once(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """With secure=False the new session is joined on the plain endpoint
        the administrator's calls already use: one join, nothing on SSL."""
        root = await async_gateway("root")
        counters = omero_emulator.counters
        ssl_calls, joins = counters.endpoints["ssl"], counters.joins
        alice = await root.suConn("alice")
        try:
            assert not (await alice.session_info()).secure
            assert counters.joins == joins + 1
            assert counters.endpoints["ssl"] == ssl_calls
        finally:
            await alice.close()

    async def test_su_conn_needs_an_administrator(self, async_gateway) -> None:
        """suConn from a user who is not an admin raises PermissionDeniedError."""
        bob = await async_gateway("bob")
        with pytest.raises(PermissionDeniedError, match="not an administrator"):
            await bob.suConn("alice")


class TestArguments:
    async def test_unknown_option_is_a_value_error_before_any_call(
        self, omero_emulator: Emulator, async_gateway
    ) -> None:
        """An unknown opts key raises ValueError naming it; nothing is sent."""
        gateway = await async_gateway("bob")
        before = omero_emulator.counters.calls["findAllByQuery"]
        with pytest.raises(ValueError, match="'bogus'"):
            await gateway.getObjects("Project", opts={"bogus": 1})
        with pytest.raises(TypeError, match="'limit'"):
            await gateway.getObjects("Project", opts={"limit": "3"})
        with pytest.raises(TypeError, match="'orphaned'"):
            await gateway.getObject("Dataset", opts={"orphaned": 1})
        with pytest.raises(ValueError, match="'Projekt'"):
            await gateway.getObjects("Projekt")
        assert omero_emulator.counters.calls["findAllByQuery"] == before

    @pytest.mark.parametrize(
        ("options", "error", "field"),
        [
            ({"port": "4064"}, TypeError, "port"),
            ({"port": 0}, ValueError, "port"),
            ({"host": ""}, ValueError, "host"),
            ({"secure": "yes"}, TypeError, "secure"),
            ({"group": 1.5}, TypeError, "group"),
            ({"timeout": -1}, ValueError, "timeout"),
            ({"connect_timeout": None}, TypeError, "connect_timeout"),
            ({"useragent": 3}, TypeError, "useragent"),
        ],
    )
    def test_bad_constructor_arguments_name_the_field(
        self, options, error, field
    ) -> None:
        """A wrong type is a TypeError, a wrong value a ValueError, by name."""
        with pytest.raises(error, match=field):
            AsyncGateway("bob", "bob-pw", **options)

    def test_credentials_are_required_without_a_session_key(self) -> None:
        """No user name or password (and no key) is a ValueError naming it."""
        with pytest.raises(ValueError, match="username"):
            AsyncGateway(passwd="x")
        with pytest.raises(ValueError, match="password"):
            AsyncGateway("bob")
