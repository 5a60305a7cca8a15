"""An emulated server shaped like the Image Data Resource (IDR).

The IDR (idr.openmicroscopy.org) is the largest public OMERO server. Its
catalog of studies (``data/idr-studies.tsv``, CC BY 4.0, credit: the Image
Data Resource) gives, per study container, the number of plates or
datasets, wells and images. :func:`idr_catalog` turns each row into:

- a *screen* row (``screenA``...): a Screen with ``Sets`` plates, the wells
  spread evenly over the plates and the images (one field each) over the
  wells;
- an *experiment* row: a Project with ``Sets`` datasets and the images
  spread evenly over the datasets.

``scale`` multiplies every count, keeping at least one of each where the
study has any; ``idr_catalog(1.0)`` describes about 14 million images.
Nothing is stored per object: a :class:`IdrSource` keeps a few numbers per
study and computes any row, its name, owner and links, from its id, so the
catalog builds in milliseconds and pages of deep results cost no more than
the first page.

Names sort like ids within each kind: ``<study>/<container>`` for screens
and projects, ``.../plate-00001``, ``.../dataset-00001`` and
``.../image-00000001.tif`` below them. Studies live in one read-only group
per sample type (``idr-cell``, ``idr-tissue``) and are owned, in turn, by
``submitter1`` to ``submitter4`` (passwords ``submitter1-pw``...); the user
``public`` (password ``public``) belongs to every group and owns nothing.
"""

from __future__ import annotations

import bisect
import csv
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, overload

from aiomero.testing.catalog import READ_ONLY, Catalog
from aiomero.testing.store import Entity, Link, Record, Segment, Well, WellSample

__all__ = ["IdrSource", "Study", "idr_catalog", "read_studies"]

_SUBMITTERS = 4


@dataclass(frozen=True)
class Study:
    """One row of the IDR catalog: a screen or an experiment."""

    name: str
    container: str
    sets: int
    wells: int
    images: int
    dims: tuple[int, int, int, int, int]
    sample_type: str

    @property
    def is_screen(self) -> bool:
        """Whether the container is a screen (else a project)."""
        return self.container.lower().startswith("screen")


def read_studies() -> list[Study]:
    """Read the packaged IDR catalog, sorted by study and container."""
    text = resources.files("aiomero.testing").joinpath("data/idr-studies.tsv")
    lines = [line for line in text.read_text().splitlines() if not line.startswith("#")]
    studies = []
    for row in csv.DictReader(lines, delimiter="\t"):
        sizes = [float(part) for part in row["Avg. Image Dim (XYZCT)"].split("x")]
        dims = tuple(max(1, round(size)) for size in sizes)
        studies.append(
            Study(
                name=row["Study"],
                container=row["Container"],
                sets=int(row["Sets"] or 0),
                wells=int(row["Wells"] or 0),
                images=int(row["5D Images"] or 0),
                dims=dims,  # type: ignore[arg-type]
                sample_type=row["Sample Type"],
            )
        )
    studies.sort(key=lambda s: (s.name.lower(), s.container.lower()))
    return studies


def _scaled(count: int, scale: float) -> int:
    return 0 if count <= 0 else max(1, round(count * scale))


def _part(index: int, total: int, parts: int) -> int:
    """Which of ``parts`` even shares of ``total`` items holds ``index``."""
    return ((index + 1) * parts - 1) // total


def _share(part: int, total: int, parts: int) -> tuple[int, int]:
    """First item and count of share ``part`` of ``total`` items."""
    first = part * total // parts
    return first, (part + 1) * total // parts - first


@dataclass
class _Placed:
    """A study with its id ranges: first id and count per kind."""

    study: Study
    group_id: int
    owner_id: int
    event_id: int
    label: str
    first: dict[str, int] = field(default_factory=dict)
    count: dict[str, int] = field(default_factory=dict)


class _Run(Sequence[Any]):
    """Rows ``first`` to ``first + count`` of one study, made on demand."""

    def __init__(self, make: Callable[[int], Record], first: int, count: int) -> None:
        self._make = make
        self._first = first
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> _Run: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._count)
            if step != 1:
                raise ValueError("only contiguous slices are supported")
            return _Run(self._make, self._first + start, max(0, stop - start))
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._make(self._first + index)

    def __iter__(self) -> Iterator[Any]:
        return map(self._make, range(self._first, self._first + self._count))


class IdrSource:
    """A source computing the rows of IDR-shaped studies from their ids."""

    def __init__(
        self,
        catalog: Catalog,
        studies: list[Study],
        scale: float,
        groups: dict[str, int],
        owners: list[int],
    ) -> None:
        self._placed: list[_Placed] = []
        self._starts: dict[str, list[int]] = {}
        self._holders: dict[str, list[_Placed]] = {}
        for number, study in enumerate(studies):
            self._place(catalog, study, scale, groups, owners[number % len(owners)])

    def _place(
        self,
        catalog: Catalog,
        study: Study,
        scale: float,
        groups: dict[str, int],
        owner_id: int,
    ) -> None:
        images = _scaled(study.images, scale)
        sets = _scaled(study.sets, scale)
        wells = max(_scaled(study.wells, scale), sets) if study.is_screen else 0
        if study.is_screen:
            counts = {
                "Screen": 1,
                "Plate": sets,
                "ScreenPlateLink": sets,
                "Well": wells,
                "Image": images if wells else 0,
                "WellSample": images if wells else 0,
            }
        else:
            counts = {
                "Project": 1,
                "Dataset": sets,
                "ProjectDatasetLink": sets,
                "Image": images if sets else 0,
                "DatasetImageLink": images if sets else 0,
            }
        placed = _Placed(
            study,
            groups[study.sample_type],
            owner_id,
            catalog.allocate_events(),
            f"{study.name}/{study.container}".lower(),
        )
        for kind, count in counts.items():
            if count:
                placed.first[kind] = catalog.allocate(kind, count)
                placed.count[kind] = count
                self._starts.setdefault(kind, []).append(placed.first[kind])
                self._holders.setdefault(kind, []).append(placed)
        self._placed.append(placed)

    # -- the Source protocol -----------------------------------------------

    def get(self, kind: str, id: int) -> Record | None:
        """Return the row of ``kind`` with ``id``, or None."""
        found = self._locate(kind, id)
        return None if found is None else self._make(kind, found, id)

    def segments(self, kind: str) -> list[Segment]:
        """Return every row of ``kind``: one lazy segment per study."""
        return [
            self._segment(kind, placed, placed.first[kind], placed.count[kind])
            for placed in self._holders.get(kind, ())
        ]

    def referrers(self, kind: str, field: str, target_id: int) -> Segment:
        """Return the rows of ``kind`` whose ``field`` is ``target_id``."""
        parent_kind = _PARENT_KINDS.get((kind, field))
        placed = None if parent_kind is None else self._locate(parent_kind, target_id)
        if placed is None or kind not in placed.first:
            return Segment(())
        index = target_id - placed.first[parent_kind]  # type: ignore[index]
        first, count = self._children(kind, field, placed, index)
        return self._segment(kind, placed, placed.first[kind] + first, count)

    def names_follow_ids(self, kind: str) -> bool:
        """Names sort like ids, studies being placed in name order."""
        return True

    # -- arithmetic --------------------------------------------------------

    def _locate(self, kind: str, id: int) -> _Placed | None:
        starts = self._starts.get(kind)
        if not starts:
            return None
        at = bisect.bisect_right(starts, id) - 1
        if at < 0:
            return None
        placed = self._holders[kind][at]
        return placed if id < placed.first[kind] + placed.count[kind] else None

    def _children(
        self, kind: str, field: str, placed: _Placed, index: int
    ) -> tuple[int, int]:
        """First local index and count of the rows pointing at a parent."""
        count = placed.count
        if field == "child" or (kind == "WellSample" and field == "image"):
            return index, 1
        if kind in ("ScreenPlateLink", "ProjectDatasetLink"):
            return 0, count[kind]
        if kind == "DatasetImageLink":
            return _share(index, count[kind], count["Dataset"])
        if kind == "Well":
            return _share(index, count["Well"], count["Plate"])
        return _share(index, count["WellSample"], count["Well"])

    def _segment(self, kind: str, placed: _Placed, first: int, count: int) -> Segment:
        rows = _Run(lambda id: self._make(kind, placed, id), first, count)
        referenced = _REFERENCED.get((kind, placed.study.is_screen))
        return Segment(rows, placed.group_id, placed.owner_id, referenced)

    def _make(self, kind: str, placed: _Placed, id: int) -> Record:
        first, count = placed.first, placed.count
        index = id - first[kind]
        owner, group, event = placed.owner_id, placed.group_id, placed.event_id
        label = placed.label
        if kind in ("Screen", "Project"):
            return Entity(kind, id, owner, group, event, label)
        if kind in ("Plate", "Dataset"):
            name = f"{label}/{kind.lower()}-{index + 1:05d}"
            return Entity(kind, id, owner, group, event, name)
        if kind == "Image":
            name = f"{label}/image-{index + 1:08d}.tif"
            return Entity(kind, id, owner, group, event, name, dims=placed.study.dims)
        if kind == "Well":
            plate = _part(index, count["Well"], count["Plate"])
            start, size = _share(plate, count["Well"], count["Plate"])
            columns = 24 if size > 96 else 12 if size > 24 else max(size, 1)
            row, column = divmod(index - start, columns)
            return Well(id, owner, group, event, first["Plate"] + plate, row, column)
        if kind == "WellSample":
            well = _part(index, count["WellSample"], count["Well"])
            image = first["Image"] + index
            return WellSample(id, owner, group, event, first["Well"] + well, image)
        if kind == "ScreenPlateLink":
            parent, child = first["Screen"], first["Plate"] + index
        elif kind == "ProjectDatasetLink":
            parent, child = first["Project"], first["Dataset"] + index
        else:
            dataset = _part(index, count["DatasetImageLink"], count["Dataset"])
            parent, child = first["Dataset"] + dataset, first["Image"] + index
        return Link(kind, id, owner, group, event, parent, child)


# what points at every row (True) or at none (False), per kind and whether
# the study is a screen: every image is in a well or in a dataset, never both
_REFERENCED = {
    ("Image", True): {
        ("WellSample", "image"): True,
        ("DatasetImageLink", "child"): False,
    },
    ("Image", False): {
        ("WellSample", "image"): False,
        ("DatasetImageLink", "child"): True,
    },
    ("Plate", True): {("ScreenPlateLink", "child"): True},
    ("Dataset", False): {("ProjectDatasetLink", "child"): True},
}

# the kind a referrer field points at
_PARENT_KINDS = {
    ("ScreenPlateLink", "parent"): "Screen",
    ("ScreenPlateLink", "child"): "Plate",
    ("ProjectDatasetLink", "parent"): "Project",
    ("ProjectDatasetLink", "child"): "Dataset",
    ("DatasetImageLink", "parent"): "Dataset",
    ("DatasetImageLink", "child"): "Image",
    ("Well", "plate"): "Plate",
    ("WellSample", "well"): "Well",
    ("WellSample", "image"): "Image",
}


def idr_catalog(scale: float = 1.0) -> Catalog:
    """Build a catalog shaped like the IDR, with counts times ``scale``.

    Raises ValueError for a scale that is not positive.
    """
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be positive, not {scale!r}")
    studies = read_studies()
    catalog = Catalog()
    groups = {}
    for sample_type in sorted({s.sample_type for s in studies}):
        group = catalog.add_group(
            f"idr-{sample_type}",
            READ_ONLY,
            description=f"IDR studies of {sample_type} samples",
        )
        groups[sample_type] = group.id
    members = [catalog.group(gid) for gid in groups.values()]
    owners = [
        catalog.add_user(f"submitter{n}", f"submitter{n}-pw", groups=members).id
        for n in range(1, _SUBMITTERS + 1)
    ]
    catalog.add_user("public", "public", groups=members, first_name="Public")
    catalog.sources.append(IdrSource(catalog, studies, scale, groups, owners))
    return catalog
