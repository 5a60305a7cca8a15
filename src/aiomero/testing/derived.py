"""Kinds the catalog answers for itself rather than through its sources.

Users, groups and memberships live in the catalog; pixels, channels and
logical channels are computed from their image (the pixels of image *n* have
id *n*, its channel *c* has id ``n * Channel.STRIDE + c``); there is one
pixels type. Each kind here offers the same three look-ups as a source: by
id, all rows, and rows pointing at a parent.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

from aiomero.testing.objects import Channel, Pixels, PixelsType
from aiomero.testing.store import Entity, Segment

if TYPE_CHECKING:
    from aiomero.testing.catalog import Catalog

__all__ = ["DERIVED", "Derived", "Mapped"]


class Mapped(Sequence[Any]):
    """A sequence computing ``make(row)`` for each row of another, on demand."""

    def __init__(self, rows: Sequence[Any], make: Callable[[Any], Any]) -> None:
        self._rows = rows
        self._make = make

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> Mapped: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return Mapped(self._rows[index], self._make)
        return self._make(self._rows[index])

    def __iter__(self) -> Iterator[Any]:
        return map(self._make, self._rows)


class Derived:
    """Look-ups of one kind the catalog answers for itself."""

    def get(self, catalog: Catalog, id: int) -> Any:
        """Return the row with ``id``, or None."""
        raise NotImplementedError

    def segments(self, catalog: Catalog) -> list[Segment]:
        """Return every row, in id order."""
        raise NotImplementedError

    def referrers(self, catalog: Catalog, field: str, target_id: int) -> list[Segment]:
        """Return the rows whose ``field`` points at ``target_id``."""
        raise KeyError(field)

    fields: tuple[str, ...] = ()


class _Users(Derived):
    def get(self, catalog: Catalog, id: int) -> Any:
        try:
            return catalog.user(id)
        except KeyError:
            return None

    def segments(self, catalog: Catalog) -> list[Segment]:
        return [Segment(catalog.users)]


class _Groups(Derived):
    def get(self, catalog: Catalog, id: int) -> Any:
        try:
            return catalog.group(id)
        except KeyError:
            return None

    def segments(self, catalog: Catalog) -> list[Segment]:
        return [Segment(catalog.groups)]


class _Memberships(Derived):
    fields = ("parent", "child")

    def get(self, catalog: Catalog, id: int) -> Any:
        return next((m for m in catalog.memberships if m.id == id), None)

    def segments(self, catalog: Catalog) -> list[Segment]:
        return [Segment(catalog.memberships)]

    def referrers(self, catalog: Catalog, field: str, target_id: int) -> list[Segment]:
        # in the order of the other end, as links are
        if field == "parent":
            rows = catalog.memberships_of_group(target_id)
            return [Segment(sorted(rows, key=lambda m: m.child_id))]
        if field == "child":
            rows = catalog.memberships_of_user(target_id)
            return [Segment(sorted(rows, key=lambda m: m.parent_id))]
        raise KeyError(field)


def _image(catalog: Catalog, id: int) -> Entity | None:
    image = catalog.get("Image", id)
    return image if isinstance(image, Entity) else None


class _Pixels(Derived):
    fields = ("image",)

    def get(self, catalog: Catalog, id: int) -> Any:
        image = _image(catalog, id)
        return None if image is None else Pixels(image)

    def segments(self, catalog: Catalog) -> list[Segment]:
        return [
            Segment(Mapped(s.rows, Pixels), s.group_id, s.owner_id)
            for s in catalog.segments("Image")
        ]

    def referrers(self, catalog: Catalog, field: str, target_id: int) -> list[Segment]:
        if field != "image":
            raise KeyError(field)
        pixels = self.get(catalog, target_id)
        return [] if pixels is None else [Segment([pixels])]


class _Channels(Derived):
    fields = ("pixels",)

    def get(self, catalog: Catalog, id: int) -> Any:
        image_id, index = divmod(id, Channel.STRIDE)
        pixels = _PIXELS.get(catalog, image_id)
        if pixels is None or index >= pixels.dims[3]:
            return None
        return Channel(pixels, index)

    def segments(self, catalog: Catalog) -> list[Segment]:
        found = []
        for pixels_segment in _PIXELS.segments(catalog):
            rows = [
                Channel(pixels, index)
                for pixels in pixels_segment.rows
                for index in range(pixels.dims[3])
            ]
            found.append(Segment(rows, pixels_segment.group_id))
        return found

    def referrers(self, catalog: Catalog, field: str, target_id: int) -> list[Segment]:
        if field != "pixels":
            raise KeyError(field)
        pixels = _PIXELS.get(catalog, target_id)
        if pixels is None:
            return []
        return [Segment([Channel(pixels, i) for i in range(pixels.dims[3])])]


class _PixelsTypes(Derived):
    _ONLY = PixelsType()

    def get(self, catalog: Catalog, id: int) -> Any:
        return self._ONLY if id == self._ONLY.id else None

    def segments(self, catalog: Catalog) -> list[Segment]:
        return [Segment([self._ONLY])]


class _Events(Derived):
    def get(self, catalog: Catalog, id: int) -> Any:
        return id if 0 < id <= catalog.last_event else None

    def segments(self, catalog: Catalog) -> list[Segment]:
        return [Segment(range(1, catalog.last_event + 1))]


_PIXELS = _Pixels()

#: The kinds answered by the catalog itself.
DERIVED: dict[str, Derived] = {
    "Experimenter": _Users(),
    "ExperimenterGroup": _Groups(),
    "GroupExperimenterMap": _Memberships(),
    "Pixels": _PIXELS,
    "Channel": _Channels(),
    "LogicalChannel": _Channels(),
    "PixelsType": _PixelsTypes(),
    "Event": _Events(),
}
