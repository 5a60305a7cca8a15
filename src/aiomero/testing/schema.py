"""The object graph the query engine walks: kinds and their properties.

Each kind (the model class name used in HQL, such as ``Project``) has
properties of three sorts: scalars (a value and the omero.rtypes wrapper a
projection returns it in), references (to one row of another kind, or
nothing) and collections (rows of another kind). ``details.owner`` and the
other ``details`` properties are spelt as one property with a dot.

Values are what the catalog stores: :class:`~aiomero.testing.store.Record`
rows, a :class:`~aiomero.testing.catalog.User` for an Experimenter, a
:class:`~aiomero.testing.catalog.Group` for an ExperimenterGroup and a plain
event id for an Event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omero.rtypes import rbool, rint, rlong, rstring, rtime

from aiomero.testing.objects import EPOCH_MS, Channel, Pixels, PixelsType
from aiomero.testing.store import LINK_KINDS

if TYPE_CHECKING:
    from aiomero.testing.catalog import Catalog

__all__ = ["EMPTY_KINDS", "OWNED_KINDS", "SCHEMA", "Prop", "is_empty_kind", "kind_of"]

SCALAR, REF, COLL = "scalar", "ref", "coll"

Getter = Callable[["Catalog", Any], Any]


@dataclass(frozen=True)
class Prop:
    """One property of a kind.

    ``target`` is the kind a reference or collection leads to, or the
    rtypes wrapper of a scalar. ``via`` names, for a collection held by
    back-references, the element kind and its field pointing back (the
    ``datasetLinks`` of a Project are the ProjectDatasetLinks whose
    ``parent`` is it); ``field`` names, for a reference, the row attribute
    holding the target's id.
    """

    sort: str
    target: Any
    get: Getter
    via: tuple[str, str] | None = None
    field: str | None = None


def _scalar(wrap: Callable[[Any], Any], attr: str) -> Prop:
    return Prop(SCALAR, wrap, lambda _c, v: getattr(v, attr))


def _constant(wrap: Callable[[Any], Any], value: Any) -> Prop:
    return Prop(SCALAR, wrap, lambda _c, _v: value)


def _ref(kind: str, attr: str) -> Prop:
    return Prop(REF, kind, lambda c, v: c.get(kind, getattr(v, attr)), field=attr)


def _nothing(kind: str) -> Prop:
    return Prop(REF, kind, lambda _c, _v: None)


def _empty(kind: str) -> Prop:
    return Prop(COLL, kind, lambda _c, _v: ())


def _back(kind: str, field: str) -> Prop:
    def get(catalog: Catalog, value: Any) -> Sequence[Any]:
        segments = catalog.referrers(kind, field, value.id)
        if len(segments) == 1:
            return segments[0].rows
        return [row for segment in segments for row in segment.rows]

    return Prop(COLL, kind, get, via=(kind, field))


_ID = _scalar(rlong, "id")

_OWNED: dict[str, Prop] = {
    "id": _ID,
    "version": _constant(rint, 0),
    "details.owner": Prop(
        REF, "Experimenter", lambda c, v: c.user(v.owner_id), field="owner_id"
    ),
    "details.group": Prop(
        REF, "ExperimenterGroup", lambda c, v: c.group(v.group_id), field="group_id"
    ),
    "details.creationEvent": Prop(
        REF, "Event", lambda _c, v: v.event_id, field="event_id"
    ),
    "details.updateEvent": Prop(
        REF, "Event", lambda _c, v: v.event_id, field="event_id"
    ),
    "details.externalInfo": _nothing("ExternalInfo"),
}

_NAMED: dict[str, Prop] = {
    **_OWNED,
    "name": _scalar(rstring, "name"),
    "description": _scalar(rstring, "description"),
    "annotationLinks": _empty("AnnotationLink"),
}


def _link(kind: str) -> dict[str, Prop]:
    parent, child = LINK_KINDS[kind]
    return {
        **_OWNED,
        "parent": _ref(parent, "parent_id"),
        "child": _ref(child, "child_id"),
    }


def _event_time(_catalog: Catalog, event_id: int) -> int:
    return EPOCH_MS + event_id * 60_000


def _pixels(_catalog: Catalog, image: Any) -> list[Pixels]:
    return [Pixels(image)]


def _channels(_catalog: Catalog, pixels: Pixels) -> list[Channel]:
    return [Channel(pixels, index) for index in range(pixels.dims[3])]


def _dim(index: int) -> Prop:
    return Prop(SCALAR, rint, lambda _c, v: v.dims[index])


_PIXELS_TYPE = PixelsType()

SCHEMA: dict[str, dict[str, Prop]] = {
    "Project": {**_NAMED, "datasetLinks": _back("ProjectDatasetLink", "parent")},
    "Dataset": {
        **_NAMED,
        "projectLinks": _back("ProjectDatasetLink", "child"),
        "imageLinks": _back("DatasetImageLink", "parent"),
    },
    "Image": {
        **_NAMED,
        "datasetLinks": _back("DatasetImageLink", "child"),
        "wellSamples": _back("WellSample", "image"),
        "pixels": Prop(COLL, "Pixels", _pixels),
        "acquisitionDate": Prop(SCALAR, rtime, _event_time),
        "archived": _constant(rbool, False),
        "series": _constant(rint, 0),
        "fileset": _nothing("Fileset"),
        "format": _nothing("Format"),
        "instrument": _nothing("Instrument"),
        "rois": _empty("Roi"),
        "folderLinks": _empty("FolderImageLink"),
    },
    "Screen": {**_NAMED, "plateLinks": _back("ScreenPlateLink", "parent")},
    "Plate": {
        **_NAMED,
        "screenLinks": _back("ScreenPlateLink", "child"),
        "wells": _back("Well", "plate"),
        "plateAcquisitions": _empty("PlateAcquisition"),
        "columnNamingConvention": _constant(rstring, "number"),
        "rowNamingConvention": _constant(rstring, "letter"),
    },
    "Well": {
        **_OWNED,
        "plate": _ref("Plate", "plate_id"),
        "row": _scalar(rint, "row"),
        "column": _scalar(rint, "column"),
        "wellSamples": _back("WellSample", "well"),
        "annotationLinks": _empty("AnnotationLink"),
    },
    "WellSample": {
        **_OWNED,
        "well": _ref("Well", "well_id"),
        "image": _ref("Image", "image_id"),
        "plateAcquisition": _nothing("PlateAcquisition"),
    },
    **{kind: _link(kind) for kind in LINK_KINDS},
    "Experimenter": {
        "id": _ID,
        "omeName": _scalar(rstring, "name"),
        "firstName": _scalar(rstring, "first_name"),
        "lastName": _scalar(rstring, "last_name"),
        "middleName": _constant(rstring, ""),
        "email": _scalar(rstring, "email"),
        "institution": _constant(rstring, ""),
        "ldap": _constant(rbool, False),
        "groupExperimenterMap": Prop(
            COLL,
            "GroupExperimenterMap",
            lambda c, v: c.memberships_of_user(v.id),
            via=("GroupExperimenterMap", "child"),
        ),
        "annotationLinks": _empty("AnnotationLink"),
    },
    "ExperimenterGroup": {
        "id": _ID,
        "name": _scalar(rstring, "name"),
        "description": _scalar(rstring, "description"),
        "ldap": _constant(rbool, False),
        "groupExperimenterMap": Prop(
            COLL,
            "GroupExperimenterMap",
            lambda c, v: c.memberships_of_group(v.id),
            via=("GroupExperimenterMap", "parent"),
        ),
        "annotationLinks": _empty("AnnotationLink"),
    },
    "GroupExperimenterMap": {
        "id": _ID,
        "owner": _scalar(rbool, "owner"),
        "parent": Prop(
            REF,
            "ExperimenterGroup",
            lambda c, v: c.group(v.parent_id),
            field="parent_id",
        ),
        "child": Prop(
            REF, "Experimenter", lambda c, v: c.user(v.child_id), field="child_id"
        ),
    },
    "Event": {
        "id": Prop(SCALAR, rlong, lambda _c, v: v),
        "time": Prop(SCALAR, rtime, _event_time),
    },
    "Pixels": {
        **_OWNED,
        "image": _ref("Image", "image_id"),
        "pixelsType": Prop(REF, "PixelsType", lambda _c, _v: _PIXELS_TYPE),
        "sizeX": _dim(0),
        "sizeY": _dim(1),
        "sizeZ": _dim(2),
        "sizeC": _dim(3),
        "sizeT": _dim(4),
        "channels": Prop(COLL, "Channel", _channels),
        "thumbnails": _empty("Thumbnail"),
        "settings": _empty("RenderingDef"),
    },
    "PixelsType": {
        "id": _ID,
        "value": _constant(rstring, PixelsType.VALUE),
        "bitSize": _constant(rint, 16),
    },
    "Channel": {
        **_OWNED,
        "pixels": Prop(REF, "Pixels", lambda c, v: _pixels_of(c, v.pixels_id)),
        "logicalChannel": Prop(REF, "LogicalChannel", lambda _c, v: v),
    },
    "LogicalChannel": {
        **_OWNED,
        "name": Prop(SCALAR, rstring, lambda _c, v: f"ch{v.index}"),
        "emissionWave": _nothing("Length"),
        "excitationWave": _nothing("Length"),
        "photometricInterpretation": _nothing("PhotometricInterpretation"),
        "illumination": _nothing("Illumination"),
        "mode": _nothing("AcquisitionMode"),
        "contrastMethod": _nothing("ContrastMethod"),
    },
}

#: Kinds whose rows belong to a group, so that visibility rules apply.
OWNED_KINDS = frozenset(
    kind for kind, props in SCHEMA.items() if "details.group" in props
)


def _pixels_of(catalog: Catalog, image_id: int) -> Pixels | None:
    image = catalog.get("Image", image_id)
    return None if image is None else Pixels(image)


#: Kinds of which the emulator holds no rows: queries on them find nothing,
#: whatever properties they name (annotations and their links included).
EMPTY_KINDS = frozenset(
    {
        *("PlateAcquisition", "Roi", "Shape", "Fileset", "FilesetEntry"),
        *("OriginalFile", "Thumbnail", "PlaneInfo", "RenderingDef", "Folder"),
        *("FolderImageLink", "Instrument", "Objective", "ObjectiveSettings"),
        *("LightSource", "Laser", "Detector", "DetectorSettings", "Filter"),
        *("Dichroic", "ExternalInfo", "Experiment", "StageLabel"),
        *("PixelsOriginalFileMap",),
    }
)


def is_empty_kind(name: str) -> bool:
    """Tell whether ``name`` is a kind the emulator has no rows of."""
    return name in EMPTY_KINDS or name.endswith(("Annotation", "AnnotationLink"))


def kind_of(name: str) -> str | None:
    """Return the kind for an HQL entity name, qualified or not, or None."""
    short = name.rsplit(".", 1)[-1]
    if short.endswith("I") and (short[:-1] in SCHEMA or is_empty_kind(short[:-1])):
        short = short[:-1]
    return short if short in SCHEMA or is_empty_kind(short) else None
