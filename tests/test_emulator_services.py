"""The emulator's services answer raw omero-py calls as a server would."""

from __future__ import annotations

import Ice
import omero
import omero.model
import omero.sys
import pytest


def test_insecure_router_names_the_tcp_port(emulator, gateway) -> None:
    """omero.router.insecure points at the TCP endpoint, host left to fill."""
    config = gateway().getConfigService()
    value = config.getConfigValue("omero.router.insecure")
    assert value == (
        f"OMERO.Glacier2/router:tcp -p {emulator.insecure_port} -h @omero.host@"
    )
    assert config.getVersion().startswith("5.")
    assert config.getConfigValue("no.such.key") == ""


def test_client_settings_are_the_omero_client_keys(gateway) -> None:
    """getClientSettings() returns omero.client.* values only."""
    settings = gateway().getClientSettings()
    assert settings
    assert all(key.startswith("omero.client.") for key in settings)


def test_unimplemented_operations_say_so(gateway) -> None:
    """An operation the emulator lacks raises ApiUsageException, not a hang."""
    update = gateway().getUpdateService()
    project = omero.model.ProjectI()
    project.setName(omero.rtypes.rstring("p"))
    with pytest.raises(omero.ApiUsageException, match="saveObject"):
        update.saveObject(project)


def test_sessions_for_others_need_sudo(gateway) -> None:
    """createSessionWithTimeout is refused to users without Sudo."""
    principal = omero.sys.Principal()
    principal.name = "bob"
    principal.group = "read-only-lab"
    principal.eventType = "User"
    service = gateway("alice", "alice-pw").getSessionService()
    with pytest.raises(omero.SecurityViolation):
        service.createSessionWithTimeout(principal, 60000)


def test_operator_with_sudo_opens_a_session_for_bob(emulator, gateway) -> None:
    """A restricted admin holding Sudo may open sessions for others."""
    principal = omero.sys.Principal()
    principal.name = "bob"
    principal.group = "annotate-lab"
    principal.eventType = "User"
    service = gateway("operator", "operator-pw").getSessionService()
    session = service.createSessionWithTimeout(principal, 60000)

    key = session.getUuid().val
    assert key in emulator.session_keys("bob")
    assert session.getTimeToLive().val == 60000
    assert service.closeSession(session) == 0
    assert emulator.session_keys("bob") == []


def test_closing_a_closed_session_raises_removed(gateway) -> None:
    """closeSession on an ended session raises RemovedSessionException."""
    conn = gateway("dave", "dave-pw")
    other = gateway("dave", "dave-pw")
    key = other.getEventContext().sessionUuid
    service = conn.getSessionService()
    session = omero.model.SessionI()
    session.uuid = omero.rtypes.rstring(key)

    assert service.closeSession(session) == 0
    with pytest.raises(omero.RemovedSessionException):
        service.closeSession(session)


def test_security_contexts_are_the_users_groups(emulator, gateway) -> None:
    """getSecurityContexts lists the groups the user may switch to."""
    conn = gateway("carol", "carol-pw")
    contexts = conn.c.sf.getSecurityContexts()
    carol = emulator.catalog.user_by_name("carol")
    assert sorted(c.id.val for c in contexts) == sorted(carol.group_ids)


def test_unknown_group_in_the_call_context_is_refused(gateway) -> None:
    """A call in a group the user is not in raises SecurityViolation."""
    conn = gateway("alice", "alice-pw")
    query = conn.c.sf.getQueryService()
    with pytest.raises(omero.SecurityViolation):
        query.findAllByQuery("select p from Project p", None, {"omero.group": "6"})


def test_enumeration_of_admin_privileges(gateway) -> None:
    """ITypes lists every AdminPrivilege; other enumerations are unknown."""
    types = gateway().getTypesService()
    values = {e.getValue().val for e in types.allEnumerations("AdminPrivilege")}
    assert {"Sudo", "ReadSession", "ModifyUser"} <= values
    with pytest.raises(omero.ApiUsageException):
        types.allEnumerations("omero.model.NoSuchThing")


def test_destroyed_service_factory_no_longer_exists(emulator) -> None:
    """After ServiceFactory.destroy() its proxies raise ObjectNotExistException."""
    client = omero.client(host=emulator.host, port=emulator.port)
    try:
        factory = client.createSession("bob", "bob-pw")
        admin = factory.getAdminService()
        factory.detachOnDestroy()
        factory.destroy()

        with pytest.raises(Ice.ObjectNotExistException):
            factory.keepAlive(None)
        with pytest.raises(Ice.ObjectNotExistException):
            admin.getEventContext()
        assert len(emulator.session_keys("bob")) == 1
    finally:
        client.__del__()


def test_service_proxies_belong_to_their_session(gateway) -> None:
    """Two logins get different service identities, each with its own user."""
    alice = gateway("alice", "alice-pw").c.sf.getAdminService()
    bob = gateway("bob", "bob-pw").c.sf.getAdminService()
    assert alice.ice_getIdentity() != bob.ice_getIdentity()
    assert alice.getEventContext().userName == "alice"
    assert bob.getEventContext().userName == "bob"
