"""Checking query arguments up front, and running queries on the session thread.

The checks run on the event loop before anything is queued, so bad input
costs no round trip and names its field. The ``find_objects`` family runs on
the session thread with the BlitzGateway passed in, and returns plain data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import omero
import omero.gateway
import omero.rtypes
from omero.rtypes import unwrap

from ._logging import fingerprint
from .errors import ServerError
from .models import to_info

__all__ = [
    "OBJECT_TYPES",
    "OPTION_TYPES",
    "check_ids",
    "check_object_type",
    "check_opts",
    "convert_rows",
    "event_context",
    "find_objects",
    "sudo_session",
    "to_plain",
]

# Types BlitzGateway.getObjects knows, by the spelling it accepts.
OBJECT_TYPES: dict[str, str] = {
    name.lower(): name
    for name in (
        "Project",
        "Dataset",
        "Image",
        "Screen",
        "Plate",
        "PlateAcquisition",
        "Well",
        "WellSample",
        "Experimenter",
        "ExperimenterGroup",
        "Roi",
        "Shape",
        "Channel",
        "Pixels",
        "OriginalFile",
        "FileAnnotation",
        "Annotation",
        "TagAnnotation",
        "CommentAnnotation",
        "MapAnnotation",
        "LongAnnotation",
        "DoubleAnnotation",
        "BooleanAnnotation",
        "TermAnnotation",
        "TimestampAnnotation",
        "XmlAnnotation",
        "Folder",
        "Instrument",
        "Fileset",
    )
}

_ID = (int,)
OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "offset": _ID,
    "limit": _ID,
    "owner": _ID,
    "order_by": (str,),
    "orphaned": (bool,),
    "load_pixels": (bool,),
    "load_channels": (bool,),
    "load_experimentergroups": (bool,),
    "load_experimenters": (bool,),
    "load_images": (bool,),
    "load_shapes": (bool,),
    "child_count": (bool,),
    "project": _ID,
    "dataset": _ID,
    "image": _ID,
    "screen": _ID,
    "plate": _ID,
    "well": _ID,
    "plateacquisition": _ID,
    "wellsample_index": _ID,
    "experimenter": _ID,
    "experimentergroup": _ID,
}


def check_object_type(obj_type: object) -> str:
    """The canonical name of ``obj_type``; ValueError if it is not known."""
    if not isinstance(obj_type, str):
        raise TypeError(f"obj_type must be a str, not {type(obj_type).__name__}")
    try:
        return OBJECT_TYPES[obj_type.lower()]
    except KeyError:
        raise ValueError(
            f"obj_type: unknown object type {obj_type!r}; "
            "use for example 'Project', 'Dataset' or 'Image'"
        ) from None


def check_ids(ids: object, field: str = "ids") -> list[int] | None:
    """``ids`` as a list of ints, or None; TypeError (not an int) or
    ValueError (beyond 64 bits) naming a wrong one."""
    if ids is None:
        return None
    if isinstance(ids, str | bytes) or not isinstance(ids, Iterable):
        raise TypeError(f"{field} must be a list of ints, not {type(ids).__name__}")
    checked = list(ids)
    for item in checked:
        if isinstance(item, bool) or not isinstance(item, int):
            raise TypeError(f"{field}: {item!r} is not an int id")
        if not -(2**63) <= item < 2**63:
            raise ValueError(f"{field}: {item} does not fit an id (64 bits)")
    return checked


def check_opts(opts: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A copy of ``opts`` once every key and value type is known good."""
    if opts is None:
        return None
    if not isinstance(opts, Mapping):
        raise TypeError(f"opts must be a mapping, not {type(opts).__name__}")
    for key, value in opts.items():
        expected = OPTION_TYPES.get(key)
        if expected is None:
            raise ValueError(
                f"opts: unknown option {key!r}; "
                f"known: {', '.join(sorted(OPTION_TYPES))}"
            )
        wrong_bool = isinstance(value, bool) and bool not in expected
        if wrong_bool or not isinstance(value, expected):
            raise TypeError(
                f"opts[{key!r}] must be {expected[0].__name__}, "
                f"not {type(value).__name__}"
            )
        if key in ("offset", "limit") and isinstance(value, int) and value < 0:
            raise ValueError(f"opts[{key!r}] must not be negative, not {value}")
    return dict(opts)


def to_plain(obj: Any) -> Any:
    """Plain data for a BlitzObjectWrapper or a model object."""
    if obj is None:
        return None
    return to_info(getattr(obj, "_obj", obj))


class _EventContext(omero.sys.EventContext):  # type: ignore[misc]
    """An EventContext whose text shows the session key as a fingerprint.

    ``sessionUuid`` still holds the whole key, for code that joins the
    session; only ``str`` and ``repr`` (logs, tracebacks, debuggers) hide it.
    """

    def __str__(self) -> str:
        shown = omero.sys.EventContext()
        shown.__dict__.update(self.__dict__)
        shown.sessionUuid = fingerprint(self.sessionUuid)
        return str(shown)

    __repr__ = __str__


def event_context(ec: Any) -> Any:
    """A copy of ``ec`` that never prints the session key."""
    copy = _EventContext()
    copy.__dict__.update(ec.__dict__)
    return copy


def find_objects(
    gw: Any,
    kind: str,
    ids: Any,
    params: Any,
    attributes: Any,
    opts: dict[str, Any] | None,
    respect_order: bool,
    single: bool,
) -> Any:
    """BlitzGateway's getObjects/getObject, minus the wrappers.

    The query is the one BlitzGateway builds; the rows are converted to plain
    data directly, which skips building a wrapper per row.
    """
    query, params, _ = gw.buildQuery(kind, ids, params, attributes, opts)
    qs = gw.getQueryService()
    if single:
        return to_info(qs.findByQuery(query, params, gw.SERVICE_OPTS))
    rows = qs.findAllByQuery(query, params, gw.SERVICE_OPTS)
    if respect_order and ids is not None:
        by_id = {row._id._val: row for row in rows}
        rows = [by_id[i] for i in unwrap(ids) if i in by_id]
    return [to_info(row) for row in rows]


# Cells holding a plain value, read directly: most projection cells are
# these, and unwrap() costs several calls for each.
_PLAIN_CELLS = frozenset(
    {
        omero.rtypes.RBoolI,
        omero.rtypes.RDoubleI,
        omero.rtypes.RFloatI,
        omero.rtypes.RIntI,
        omero.rtypes.RLongI,
        omero.rtypes.RStringI,
        omero.rtypes.RTimeI,
    }
)


def _cell(cell: Any) -> Any:
    if cell is None:
        return None
    if type(cell) in _PLAIN_CELLS:
        return cell._val
    return unwrap(cell)


def convert_rows(rows: Any) -> list[list[Any]]:
    """Projection rows of ``omero.RType`` cells as rows of Python values."""
    return [[_cell(cell) for cell in row] for row in rows]


def sudo_session(gw: Any, username: str, group: str | None, ttl: int) -> str:
    """Create a session of ``username`` from an administrator's session; its key."""
    admin = gw.getAdminService()
    try:
        user = admin.lookupExperimenter(username)
    except omero.ApiUsageException as exc:
        raise ServerError(f"suConn: the server knows no user {username!r}") from exc
    if group is None:
        group = admin.getDefaultGroup(user.id.val).name.val
    principal = omero.sys.Principal()
    principal.name = username
    principal.group = group
    principal.eventType = "User"
    session = gw.getSessionService().createSessionWithTimeout(principal, ttl)
    return str(session.getUuid().val)
