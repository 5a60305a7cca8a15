"""Rows of the emulator's catalog and the sources that hold them.

A catalog's containers and images live in *sources*. A source answers three
questions about one or more kinds of object: the row with a given id, all its
rows in id order, and the rows that point at a given parent (the images of a
dataset, the wells of a plate). Rows come back as :class:`Segment` sequences
that may be computed on demand, so a source can describe millions of objects
by arithmetic and still be paged cheaply.

Two sources exist: :class:`FixtureSource`, which stores every row it is
given (the explicit fixture API of the catalog), and the generated source of
the IDR catalog (:mod:`aiomero.testing.idr`). Both can sit in one catalog.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple, Protocol

__all__ = [
    "CONTAINER_KINDS",
    "LINK_KINDS",
    "REFERRER_FIELDS",
    "Entity",
    "FixtureSource",
    "Link",
    "Record",
    "Segment",
    "Source",
    "Well",
    "WellSample",
]

CONTAINER_KINDS = ("Project", "Dataset", "Image", "Screen", "Plate")

#: Link kinds and the kinds of their parent and child.
LINK_KINDS = {
    "ProjectDatasetLink": ("Project", "Dataset"),
    "DatasetImageLink": ("Dataset", "Image"),
    "ScreenPlateLink": ("Screen", "Plate"),
}

#: The fields by which a source must find rows pointing at a parent, per kind.
REFERRER_FIELDS = {
    "ProjectDatasetLink": ("parent", "child"),
    "DatasetImageLink": ("parent", "child"),
    "ScreenPlateLink": ("parent", "child"),
    "Well": ("plate",),
    "WellSample": ("well", "image"),
}


class Record:
    """One owned row: its kind, id, owner, group and creation event."""

    __slots__ = ("event_id", "group_id", "id", "kind", "owner_id")

    def __init__(
        self, kind: str, id: int, owner_id: int, group_id: int, event_id: int
    ) -> None:
        self.kind = kind
        self.id = id
        self.owner_id = owner_id
        self.group_id = group_id
        self.event_id = event_id

    def __repr__(self) -> str:
        return f"<{self.kind} {self.id} owner={self.owner_id} group={self.group_id}>"


class Entity(Record):
    """A named container or image.

    ``dims`` is the image's pixel shape (x, y, z, c, t); other kinds leave
    it None.
    """

    __slots__ = ("description", "dims", "name")

    def __init__(
        self,
        kind: str,
        id: int,
        owner_id: int,
        group_id: int,
        event_id: int,
        name: str,
        description: str = "",
        dims: tuple[int, int, int, int, int] | None = None,
    ) -> None:
        super().__init__(kind, id, owner_id, group_id, event_id)
        self.name = name
        self.description = description
        self.dims = dims


class Link(Record):
    """A parent-child link such as a ProjectDatasetLink."""

    __slots__ = ("child_id", "parent_id")

    def __init__(
        self,
        kind: str,
        id: int,
        owner_id: int,
        group_id: int,
        event_id: int,
        parent_id: int,
        child_id: int,
    ) -> None:
        super().__init__(kind, id, owner_id, group_id, event_id)
        self.parent_id = parent_id
        self.child_id = child_id


class Well(Record):
    """A well of a plate, at a zero-based row and column."""

    __slots__ = ("column", "plate_id", "row")

    def __init__(
        self,
        id: int,
        owner_id: int,
        group_id: int,
        event_id: int,
        plate_id: int,
        row: int,
        column: int,
    ) -> None:
        super().__init__("Well", id, owner_id, group_id, event_id)
        self.plate_id = plate_id
        self.row = row
        self.column = column


class WellSample(Record):
    """The link of a well to one of its images (a field)."""

    __slots__ = ("image_id", "well_id")

    def __init__(
        self,
        id: int,
        owner_id: int,
        group_id: int,
        event_id: int,
        well_id: int,
        image_id: int,
    ) -> None:
        super().__init__("WellSample", id, owner_id, group_id, event_id)
        self.well_id = well_id
        self.image_id = image_id


class Segment(NamedTuple):
    """Rows in id order, with what they share, if anything.

    A shared group lets a query skip rows by counting them instead of looking
    at each one when the caller may see the whole group. ``referenced`` maps
    a (kind, field), such as ``("DatasetImageLink", "child")``, to True when
    every row has some row of that kind pointing at it by that field, or
    False when none has; a query asking ``not exists`` such a row then
    settles the whole segment at once.
    """

    rows: Sequence[Any]
    group_id: int | None = None
    owner_id: int | None = None
    referenced: Mapping[tuple[str, str], bool] | None = None


class Source(Protocol):
    """Where a catalog finds the rows of some kinds of object."""

    def get(self, kind: str, id: int) -> Record | None:
        """Return the row of ``kind`` with ``id``, or None."""

    def segments(self, kind: str) -> list[Segment]:
        """Return all rows of ``kind``, in id order, as segments."""

    def referrers(self, kind: str, field: str, target_id: int) -> Segment:
        """Return the rows of ``kind`` whose ``field`` points at ``target_id``.

        ``field`` is one of :data:`REFERRER_FIELDS` for the kind. Links come
        in the order of the id at their other end (the children of a parent
        by child id), other rows in id order.
        """

    def names_follow_ids(self, kind: str) -> bool:
        """Tell whether ordering rows by lower-cased name orders them by id."""


_EMPTY = Segment(())

_OTHER_END = {"parent": "child_id", "child": "parent_id"}


class FixtureSource:
    """A source that stores every row it is given, in memory.

    Rows must be added with increasing ids per kind (the catalog allocates
    them so), which keeps every list sorted without sorting.
    """

    def __init__(self) -> None:
        self._sorted_names: dict[str, bool] = {}
        self._by_id: dict[str, dict[int, Record]] = {}
        self._ordered: dict[str, list[Record]] = {}
        self._index: dict[tuple[str, str], dict[int, list[Record]]] = {}

    def add(self, record: Record) -> None:
        """Store ``record`` and index it by the fields that point at parents."""
        rows = self._ordered.setdefault(record.kind, [])
        if rows and rows[-1].id >= record.id:
            raise ValueError(f"{record.kind} ids must increase: {record.id}")
        rows.append(record)
        self._sorted_names.pop(record.kind, None)
        self._by_id.setdefault(record.kind, {})[record.id] = record
        for field in REFERRER_FIELDS.get(record.kind, ()):
            target = getattr(record, f"{field}_id")
            index = self._index.setdefault((record.kind, field), {})
            bucket = index.setdefault(target, [])
            other = _OTHER_END.get(field)
            if other is None or not bucket:
                bucket.append(record)
                continue
            # links to one parent are kept in the order of their children
            keys = [getattr(row, other) for row in bucket]
            bucket.insert(bisect.bisect(keys, getattr(record, other)), record)

    def get(self, kind: str, id: int) -> Record | None:
        """Return the stored row of ``kind`` with ``id``, or None."""
        return self._by_id.get(kind, {}).get(id)

    def segments(self, kind: str) -> list[Segment]:
        """Return all stored rows of ``kind`` as one segment."""
        rows = self._ordered.get(kind)
        return [Segment(rows)] if rows else []

    def referrers(self, kind: str, field: str, target_id: int) -> Segment:
        """Return the stored rows of ``kind`` whose ``field`` is ``target_id``."""
        rows = self._index.get((kind, field), {}).get(target_id)
        return Segment(rows) if rows else _EMPTY

    def names_follow_ids(self, kind: str) -> bool:
        """Tell whether the stored names of ``kind`` sort like their ids."""
        known = self._sorted_names.get(kind)
        if known is None:
            names = [
                row.name.lower()
                for row in self._ordered.get(kind, ())
                if isinstance(row, Entity)
            ]
            known = all(a <= b for a, b in itertools.pairwise(names))
            self._sorted_names[kind] = known
        return known

    def count(self, kind: str) -> int:
        """Return how many rows of ``kind`` are stored."""
        return len(self._ordered.get(kind, ()))
