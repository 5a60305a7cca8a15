"""Turn catalog rows into the omero.model objects a server returns.

A :class:`ModelFactory` serves one call: it keeps one object per row, so an
owner, a group or an event shared by many rows is built and marshalled once,
and a row reached twice (an image in two datasets fetched with its links) is
the same object both times, as on a real server.

Every object comes loaded, with its scalar fields set and its details filled
in: the owner (an Experimenter with its names), the group (with its name and
permissions), the creation event (with its time) and permissions whose
restrictions say what the caller may do to it. Collections start unloaded and
references to other rows start as unloaded proxies; the query engine loads
what the query join-fetches with :meth:`ModelFactory.set_collection` and
:meth:`ModelFactory.set_reference`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import omero
import omero.model
from omero.rtypes import rbool, rint, rstring, rtime

from aiomero.testing.store import Entity, Link, Record, Well, WellSample

if TYPE_CHECKING:
    from aiomero.testing.directory import Directory
    from aiomero.testing.people import Caller, Group, User

__all__ = [
    "EPOCH_MS",
    "Channel",
    "Membership",
    "ModelFactory",
    "Pixels",
    "PixelsType",
    "permissions_for",
]

#: Creation time of event 0; event n happened n minutes later.
EPOCH_MS = 1_577_836_800_000

_MINUTE_MS = 60_000


class Membership(Record):
    """A GroupExperimenterMap row: ``child`` user in ``parent`` group."""

    __slots__ = ("child_id", "owner", "parent_id")

    def __init__(self, id: int, parent_id: int, child_id: int, owner: bool) -> None:
        super().__init__("GroupExperimenterMap", id, 0, 0, 0)
        self.parent_id = parent_id
        self.child_id = child_id
        self.owner = owner


class Pixels(Record):
    """The pixels of an image; it shares the image's id."""

    __slots__ = ("dims", "image_id")

    def __init__(self, image: Entity) -> None:
        super().__init__("Pixels", image.id, image.owner_id, image.group_id, 0)
        self.event_id = image.event_id
        self.image_id = image.id
        self.dims = image.dims or (1, 1, 1, 1, 1)


class Channel(Record):
    """Channel ``index`` of some pixels; also stands for its LogicalChannel."""

    __slots__ = ("index", "pixels_id")

    #: Channel ids are pixels id times this, plus the channel's index.
    STRIDE = 1000

    def __init__(self, pixels: Pixels, index: int) -> None:
        super().__init__(
            "Channel",
            pixels.id * self.STRIDE + index,
            pixels.owner_id,
            pixels.group_id,
            pixels.event_id,
        )
        self.pixels_id = pixels.id
        self.index = index


class PixelsType(Record):
    """The one pixel type of every emulated image (uint16)."""

    __slots__ = ()
    VALUE = "uint16"

    def __init__(self) -> None:
        super().__init__("PixelsType", 1, 0, 0, 0)


def permissions_for(
    catalog: Directory, caller: Caller, group: Group, owner_id: int
) -> Any:
    """Return the PermissionsI a server sends on a row owned by ``owner_id``.

    The permission string is the group's; the restrictions say what the
    caller may not do: only the owner, a leader of the group or an admin may
    edit or delete a row, annotate it in a read-only group, or link it in a
    group that is not read-write.
    """
    perms = omero.model.PermissionsI(group.permissions)
    user = caller.user
    mighty = user.is_admin or group.id in user.leader_of or user.id == owner_id
    level = group.permissions
    annotate = mighty or level in ("rwra--", "rwrw--")
    write = mighty or level == "rwrw--"
    perms._restrictions = [
        not write,  # link
        not write,  # edit
        not mighty,  # delete
        not annotate,  # annotate
        not (user.is_admin or user.id == owner_id),  # chgrp
        not (user.is_admin or group.id in user.leader_of),  # chown
    ]
    return perms


class ModelFactory:
    """Build the model objects of one call's result, one object per row."""

    def __init__(self, catalog: Directory, caller: Caller) -> None:
        self._catalog = catalog
        self._caller = caller
        self._objects: dict[tuple[str, int], Any] = {}
        self._permissions: dict[tuple[int, int], Any] = {}

    # -- people and events -------------------------------------------------

    def experimenter(self, user: User) -> Any:
        """Return the loaded ExperimenterI of ``user``, memberships unloaded."""
        key = ("Experimenter", user.id)
        obj = self._objects.get(key)
        if obj is None:
            obj = omero.model.ExperimenterI(user.id, True)
            obj._omeName = rstring(user.name)
            obj._firstName = rstring(user.first_name)
            obj._middleName = rstring("")
            obj._lastName = rstring(user.last_name)
            obj._email = rstring(user.email)
            obj._institution = rstring("")
            obj._ldap = rbool(False)
            obj._version = rint(0)
            obj.unloadCollections()
            self._objects[key] = obj
        return obj

    def group(self, group: Group) -> Any:
        """Return the loaded ExperimenterGroupI of ``group``, members unloaded."""
        key = ("ExperimenterGroup", group.id)
        obj = self._objects.get(key)
        if obj is None:
            obj = omero.model.ExperimenterGroupI(group.id, True)
            obj._name = rstring(group.name)
            obj._description = rstring(group.description)
            obj._ldap = rbool(False)
            obj._version = rint(0)
            obj._details._permissions = omero.model.PermissionsI(group.permissions)
            obj.unloadCollections()
            self._objects[key] = obj
        return obj

    def membership(self, row: Membership) -> Any:
        """Return the GroupExperimenterMapI of ``row``, ends as proxies."""
        key = ("GroupExperimenterMap", row.id)
        obj = self._objects.get(key)
        if obj is None:
            obj = omero.model.GroupExperimenterMapI(row.id, True)
            obj._owner = rbool(row.owner)
            obj._parent = omero.model.ExperimenterGroupI(row.parent_id, False)
            obj._child = omero.model.ExperimenterI(row.child_id, False)
            self._objects[key] = obj
        return obj

    def event(self, event_id: int) -> Any:
        """Return the loaded EventI ``event_id``, with its time."""
        key = ("Event", event_id)
        obj = self._objects.get(key)
        if obj is None:
            obj = omero.model.EventI(event_id, True)
            obj._time = rtime(EPOCH_MS + event_id * _MINUTE_MS)
            obj.unloadCollections()
            self._objects[key] = obj
        return obj

    def experimenter_with_groups(self, user: User) -> Any:
        """Return ``user``'s ExperimenterI with its group memberships loaded."""
        obj = self.experimenter(user)
        maps = []
        for row in self._catalog.memberships_of_user(user.id):
            gem = self.membership(row)
            gem._parent = self.group(self._catalog.group(row.parent_id))
            gem._child = obj
            maps.append(gem)
        self.set_collection(obj, "groupExperimenterMap", maps)
        return obj

    def group_with_members(self, group: Group) -> Any:
        """Return ``group``'s ExperimenterGroupI with its members loaded."""
        obj = self.group(group)
        maps = []
        for row in self._catalog.memberships_of_group(group.id):
            gem = self.membership(row)
            gem._parent = obj
            gem._child = self.experimenter(self._catalog.user(row.child_id))
            maps.append(gem)
        self.set_collection(obj, "groupExperimenterMap", maps)
        return obj

    # -- owned rows --------------------------------------------------------

    def permissions(self, group: Group, owner_id: int) -> Any:
        """Return the caller's permissions on a row of ``group``'s owner."""
        mine = owner_id == self._caller.user.id
        key = (group.id, owner_id if mine else -1)
        perms = self._permissions.get(key)
        if perms is None:
            perms = permissions_for(self._catalog, self._caller, group, owner_id)
            self._permissions[key] = perms
        return perms

    def row(self, kind: str, record: Any) -> Any:
        """Return the loaded model object of ``record`` as a ``kind``.

        ``record`` is a :class:`Record`, or a User, Group or event id for
        the kinds Experimenter, ExperimenterGroup and Event. The object is
        built once per call.
        """
        if kind == "Experimenter":
            return self.experimenter(record)
        if kind == "ExperimenterGroup":
            return self.group(record)
        if kind == "Event":
            return self.event(record)
        if kind == "GroupExperimenterMap":
            return self.membership(record)
        key = (kind, record.id)
        obj = self._objects.get(key)
        if obj is not None:
            return obj
        obj = _BUILDERS[kind](record)
        if kind not in _UNOWNED:
            group = self._catalog.group(record.group_id)
            details = obj._details
            details._owner = self.experimenter(self._catalog.user(record.owner_id))
            details._group = self.group(group)
            details._creationEvent = self.event(record.event_id)
            details._updateEvent = details._creationEvent
            details._permissions = self.permissions(group, record.owner_id)
        self._objects[key] = obj
        return obj

    @staticmethod
    def set_collection(obj: Any, name: str, items: Iterable[Any]) -> None:
        """Load collection ``name`` of ``obj`` with ``items``."""
        setattr(obj, f"_{name}Seq", list(items))
        setattr(obj, f"_{name}Loaded", True)

    @staticmethod
    def set_reference(obj: Any, name: str, target: Any) -> None:
        """Point reference ``name`` of ``obj`` at ``target``."""
        setattr(obj, f"_{name}", target)


def _entity(cls: Callable[..., Any]) -> Callable[[Record], Any]:
    def build(record: Record) -> Any:
        assert isinstance(record, Entity)
        obj = cls(record.id, True)
        obj._name = rstring(record.name)
        obj._description = rstring(record.description)
        obj._version = rint(0)
        obj.unloadCollections()
        return obj

    return build


def _image(record: Record) -> Any:
    obj = _entity(omero.model.ImageI)(record)
    obj._acquisitionDate = rtime(EPOCH_MS + record.event_id * _MINUTE_MS)
    obj._archived = rbool(False)
    obj._partial = rbool(False)
    obj._series = rint(0)
    return obj


def _plate(record: Record) -> Any:
    obj = _entity(omero.model.PlateI)(record)
    obj._columnNamingConvention = rstring("number")
    obj._rowNamingConvention = rstring("letter")
    obj._defaultSample = rint(0)
    return obj


def _link(cls: Callable[..., Any], parent: str, child: str) -> Callable[..., Any]:
    parent_cls = getattr(omero.model, f"{parent}I")
    child_cls = getattr(omero.model, f"{child}I")

    def build(record: Record) -> Any:
        assert isinstance(record, Link)
        obj = cls(record.id, True)
        obj._parent = parent_cls(record.parent_id, False)
        obj._child = child_cls(record.child_id, False)
        obj._version = rint(0)
        return obj

    return build


def _well(record: Record) -> Any:
    assert isinstance(record, Well)
    obj = omero.model.WellI(record.id, True)
    obj._row = rint(record.row)
    obj._column = rint(record.column)
    obj._plate = omero.model.PlateI(record.plate_id, False)
    obj._version = rint(0)
    obj.unloadCollections()
    return obj


def _well_sample(record: Record) -> Any:
    assert isinstance(record, WellSample)
    obj = omero.model.WellSampleI(record.id, True)
    obj._well = omero.model.WellI(record.well_id, False)
    obj._image = omero.model.ImageI(record.image_id, False)
    obj._version = rint(0)
    return obj


def _pixels(record: Record) -> Any:
    assert isinstance(record, Pixels)
    obj = omero.model.PixelsI(record.id, True)
    size_x, size_y, size_z, size_c, size_t = record.dims
    obj._sizeX, obj._sizeY, obj._sizeZ = rint(size_x), rint(size_y), rint(size_z)
    obj._sizeC, obj._sizeT = rint(size_c), rint(size_t)
    obj._sha1 = rstring("")
    obj._significantBits = rint(16)
    obj._image = omero.model.ImageI(record.image_id, False)
    obj._pixelsType = omero.model.PixelsTypeI(1, False)
    obj._version = rint(0)
    obj.unloadCollections()
    return obj


def _pixels_type(record: Record) -> Any:
    obj = omero.model.PixelsTypeI(record.id, True)
    obj._value = rstring(PixelsType.VALUE)
    obj._bitSize = rint(16)
    return obj


def _channel(record: Record) -> Any:
    assert isinstance(record, Channel)
    obj = omero.model.ChannelI(record.id, True)
    obj._pixels = omero.model.PixelsI(record.pixels_id, False)
    obj._logicalChannel = omero.model.LogicalChannelI(record.id, False)
    obj._version = rint(0)
    obj.unloadCollections()
    return obj


def _logical_channel(record: Record) -> Any:
    assert isinstance(record, Channel)
    obj = omero.model.LogicalChannelI(record.id, True)
    obj._name = rstring(f"ch{record.index}")
    obj._version = rint(0)
    obj.unloadCollections()
    return obj


_UNOWNED = frozenset({"PixelsType"})

_BUILDERS: dict[str, Callable[[Record], Any]] = {
    "Project": _entity(omero.model.ProjectI),
    "Dataset": _entity(omero.model.DatasetI),
    "Screen": _entity(omero.model.ScreenI),
    "Image": _image,
    "Plate": _plate,
    "Well": _well,
    "WellSample": _well_sample,
    "ProjectDatasetLink": _link(omero.model.ProjectDatasetLinkI, "Project", "Dataset"),
    "DatasetImageLink": _link(omero.model.DatasetImageLinkI, "Dataset", "Image"),
    "ScreenPlateLink": _link(omero.model.ScreenPlateLinkI, "Screen", "Plate"),
    "Pixels": _pixels,
    "PixelsType": _pixels_type,
    "Channel": _channel,
    "LogicalChannel": _logical_channel,
}

#: Model class name (as in HQL) of every kind the factory can build.
MODEL_KINDS = frozenset(_BUILDERS) | {
    "Experimenter",
    "ExperimenterGroup",
    "GroupExperimenterMap",
    "Event",
}
