"""Plain data handed back by aiomero's gateways.

BlitzGateway's wrappers fetch missing fields from the server when an
attribute is read, which would block the event loop. aiomero hands back frozen
dataclasses instead: everything in them was read on the session's thread, and
reading them never reaches the server. ``raw`` keeps the ``omero.model``
object the row came from; model objects are plain data too (their unloaded
links stay unloaded, nothing is fetched on access).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

__all__ = [
    "ExperimenterInfo",
    "GroupInfo",
    "ObjectInfo",
    "SessionInfo",
    "to_info",
]


def _val(rtype: Any) -> Any:
    """The Python value of an ``omero.RType``, or None."""
    if rtype is None:
        return None
    return getattr(rtype, "_val", rtype)


def _loaded(obj: Any) -> bool:
    return obj is not None and bool(getattr(obj, "_loaded", False))


def _permissions(details: Any) -> str | None:
    perms = getattr(details, "_permissions", None) if details is not None else None
    if perms is None:
        return None
    return str(perms.__str__()) if hasattr(perms, "__str__") else None


@dataclasses.dataclass(frozen=True)
class GroupInfo:
    """An experimenter group: id, name, permission string such as ``rwr---``."""

    id: int
    name: str | None
    permissions: str | None = None
    description: str | None = None
    raw: Any = dataclasses.field(default=None, repr=False, compare=False)

    def getId(self) -> int:
        return self.id

    def getName(self) -> str | None:
        return self.name


@dataclasses.dataclass(frozen=True)
class ExperimenterInfo:
    """A user of the server. ``omeName`` is the login name."""

    id: int
    omeName: str | None
    firstName: str | None = None
    lastName: str | None = None
    email: str | None = None
    raw: Any = dataclasses.field(default=None, repr=False, compare=False)

    def getId(self) -> int:
        return self.id

    def getName(self) -> str | None:
        return self.omeName

    def getOmeName(self) -> str | None:
        return self.omeName

    def getFullName(self) -> str:
        return " ".join(part for part in (self.firstName, self.lastName) if part)


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    """A model object (Project, Dataset, Image, Screen, Plate, Well, ...).

    ``owner_name`` and ``created`` are None where the server did not load them.
    """

    type: str
    id: int
    name: str | None
    description: str | None = None
    owner_id: int | None = None
    owner_name: str | None = None
    group_id: int | None = None
    permissions: str | None = None
    created: datetime.datetime | None = None
    raw: Any = dataclasses.field(default=None, repr=False, compare=False)

    def getId(self) -> int:
        return self.id

    def getName(self) -> str | None:
        return self.name

    def getDescription(self) -> str | None:
        return self.description


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """What a connected gateway knows about its session.

    ``session`` is a fingerprint of the session key, never the key itself.
    """

    session: str | None
    user_id: int
    user_name: str
    group_id: int
    group_name: str | None
    member_of: tuple[int, ...]
    leader_of: tuple[int, ...]
    is_admin: bool
    host: str
    port: int
    secure: bool
    joined: bool


def _type_name(obj: Any) -> str:
    name = type(obj).__name__
    return name[:-1] if name.endswith("I") else name


def to_info(obj: Any) -> Any:
    """Convert an ``omero.model`` object into the matching plain dataclass."""
    if obj is None:
        return None
    kind = _type_name(obj)
    oid = int(_val(obj._id))
    if kind == "Experimenter":
        return ExperimenterInfo(
            id=oid,
            omeName=_val(getattr(obj, "_omeName", None)),
            firstName=_val(getattr(obj, "_firstName", None)),
            lastName=_val(getattr(obj, "_lastName", None)),
            email=_val(getattr(obj, "_email", None)),
            raw=obj,
        )
    details = getattr(obj, "_details", None)
    if kind == "ExperimenterGroup":
        return GroupInfo(
            id=oid,
            name=_val(getattr(obj, "_name", None)),
            permissions=_permissions(details),
            description=_val(getattr(obj, "_description", None)),
            raw=obj,
        )
    owner = getattr(details, "_owner", None) if details is not None else None
    group = getattr(details, "_group", None) if details is not None else None
    event = getattr(details, "_creationEvent", None) if details is not None else None
    created = None
    millis = _val(getattr(event, "_time", None)) if _loaded(event) else None
    if millis is not None:
        created = datetime.datetime.fromtimestamp(
            millis / 1000, tz=datetime.timezone.utc
        )
    name = getattr(obj, "_name", None)
    if kind == "Well" and name is None:
        row, column = (
            _val(getattr(obj, "_row", None)),
            _val(getattr(obj, "_column", None)),
        )
        label = f"{row},{column}" if row is not None else None
    else:
        label = _val(name)
    return ObjectInfo(
        type=kind,
        id=oid,
        name=label,
        description=_val(getattr(obj, "_description", None)),
        owner_id=_val(owner._id) if owner is not None else None,
        owner_name=_val(getattr(owner, "_omeName", None)) if _loaded(owner) else None,
        group_id=_val(group._id) if group is not None else None,
        permissions=_permissions(details),
        created=created,
        raw=obj,
    )
