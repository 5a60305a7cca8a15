"""The unmodified BlitzGateway logs in to the emulator as to a real server.

Each test runs with the emulator's own Glacier2 router and behind Debian's
glacier2router (skipped when that is not installed).
"""

from __future__ import annotations

import socket

import Ice
import omero
import omero.clients
import pytest
from omero.gateway import BlitzGateway

from aiomero.testing import ALL_ADMIN_PRIVILEGES, Emulator


def live_keys(emulator: Emulator, user: str) -> list[str]:
    return emulator.session_keys(user)


class TestLogin:
    def test_connect_then_close_ends_the_session(self, emulator: Emulator) -> None:
        """A plain connect opens one session and close() ends it."""
        conn = emulator.gateway("root", "omero")
        assert conn.connect()
        assert len(live_keys(emulator, "root")) == 1

        conn.close()
        assert live_keys(emulator, "root") == []

    def test_secure_connection_uses_only_ssl(self, emulator, gateway) -> None:
        """With secure=True every call goes through the SSL endpoint."""
        # Counted from here: a previous test's client may still be closing.
        before = emulator.counters.endpoints
        conn = gateway("root", "omero", secure=True)
        conn.getEventContext()

        after = emulator.counters.endpoints
        assert after["ssl"] > before["ssl"]
        assert after["tcp"] == before["tcp"]
        assert conn.isSecure()

    def test_insecure_connect_is_one_ssl_login_and_one_tcp_join(
        self, emulator, gateway
    ) -> None:
        """secure=False logs in over SSL, then joins the session over TCP."""
        conn = gateway("root", "omero", secure=False)
        assert (emulator.counters.logins, emulator.counters.joins) == (1, 1)

        before = emulator.counters.endpoints
        conn.getEventContext()
        after = emulator.counters.endpoints
        assert after["tcp"] > before["tcp"]
        assert after["ssl"] == before["ssl"]

    def test_context_manager_closes_the_session(self, emulator: Emulator) -> None:
        """`with BlitzGateway(...)` connects on entry and closes on exit."""
        with emulator.gateway("alice", "alice-pw") as conn:
            assert conn.getEventContext().userName == "alice"
            assert len(live_keys(emulator, "alice")) == 1
        assert live_keys(emulator, "alice") == []

    def test_gateway_from_an_existing_client(self, emulator: Emulator) -> None:
        """BlitzGateway(client_obj=c) uses the session an omero.client made."""
        client = omero.client(host=emulator.host, port=emulator.port)
        client.createSession("bob", "bob-pw")
        try:
            conn = BlitzGateway(client_obj=client)
            assert conn.isConnected()
            assert conn.getEventContext().userName == "bob"
        finally:
            client.killSession()
        assert live_keys(emulator, "bob") == []

    def test_credentials_from_the_environment(self, emulator, monkeypatch) -> None:
        """The usual pattern of reading host, port and credentials from env."""
        monkeypatch.setenv("OMERO_HOST", emulator.host)
        monkeypatch.setenv("OMERO_PORT", str(emulator.port))
        monkeypatch.setenv("OMERO_USER", "carol")
        monkeypatch.setenv("OMERO_PASSWORD", "carol-pw")

        import os

        conn = BlitzGateway(
            os.environ["OMERO_USER"],
            os.environ["OMERO_PASSWORD"],
            host=os.environ["OMERO_HOST"],
            port=int(os.environ["OMERO_PORT"]),
        )
        try:
            assert conn.connect()
            assert conn.getEventContext().userName == "carol"
        finally:
            conn.close()


class TestRefusals:
    def test_bad_password_makes_connect_return_false(self, emulator) -> None:
        """A wrong password is refused: connect() returns False, no session."""
        conn = emulator.gateway("alice", "wrong")
        assert conn.connect() is False
        assert "Password check failed" in str(conn.getLastError())
        assert live_keys(emulator, "alice") == []
        conn.close()

    def test_inactive_user_cannot_connect(self, emulator) -> None:
        """A user outside the 'user' group is refused with 'inactive'."""
        conn = emulator.gateway("erin", "erin-pw")
        assert conn.connect() is False
        assert "inactive" in str(conn.getLastError())
        conn.close()

    def test_refused_port_makes_connect_raise(self) -> None:
        """Nothing listening: connect() raises instead of returning False."""
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        conn = BlitzGateway("root", "omero", host="127.0.0.1", port=port)
        with pytest.raises(Ice.ConnectionRefusedException):
            conn.connect()
        conn.close()


class TestIdentity:
    def test_admin_flags_follow_the_privileges(self, gateway) -> None:
        """root is a full admin, operator a restricted one, alice neither."""
        root = gateway("root", "omero")
        operator = gateway("operator", "operator-pw")
        alice = gateway("alice", "alice-pw")

        assert (root.isAdmin(), root.isFullAdmin()) == (True, True)
        assert (operator.isAdmin(), operator.isFullAdmin()) == (True, False)
        assert (alice.isAdmin(), alice.isFullAdmin()) == (False, False)
        assert sorted(root.getCurrentAdminPrivileges()) == sorted(ALL_ADMIN_PRIVILEGES)
        assert sorted(operator.getCurrentAdminPrivileges()) == [
            "ModifyUser",
            "ReadSession",
            "Sudo",
        ]

    def test_event_context_describes_the_session(self, emulator, gateway) -> None:
        """The EventContext names the user, group, key and memberships."""
        ec = gateway("bob", "bob-pw").getEventContext()
        bob = emulator.catalog.user_by_name("bob")

        assert (ec.userId, ec.userName) == (bob.id, "bob")
        assert ec.groupId == bob.default_group_id
        assert ec.groupName == "read-only-lab"
        assert ec.sessionUuid in emulator.session_keys("bob")
        assert sorted(ec.memberOfGroups) == sorted(bob.group_ids)
        assert sorted(ec.leaderOfGroups) == sorted(bob.leader_of)
        assert ec.isAdmin is False

    def test_group_from_context_is_the_session_group(self, gateway) -> None:
        """getGroupFromContext() returns the default group after login."""
        group = gateway("alice", "alice-pw").getGroupFromContext()
        assert group.getName() == "private-lab"

    def test_login_into_a_named_group(self, gateway) -> None:
        """BlitzGateway(group=name) starts the session in that group."""
        conn = gateway("bob", "bob-pw", group="annotate-lab")
        assert conn.getEventContext().groupName == "annotate-lab"

    def test_login_into_a_foreign_group_falls_back(self, gateway) -> None:
        """A group the user is not in: the gateway retries without it."""
        conn = gateway("alice", "alice-pw", group="read-write-lab")
        assert conn.getEventContext().groupName == "private-lab"

    def test_list_groups_returns_every_group(self, emulator, gateway) -> None:
        """listGroups() lists the catalog's groups."""
        names = {g.getName() for g in gateway().listGroups()}
        assert names == {g.name for g in emulator.catalog.groups}

    def test_set_group_for_session_switches_the_group(self, emulator, gateway) -> None:
        """setGroupForSession moves the session to another of the user's groups."""
        conn = gateway("bob", "bob-pw")
        target = emulator.catalog.group_by_name("private-lab")

        assert conn.setGroupForSession(target.id) is True
        assert conn.getEventContext().groupId == target.id
        assert conn.getGroupFromContext().getName() == "private-lab"

    def test_set_group_for_session_refuses_foreign_groups(
        self, emulator, gateway
    ) -> None:
        """A group the user is not a member of is not switched to."""
        conn = gateway("alice", "alice-pw")
        foreign = emulator.catalog.group_by_name("read-write-lab")
        assert conn.setGroupForSession(foreign.id) is False
        assert conn.getEventContext().groupName == "private-lab"


class TestSessions:
    def test_is_connected_until_close(self, emulator) -> None:
        """isConnected() is True after connect() and False after close()."""
        conn = emulator.gateway("dave", "dave-pw")
        assert conn.isConnected() is False
        assert conn.connect()
        assert conn.isConnected() is True
        conn.close()
        assert conn.isConnected() is False

    def test_join_by_key_shares_the_session(self, emulator, gateway) -> None:
        """connect(sUuid=key) joins the session and adds a reference."""
        first = gateway("alice", "alice-pw", secure=True)
        key = first.getEventContext().sessionUuid

        second = emulator.gateway()
        assert second.connect(sUuid=key)
        try:
            assert second.getEventContext().sessionUuid == key
            assert emulator.counters.joins == 1
            count = first.getSessionService().getReferenceCount(key)
            assert count == 2
        finally:
            second.close(hard=False)
        assert first.getSessionService().getReferenceCount(key) == 1

    def test_soft_close_leaves_the_session_joinable(self, emulator) -> None:
        """close(hard=False) keeps the session: its key still joins."""
        conn = emulator.gateway("carol", "carol-pw", secure=True)
        assert conn.connect()
        key = conn.getEventContext().sessionUuid
        conn.close(hard=False)
        assert key in emulator.session_keys("carol")

        again = emulator.gateway()
        assert again.connect(sUuid=key)
        assert again.getEventContext().userName == "carol"
        again.close()
        assert emulator.session_keys("carol") == []

    def test_joining_an_ended_session_fails(self, emulator) -> None:
        """A closed session's key no longer joins."""
        conn = emulator.gateway("carol", "carol-pw")
        assert conn.connect()
        key = conn.getEventContext().sessionUuid
        conn.close()

        late = emulator.gateway()
        assert late.connect(sUuid=key) is False
        late.close()

    def test_keep_alive_while_the_session_lives(self, gateway) -> None:
        """keepAlive() is True on a live session."""
        assert gateway().keepAlive() is True
