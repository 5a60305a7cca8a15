"""The emulator's query engine: IQuery and IContainer answers over a catalog.

:class:`QueryEngine` parses a query once (plans are cached by query text),
then for each call finds the root rows the caller may see, expands the
joins, filters with the ``where`` clause, orders and pages. When the access
path already yields rows in the order asked for (ids, or the children of one
parent by child id), a page stops as soon as it is full; when moreover each
root gives one result and the caller sees a whole group, rows before the
page are skipped by counting, so deep pages over millions of generated rows
stay cheap. Otherwise the matching rows are collected and sorted.

Visibility follows the server: a caller sees the groups it belongs to
(group -1 means all of them, another group it is not in raises
SecurityViolation unless it is an admin); in a private group a member who
does not lead it sees only its own rows; admins see everything in the
group asked (-1: everything). Experimenters and groups are visible to all.

Only ``offset`` and ``limit`` of ``Parameters.theFilter`` are applied, as
the server does for HQL queries; owner filters belong in the query.

Known limits: no ``group by``, ``having``, arithmetic, ``case``, ``new
map(...)`` or several entities in ``from``; orderings the access path does
not give sort at most :data:`~aiomero.testing.run.SORT_LIMIT` rows; a
condition other than on an id or a parent id scans the rows of the entity
(in bounded memory, but one row at a time).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import omero
import omero.model
from omero.rtypes import robject, unwrap

from aiomero.testing import hql
from aiomero.testing.compiler import compile_query
from aiomero.testing.objects import ModelFactory
from aiomero.testing.plan import Plan, PlanError
from aiomero.testing.results import aggregate_row, build_objects
from aiomero.testing.run import Run
from aiomero.testing.schema import COLL, SCHEMA, kind_of
from aiomero.testing.store import Segment

if TYPE_CHECKING:
    from aiomero.testing.catalog import Caller, Catalog

__all__ = ["QueryEngine"]

_PLAN_CACHE_SIZE = 512


class QueryEngine:
    """Answers queries over one catalog; see the module documentation.

    Every method raises omero.ApiUsageException for a query it does not
    understand (naming what), omero.SecurityViolation for a group the
    caller may not read and omero.ValidationException for a parameter of
    the wrong type.
    """

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._plans: dict[str, Plan] = {}

    def plan(self, text: str) -> Plan:
        """Return the cached plan of query ``text``, compiling it if new."""
        plan = self._plans.get(text)
        if plan is None:
            try:
                plan = compile_query(self.catalog, hql.parse(text))
            except (hql.HqlError, PlanError) as error:
                raise omero.ApiUsageException(
                    message=f"unsupported query: {error}"
                ) from None
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[text] = plan
        return plan

    def find_all(
        self, text: str, params: Any, caller: Caller, at_most: int | None = None
    ) -> list[Any]:
        """Answer findAllByQuery: the loaded objects the query selects.

        ``at_most`` caps the rows when the parameters set no limit.
        """
        plan = self.plan(text)
        if plan.select_slot is None:
            raise omero.ApiUsageException(
                message="findAllByQuery needs a query selecting one entity"
            )
        values, offset, limit = _parameters(params)
        run = Run(self.catalog, caller, values)
        units = _page(run.units(plan, [], offset), at_most if limit is None else limit)
        return build_objects(plan, units, ModelFactory(self.catalog, caller), run)

    def find_one(self, text: str, params: Any, caller: Caller) -> Any:
        """Answer findByQuery: the one object selected, or None."""
        found = self.find_all(text, params, caller, at_most=2)
        if len(found) > 1:
            raise omero.ApiUsageException(
                message="query returned more than one row where one was expected"
            )
        return found[0] if found else None

    def find(self, class_name: str, id: int, caller: Caller) -> Any:
        """Answer IQuery.find: the object ``class_name`` ``id``, or None."""
        kind = kind_of(class_name)
        if kind is None:
            raise omero.ApiUsageException(message=f"unknown class {class_name!r}")
        params = {"id": id}
        plan = self.plan(f"select obj from {kind} obj where obj.id = :id")
        run = Run(self.catalog, caller, params)
        units = list(run.units(plan, []))
        found = build_objects(plan, units, ModelFactory(self.catalog, caller), run)
        return found[0] if found else None

    def projection(self, text: str, params: Any, caller: Caller) -> list[list[Any]]:
        """Answer IQuery.projection: rows of omero.rtypes cells or None."""
        plan = self.plan(text)
        values, offset, limit = _parameters(params)
        run = Run(self.catalog, caller, values)
        factory = ModelFactory(self.catalog, caller)
        if plan.aggregates:
            return _page(iter([aggregate_row(plan, run)]), limit)[offset:]
        rows = []
        # equal cells share one rtype: cheaper to build and to marshal
        cells: list[dict[Any, Any]] = [{} for _column in plan.columns]
        for unit in _page(run.units(plan, [], offset), limit):
            if plan.select_slot is not None:
                value, _bindings = unit
                rows.append([robject(factory.row(plan.select_slot.kind, value))])
                continue
            row: list[Any] = []
            for (fn, (sort, target)), made in zip(plan.columns, cells, strict=True):
                value = fn(unit, run)
                if value is None:
                    row.append(None)
                elif sort == "entity":
                    row.append(robject(factory.row(target, value)))
                else:
                    cell = made.get(value)
                    if cell is None:
                        wrap = target if sort == "scalar" else omero.rtypes.wrap
                        cell = made[value] = wrap(value)
                    row.append(cell)
            rows.append(row)
        return rows

    def images(self, root_type: str, ids: list[int], caller: Caller) -> list[Any]:
        """Answer IContainer.getImages: images under ``ids`` of ``root_type``,
        with their pixels loaded."""
        kind = kind_of(root_type)
        while kind in _DOWNWARDS:
            query, kind = _DOWNWARDS[kind]
            ids = [row[0].val for row in self.projection(query, _ids(ids), caller)]
        joins = _IMAGES_UNDER.get(kind or "")
        if joins is None:
            raise omero.ApiUsageException(message=f"no images under {root_type!r}")
        query = (
            "select obj from Image obj left outer join fetch obj.pixels as pixels "
            f"left outer join fetch pixels.pixelsType {joins} in (:ids)"
        )
        return self.find_all(query, _ids(ids), caller)

    def collection_count(
        self, type_name: str, prop: str, ids: list[int], options: Any, caller: Caller
    ) -> dict[int, int]:
        """Answer IContainer.getCollectionCount: visible elements per id."""
        kind = kind_of(type_name)
        found = SCHEMA.get(kind or "", {}).get(prop.rsplit(".", 1)[-1])
        if found is None or found.sort != COLL or found.via is None or kind is None:
            raise omero.ApiUsageException(message=f"cannot count {type_name}.{prop}")
        run = Run(self.catalog, caller)
        counts = {}
        for id in ids:
            parent = self.catalog.get(kind, id)
            if parent is None or not run.visible(parent):
                counts[id] = 0
                continue
            counts[id] = sum(
                _visible_in(run, segment)
                for segment in self.catalog.referrers(*found.via, id)
            )
        return counts

    def visible_count(self, class_name: str, caller: Caller) -> int:
        """Return how many rows of ``class_name`` the caller sees."""
        kind = kind_of(class_name)
        if kind is None:
            raise omero.ApiUsageException(message=f"unknown class {class_name!r}")
        run = Run(self.catalog, caller)
        if "details.group" not in SCHEMA.get(kind, {}):
            return sum(len(s.rows) for s in self.catalog.segments(kind))
        return sum(_visible_in(run, s) for s in self.catalog.segments(kind))


# how getImages walks down from a container to datasets or wells
_DOWNWARDS = {
    "Project": (
        "select l.child.id from ProjectDatasetLink l where l.parent.id in (:ids)",
        "Dataset",
    ),
    "Screen": (
        "select l.child.id from ScreenPlateLink l where l.parent.id in (:ids)",
        "Plate",
    ),
    "Plate": ("select w.id from Well w where w.plate.id in (:ids)", "Well"),
}

_IMAGES_UNDER = {
    "Image": "where obj.id",
    "Dataset": "join obj.datasetLinks as l where l.parent.id",
    "Well": "join obj.wellSamples as ws where ws.well.id",
}


def _ids(ids: list[int]) -> Any:
    params = omero.sys.ParametersI()
    params.addIds(ids)
    return params


def _visible_in(run: Run, segment: Segment) -> int:
    if run.sees_whole(segment.group_id):
        return len(segment.rows)
    return sum(1 for row in segment.rows if run.visible(row))


def _page(units: Iterator[Any], limit: int | None) -> list[Any]:
    if limit is None:
        return list(units)
    page: list[Any] = []
    for unit in units:
        if len(page) >= limit:
            break
        page.append(unit)
    return page


def _parameters(params: Any) -> tuple[dict[str, Any], int, int | None]:
    """Unwrap ``omero.sys.Parameters`` into values, offset and limit."""
    if params is None:
        return {}, 0, None
    values = {name: _plain(value) for name, value in (params.map or {}).items()}
    offset, limit = 0, None
    page = params.theFilter
    if page is not None:
        offset = max(int(unwrap(page.offset) or 0), 0)
        limit = None if page.limit is None else max(int(unwrap(page.limit)), 0)
    return values, offset, limit


def _plain(value: Any) -> Any:
    if isinstance(value, omero.model.IObject):
        return None if value.id is None else value.id.val
    if isinstance(value, omero.RType):
        value = unwrap(value)
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, omero.model.IObject):
        return _plain(value)
    if value is None or isinstance(value, (int, str, float, bool)):
        return value
    raise omero.ValidationException(
        message=f"unsupported parameter type {type(value).__name__}"
    )
