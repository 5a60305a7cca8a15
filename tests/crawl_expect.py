"""What a crawl should find in an emulator's catalog, worked out from the
catalog's own rows and visibility rules, independently of the crawler."""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable
from typing import Any

from aiomero.crawl import RECORD_KEYS, well_label
from aiomero.testing import Caller, Catalog
from aiomero.testing.query import Run

Record = tuple[Any, ...]


def parse(lines: Iterable[bytes | str]) -> collections.Counter[Record]:
    """Records of JSON lines, counted (a duplicate counts twice)."""
    found: collections.Counter[Record] = collections.Counter()
    for line in lines:
        if not line.strip():
            continue
        data = json.loads(line)
        found[tuple(data[key] for key in RECORD_KEYS)] += 1
    return found


def expected(
    catalog: Catalog, user: str, group: int = -1, orphans: bool = True
) -> collections.Counter[Record]:
    """Every record a crawl by ``user`` in ``group`` must write, once."""
    run = Run(catalog, Caller(catalog.user_by_name(user), group))
    people = {u.id: u.name for u in catalog.users}
    groups = {g.id: g.name for g in catalog.groups}

    def rows(kind: str) -> list[Any]:
        return [
            row
            for segment in catalog.segments(kind)
            for row in segment.rows
            if run.visible(row)
        ]

    def record(kind: str, row: Any, name: Any, parent: tuple[Any, Any]) -> Record:
        owner, home = row.owner_id, row.group_id
        return (kind, row.id, name, *parent, owner, people[owner], home, groups[home])

    found: collections.Counter[Record] = collections.Counter()
    by_id = {kind: {r.id: r for r in rows(kind)} for kind in _KINDS}
    none = (None, None)

    def tree(top: str, link: str, middle: str) -> set[int]:
        for row in by_id[top].values():
            found[record(top, row, row.name, none)] += 1
        linked = set()
        for link_row in rows(link):
            parent_id, child_id = link_row.parent_id, link_row.child_id
            if parent_id in by_id[top] and child_id in by_id[middle]:
                child = by_id[middle][child_id]
                found[record(middle, child, child.name, (top, parent_id))] += 1
                linked.add(child_id)
        for oid, row in by_id[middle].items():
            if oid not in linked and orphans:
                found[record(middle, row, row.name, none)] += 1
        return set(by_id[middle]) if orphans else linked

    datasets = tree("Project", "ProjectDatasetLink", "Dataset")
    plates = tree("Screen", "ScreenPlateLink", "Plate")
    for link in rows("DatasetImageLink"):
        if link.parent_id in datasets and link.child_id in by_id["Image"]:
            image = by_id["Image"][link.child_id]
            parent = ("Dataset", link.parent_id)
            found[record("Image", image, image.name, parent)] += 1
    wells = set()
    for well in rows("Well"):
        if well.plate_id in plates:
            label = well_label(well.row, well.column)
            found[record("Well", well, label, ("Plate", well.plate_id))] += 1
            wells.add(well.id)
    for sample in rows("WellSample"):
        if sample.well_id in wells and sample.image_id in by_id["Image"]:
            image = by_id["Image"][sample.image_id]
            found[record("Image", image, image.name, ("Well", sample.well_id))] += 1
    # An image in no dataset and no well, seen by the user as such.
    in_something = {link.child_id for link in rows("DatasetImageLink")} | {
        s.image_id for s in rows("WellSample")
    }
    if orphans:
        for oid, image in by_id["Image"].items():
            if oid not in in_something:
                found[record("Image", image, image.name, none)] += 1
    return found


_KINDS = ("Project", "Dataset", "Image", "Screen", "Plate")
