"""Users, groups and the caller of a query, as an emulated server knows them."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ALL_ADMIN_PRIVILEGES",
    "GUEST_GROUP_ID",
    "GUEST_ID",
    "PERMISSION_LEVELS",
    "PRIVATE",
    "READ_ANNOTATE",
    "READ_ONLY",
    "READ_WRITE",
    "ROOT_ID",
    "SYSTEM_GROUP_ID",
    "USER_GROUP_ID",
    "Caller",
    "Group",
    "User",
]

PRIVATE, READ_ONLY, READ_ANNOTATE, READ_WRITE = "rw----", "rwr---", "rwra--", "rwrw--"

#: The admin privileges of OMERO 5.4 and later; a full admin has them all.
ALL_ADMIN_PRIVILEGES: tuple[str, ...] = (
    "Chgrp",
    "Chown",
    "DeleteFile",
    "DeleteManagedRepo",
    "DeleteOwned",
    "DeleteScriptRepo",
    "ModifyGroup",
    "ModifyGroupMembership",
    "ModifyUser",
    "ReadSession",
    "Sudo",
    "WriteFile",
    "WriteManagedRepo",
    "WriteOwned",
    "WriteScriptRepo",
)

SYSTEM_GROUP_ID = 0
USER_GROUP_ID = 1
GUEST_GROUP_ID = 2
ROOT_ID = 0
GUEST_ID = 1

#: The group permission strings, from most to least private.
PERMISSION_LEVELS = (PRIVATE, READ_ONLY, READ_ANNOTATE, READ_WRITE)


@dataclass
class Group:
    """An ExperimenterGroup: its id, name and permission string."""

    id: int
    name: str
    permissions: str
    description: str = ""


@dataclass
class User:
    """An Experimenter, its password and its memberships.

    ``group_ids`` lists every group the user belongs to, default group first,
    including ``system`` for admins and ``user`` for active users, as a real
    server records them. ``privileges`` holds admin privilege names and is
    empty for anyone outside ``system``.
    """

    id: int
    name: str
    password: str = field(repr=False)
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    active: bool = True
    privileges: frozenset[str] = frozenset()
    default_group_id: int = USER_GROUP_ID
    group_ids: list[int] = field(default_factory=list)
    leader_of: set[int] = field(default_factory=set)

    @property
    def is_admin(self) -> bool:
        """Whether the user belongs to the ``system`` group."""
        return SYSTEM_GROUP_ID in self.group_ids


@dataclass(frozen=True)
class Caller:
    """Who asks, and in which group: -1 means every group of the user."""

    user: User
    group_id: int
