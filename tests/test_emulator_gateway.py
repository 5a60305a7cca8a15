"""BlitzGateway's user, group and data methods, end to end on the emulator."""

from __future__ import annotations

from aiomero.testing import Emulator


class TestPeople:
    def test_get_user_is_the_logged_in_user(self, gateway) -> None:
        """getUser() returns the session's Experimenter."""
        user = gateway("bob", "bob-pw").getUser()
        assert user.getName() == "bob"
        assert user.getFullName() != ""

    def test_groups_member_of_leaves_out_the_user_group(self, gateway) -> None:
        """getGroupsMemberOf() lists the user's groups except 'user'."""
        names = {g.getName() for g in gateway("bob", "bob-pw").getGroupsMemberOf()}
        assert names == {"read-only-lab", "private-lab", "annotate-lab"}

    def test_administrators_are_the_system_group(self, emulator, gateway) -> None:
        """getAdministrators() lists the members of the system group."""
        names = {e.getName() for e in gateway().getAdministrators()}
        expected = {u.name for u in emulator.catalog.users if u.is_admin}
        assert names == expected
        assert {"root", "operator"} <= names


class TestSudo:
    def test_su_conn_opens_a_session_for_another_user(self, emulator, gateway):
        """An admin's suConn(name) returns a gateway logged in as name."""
        root = gateway()
        alice = root.suConn("alice", ttl=120000)
        try:
            ec = alice.getEventContext()
            assert ec.userName == "alice"
            assert ec.sudoerName.val == "root"
            assert alice.getUser().getName() == "alice"
            session = emulator.sessions.get(ec.sessionUuid)
            assert session is not None and session.time_to_live == 120
        finally:
            alice.close()
        assert emulator.session_keys("alice") == []

    def test_su_conn_needs_an_admin(self, gateway) -> None:
        """suConn from a user who is not an admin returns None."""
        assert gateway("bob", "bob-pw").suConn("alice") is None


class TestData:
    def test_list_projects_sees_the_current_group(self, emulator, gateway) -> None:
        """listProjects() returns projects of the session's group only."""
        conn = gateway("bob", "bob-pw")
        group_id = conn.getEventContext().groupId
        projects = list(conn.listProjects())
        assert projects
        assert {p.getDetails().group.id.val for p in projects} == {group_id}

    def test_all_groups_context_sees_every_group(self, gateway) -> None:
        """omero.group -1 queries across all the user's groups."""
        conn = gateway("bob", "bob-pw")
        mine = {p.getId() for p in conn.getObjects("Project")}

        conn.SERVICE_OPTS.setOmeroGroup("-1")
        everywhere = list(conn.getObjects("Project"))
        groups = {p.getDetails().group.id.val for p in everywhere}
        assert mine < {p.getId() for p in everywhere}
        assert len(groups) > 1

    def test_switching_to_an_objects_group(self, gateway) -> None:
        """Found with -1, an object is read in its own group after a switch."""
        conn = gateway("bob", "bob-pw")
        conn.SERVICE_OPTS.setOmeroGroup("-1")
        home = conn.getEventContext().groupId
        elsewhere = next(
            p for p in conn.getObjects("Project") if p.getDetails().group.id.val != home
        )

        conn.SERVICE_OPTS.setOmeroGroup(None)
        assert conn.getObject("Project", elsewhere.getId()) is None
        assert conn.setGroupForSession(elsewhere.getDetails().group.id.val)
        found = conn.getObject("Project", elsewhere.getId())
        assert found is not None and found.getName() == elsewhere.getName()

    def test_children_of_a_project(self, gateway) -> None:
        """listChildren() and countChildren() agree on a project's datasets."""
        conn = gateway("bob", "bob-pw")
        project = conn.getObject("Project", attributes={"name": "bob-shared"})
        names = {d.getName() for d in project.listChildren()}
        assert names == {"ro-ds-1", "ro-ds-2"}
        assert project.countChildren() == 2

    def test_get_object_by_id_returns_that_image(self, gateway) -> None:
        """getObject('Image', id) returns the image getObjects listed."""
        conn = gateway("bob", "bob-pw")
        first = next(iter(conn.getObjects("Image")))
        again = conn.getObject("Image", first.getId())
        assert again.getId() == first.getId()
        assert again.getName() == first.getName()

    def test_counts_of_rows_served_are_counted(self, emulator: Emulator, gateway):
        """Each listing is one findAllByQuery on the emulator."""
        conn = gateway("bob", "bob-pw")
        before = emulator.counters.calls["findAllByQuery"]
        list(conn.listProjects())
        assert emulator.counters.calls["findAllByQuery"] == before + 1
