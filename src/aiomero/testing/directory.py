"""The users and groups of an emulated server, and the ids it hands out.

:class:`Directory` is the part of a :class:`~aiomero.testing.catalog.Catalog`
that knows people: it starts with what every OMERO server has (groups
``system``, ``user`` and ``guest``, users ``root`` and ``guest``), adds
users and groups, records memberships (GroupExperimenterMap rows) and builds
their omero.model objects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiomero.testing.objects import Membership, ModelFactory
from aiomero.testing.people import (
    ALL_ADMIN_PRIVILEGES,
    PERMISSION_LEVELS,
    PRIVATE,
    READ_ONLY,
    ROOT_ID,
    SYSTEM_GROUP_ID,
    USER_GROUP_ID,
    Caller,
    Group,
    User,
)

__all__ = ["Directory"]

# kinds whose first id is 0, as root and the system group are on a server
_ZERO_BASED = frozenset({"Experimenter", "ExperimenterGroup"})


class Directory:
    """Users, groups, memberships and id allocation.

    Lookups of unknown ids raise KeyError.
    """

    def __init__(self) -> None:
        self._groups: dict[int, Group] = {}
        self._users: dict[int, User] = {}
        self._memberships: list[Membership] = []
        self._next_id: dict[str, int] = {}
        self._event = 0

        self.add_group("system", READ_ONLY, description="administrators")
        self.add_group("user", READ_ONLY, description="active users")
        self.add_group("guest", PRIVATE, description="the guest account")
        self.add_user(
            "root",
            "omero",
            groups=["system"],
            admin=True,
            first_name="root",
            last_name="root",
        )
        self.add_user(
            "guest",
            "guest",
            groups=["guest"],
            active=False,
            first_name="Guest",
            last_name="Account",
        )

    # -- ids and events ----------------------------------------------------

    def allocate(self, kind: str, count: int = 1) -> int:
        """Reserve ``count`` consecutive ids of ``kind``; return the first."""
        first = self._next_id.get(kind, 1 if kind not in _ZERO_BASED else 0)
        self._next_id[kind] = first + count
        return first

    @property
    def last_event(self) -> int:
        """The id of the last event handed out."""
        return self._event

    def allocate_events(self, count: int = 1) -> int:
        """Reserve ``count`` consecutive event ids; return the first."""
        self._event += count
        return self._event - count + 1

    # -- users and groups --------------------------------------------------

    def add_group(
        self, name: str, permissions: str = READ_ONLY, *, description: str = ""
    ) -> Group:
        """Add a group; raise ValueError for a taken name or bad permissions."""
        if permissions not in PERMISSION_LEVELS:
            raise ValueError(f"unknown permissions {permissions!r}")
        if self.group_by_name(name) is not None:
            raise ValueError(f"group {name!r} exists")
        group = Group(
            self.allocate("ExperimenterGroup"), name, permissions, description
        )
        self._groups[group.id] = group
        return group

    def add_user(
        self,
        name: str,
        password: str,
        *,
        groups: Iterable[Group | str] = (),
        leader_of: Iterable[Group | str] = (),
        admin: bool = False,
        privileges: Iterable[str] | None = None,
        active: bool = True,
        first_name: str | None = None,
        last_name: str = "Tester",
        email: str | None = None,
    ) -> User:
        """Add a user in ``groups``, the first of which is its default group.

        An admin joins ``system`` and gets every privilege unless
        ``privileges`` names some; an active user joins ``user``. Leading a
        group makes the user a member too. Raises ValueError for a taken
        name, an unknown group or an unknown privilege.
        """
        if self.user_by_name(name) is not None:
            raise ValueError(f"user {name!r} exists")
        member = [self._group_of(g).id for g in groups]
        leads = {self._group_of(g).id for g in leader_of}
        member += sorted(leads - set(member))
        if admin and SYSTEM_GROUP_ID not in member:
            member.append(SYSTEM_GROUP_ID)
        if active and USER_GROUP_ID not in member:
            member.append(USER_GROUP_ID)
        if not member:
            raise ValueError(f"user {name!r} needs a group")
        granted = frozenset(ALL_ADMIN_PRIVILEGES if privileges is None else privileges)
        if not granted <= set(ALL_ADMIN_PRIVILEGES):
            raise ValueError(f"unknown privileges {sorted(granted)}")

        user = User(
            id=self.allocate("Experimenter"),
            name=name,
            password=password,
            first_name=first_name if first_name is not None else name.capitalize(),
            last_name=last_name,
            email=email if email is not None else f"{name}@example.org",
            active=active,
            privileges=granted if admin else frozenset(),
            default_group_id=member[0],
            group_ids=member,
            leader_of=leads,
        )
        self._users[user.id] = user
        for group_id in member:
            self._memberships.append(
                Membership(
                    self.allocate("GroupExperimenterMap"),
                    group_id,
                    user.id,
                    group_id in leads,
                )
            )
        return user

    @property
    def users(self) -> list[User]:
        """Every user, by id."""
        return list(self._users.values())

    @property
    def groups(self) -> list[Group]:
        """Every group, by id."""
        return list(self._groups.values())

    def user(self, id: int) -> User:
        """Return the user ``id``; raise KeyError if there is none."""
        return self._users[id]

    def group(self, id: int) -> Group:
        """Return the group ``id``; raise KeyError if there is none."""
        return self._groups[id]

    def user_by_name(self, name: str) -> User | None:
        """Return the user whose omeName is ``name``, or None."""
        return next((u for u in self._users.values() if u.name == name), None)

    def group_by_name(self, name: str) -> Group | None:
        """Return the group called ``name``, or None."""
        return next((g for g in self._groups.values() if g.name == name), None)

    def memberships_of_user(self, user_id: int) -> list[Membership]:
        """Return the user's GroupExperimenterMap rows, default group first."""
        return [m for m in self._memberships if m.child_id == user_id]

    def memberships_of_group(self, group_id: int) -> list[Membership]:
        """Return the group's GroupExperimenterMap rows, by id."""
        return [m for m in self._memberships if m.parent_id == group_id]

    @property
    def memberships(self) -> list[Membership]:
        """Every GroupExperimenterMap row, by id."""
        return list(self._memberships)

    def experimenter(self, user_id: int) -> Any:
        """Return user ``user_id`` as a loaded ExperimenterI.

        Its groupExperimenterMap is loaded: one map per group, default group
        first, with ``owner`` set for groups the user leads and the group
        loaded with its name and permissions. Raises KeyError for an unknown
        id.
        """
        user = self.user(user_id)
        return ModelFactory(self, Caller(user, -1)).experimenter_with_groups(user)

    def experimenter_group(self, group_id: int) -> Any:
        """Return group ``group_id`` as a loaded ExperimenterGroupI.

        Its details carry its permissions and its groupExperimenterMap lists
        its members, each a loaded ExperimenterI. Raises KeyError for an
        unknown id.
        """
        group = self.group(group_id)
        root = self.user(ROOT_ID)
        return ModelFactory(self, Caller(root, -1)).group_with_members(group)

    def _group_of(self, group: Group | str) -> Group:
        found = self.group_by_name(group) if isinstance(group, str) else group
        if found is None or self._groups.get(found.id) is not found:
            raise ValueError(f"unknown group {group!r}")
        return found

    def _user_of(self, user: User | str) -> User:
        found = self.user_by_name(user) if isinstance(user, str) else user
        if found is None or self._users.get(found.id) is not found:
            raise ValueError(f"unknown user {user!r}")
        return found
