"""IAdmin and ITypes: who the caller is, users, groups and privileges."""

from __future__ import annotations

from typing import Any

import omero
import omero.api
import omero.clients
import omero.model
import omero.sys
from omero.rtypes import rlong, rstring

from aiomero.testing.catalog import (
    ALL_ADMIN_PRIVILEGES,
    GUEST_GROUP_ID,
    GUEST_ID,
    ROOT_ID,
    SYSTEM_GROUP_ID,
    USER_GROUP_ID,
    Catalog,
    User,
)
from aiomero.testing.dispatch import Call, SessionServant, remote, servant

__all__ = ["AdminServant", "TypesServant", "event_context"]


def event_context(call: Call) -> Any:
    """The EventContext of the calling session, every field typed as Ice wants.

    Raises ``omero.SecurityViolation`` when the session's group is one the
    user does not belong to (a login that asked for a foreign group).
    """
    catalog = call.runtime.catalog
    session = call.session
    user = catalog.user(session.user_id)
    if session.group_id not in user.group_ids and not user.is_admin:
        raise omero.SecurityViolation(
            message=f"user {user.id} is not a member of group {session.group_id}"
        )
    group = catalog.group(session.group_id)

    ec = omero.sys.EventContext()
    ec.shareId = -1
    ec.sessionId = session.id
    ec.sessionUuid = session.uuid
    ec.userId = user.id
    ec.userName = user.name
    if session.sudoer_id is not None:
        sudoer = catalog.user(session.sudoer_id)
        ec.sudoerId = rlong(sudoer.id)
        ec.sudoerName = rstring(sudoer.name)
    ec.groupId = group.id
    ec.groupName = group.name
    ec.isAdmin = user.is_admin
    ec.adminPrivileges = sorted(user.privileges)
    ec.eventId = -1
    ec.eventType = "User"
    ec.memberOfGroups = list(user.group_ids)
    ec.leaderOfGroups = sorted(user.leader_of)
    ec.groupPermissions = omero.model.PermissionsI(group.permissions)
    return ec


def privilege_objects(names: Any) -> list[Any]:
    """AdminPrivilegeI objects for privilege ``names``, ids as a server has."""
    found = []
    for number, name in enumerate(ALL_ADMIN_PRIVILEGES, start=1):
        if name in names:
            privilege = omero.model.AdminPrivilegeI(number, True)
            privilege.setValue(rstring(name))
            found.append(privilege)
    return found


def _user(catalog: Catalog, user_id: int) -> User:
    try:
        return catalog.user(user_id)
    except KeyError:
        raise omero.ApiUsageException(message=f"no experimenter {user_id}") from None


def _group_obj(catalog: Catalog, group_id: int) -> Any:
    try:
        return catalog.experimenter_group(group_id)
    except KeyError:
        raise omero.ApiUsageException(message=f"no group {group_id}") from None


def _id_of(obj: Any) -> int:
    if obj is None or obj.id is None:
        raise omero.ApiUsageException(message="an object with an id is needed")
    return int(obj.id.val)


@servant(omero.api.IAdmin)
class AdminServant(SessionServant, omero.api.IAdmin):  # type: ignore[misc]
    """The read side of IAdmin, enough for BlitzGateway's connection methods."""

    @remote
    def getEventContext(self, call: Call) -> Any:
        return event_context(call)

    @remote
    def getSecurityRoles(self, call: Call) -> Any:
        catalog = call.runtime.catalog
        return omero.sys.Roles(
            rootId=ROOT_ID,
            rootName=catalog.user(ROOT_ID).name,
            systemGroupId=SYSTEM_GROUP_ID,
            systemGroupName=catalog.group(SYSTEM_GROUP_ID).name,
            userGroupId=USER_GROUP_ID,
            userGroupName=catalog.group(USER_GROUP_ID).name,
            guestId=GUEST_ID,
            guestName=catalog.user(GUEST_ID).name,
            guestGroupId=GUEST_GROUP_ID,
            guestGroupName=catalog.group(GUEST_GROUP_ID).name,
        )

    # -- experimenters -----------------------------------------------------------

    @remote
    def getExperimenter(self, call: Call, user_id: int) -> Any:
        catalog = call.runtime.catalog
        return catalog.experimenter(_user(catalog, user_id).id)

    @remote
    def lookupExperimenter(self, call: Call, name: str) -> Any:
        catalog = call.runtime.catalog
        user = catalog.user_by_name(name)
        if user is None:
            raise omero.ApiUsageException(message=f"no experimenter {name!r}")
        return catalog.experimenter(user.id)

    @remote
    def lookupExperimenters(self, call: Call) -> list[Any]:
        catalog = call.runtime.catalog
        return [catalog.experimenter(u.id) for u in catalog.users]

    @remote
    def containedExperimenters(self, call: Call, group_id: int) -> list[Any]:
        catalog = call.runtime.catalog
        _group_obj(catalog, group_id)
        return [
            catalog.experimenter(u.id) for u in catalog.users if group_id in u.group_ids
        ]

    @remote
    def getCurrentAdminPrivileges(self, call: Call) -> list[Any]:
        return privilege_objects(call.user.privileges)

    @remote
    def getAdminPrivileges(self, call: Call, experimenter: Any) -> list[Any]:
        user = _user(call.runtime.catalog, _id_of(experimenter))
        return privilege_objects(user.privileges)

    @remote
    def getAdminsWithPrivileges(self, call: Call, privileges: Any) -> list[Any]:
        catalog = call.runtime.catalog
        wanted = {p.getValue().val for p in privileges}
        return [
            catalog.experimenter(u.id)
            for u in catalog.users
            if u.is_admin and wanted <= u.privileges
        ]

    # -- groups --------------------------------------------------------------------

    @remote
    def getGroup(self, call: Call, group_id: int) -> Any:
        return _group_obj(call.runtime.catalog, group_id)

    @remote
    def lookupGroup(self, call: Call, name: str) -> Any:
        catalog = call.runtime.catalog
        group = catalog.group_by_name(name)
        if group is None:
            raise omero.ApiUsageException(message=f"no group {name!r}")
        return catalog.experimenter_group(group.id)

    @remote
    def lookupGroups(self, call: Call) -> list[Any]:
        catalog = call.runtime.catalog
        return [catalog.experimenter_group(g.id) for g in catalog.groups]

    @remote
    def containedGroups(self, call: Call, user_id: int) -> list[Any]:
        catalog = call.runtime.catalog
        user = _user(catalog, user_id)
        return [catalog.experimenter_group(gid) for gid in user.group_ids]

    @remote
    def getDefaultGroup(self, call: Call, user_id: int) -> Any:
        catalog = call.runtime.catalog
        return catalog.experimenter_group(_user(catalog, user_id).default_group_id)

    @remote
    def getMemberOfGroupIds(self, call: Call, experimenter: Any) -> list[int]:
        who = call.user if experimenter is None else None
        user = who or _user(call.runtime.catalog, _id_of(experimenter))
        return list(user.group_ids)

    @remote
    def getLeaderOfGroupIds(self, call: Call, experimenter: Any) -> list[int]:
        who = call.user if experimenter is None else None
        user = who or _user(call.runtime.catalog, _id_of(experimenter))
        return sorted(user.leader_of)


def _enum_name(name: str) -> str:
    short = name.rsplit(".", 1)[-1]
    return short[:-1] if short.endswith("PrivilegeI") else short


@servant(omero.api.ITypes)
class TypesServant(SessionServant, omero.api.ITypes):  # type: ignore[misc]
    """Enumerations; the emulator knows only AdminPrivilege."""

    @remote
    def allEnumerations(self, call: Call, name: str) -> list[Any]:
        if _enum_name(name) != "AdminPrivilege":
            raise omero.ApiUsageException(message=f"no enumeration {name!r}")
        return privilege_objects(ALL_ADMIN_PRIVILEGES)

    @remote
    def getEnumeration(self, call: Call, name: str, value: str) -> Any:
        if _enum_name(name) != "AdminPrivilege" or value not in ALL_ADMIN_PRIVILEGES:
            raise omero.ApiUsageException(message=f"no enumeration {name}:{value}")
        return privilege_objects({value})[0]

    @remote
    def getEnumerationTypes(self, call: Call) -> list[str]:
        return ["omero.model.AdminPrivilege"]
