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

Known limits: no ``group by``, ``having``, arithmetic, ``case`` or joins
of several entities in ``from``; orderings the access path does not give
sort at most :data:`SORT_LIMIT` rows; a condition other than on an id or a
parent id scans the rows of the entity (in a bounded memory, but one row at
a time).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import omero
import omero.model
from omero.rtypes import robject, unwrap

from aiomero.testing import hql
from aiomero.testing.compiler import compile_query
from aiomero.testing.derived import Mapped
from aiomero.testing.objects import ModelFactory
from aiomero.testing.plan import Fn, Plan, PlanError
from aiomero.testing.results import aggregate_row, build_objects, order_is_natural
from aiomero.testing.schema import COLL, SCHEMA, kind_of
from aiomero.testing.store import Segment

if TYPE_CHECKING:
    from aiomero.testing.catalog import Caller, Catalog

__all__ = ["SORT_LIMIT", "QueryEngine", "Run"]

_PLAN_CACHE_SIZE = 512

#: The most rows a query may need sorted: orderings the access path does not
#: give (see :func:`~aiomero.testing.results.order_is_natural`) collect every
#: matching row first.
SORT_LIMIT = 1_000_000


class Run:
    """One execution: the caller's visibility, the parameters, a cache."""

    def __init__(
        self, catalog: Catalog, caller: Caller, params: dict[str, Any] | None = None
    ) -> None:
        self.catalog = catalog
        self.caller = caller
        self.params = params or {}
        self.cache: dict[object, Any] = {}
        user = caller.user
        self.user_id = user.id

        # which groups the caller sees wholly (True) or only its own rows in
        self.everything = user.is_admin and caller.group_id == -1
        groups = user.group_ids if caller.group_id == -1 else [caller.group_id]
        if caller.group_id != -1:
            try:
                catalog.group(caller.group_id)
            except KeyError:
                raise omero.SecurityViolation(
                    message=f"no group {caller.group_id}"
                ) from None
            if not user.is_admin and caller.group_id not in user.group_ids:
                raise omero.SecurityViolation(
                    message=f"user {user.name} is not a member of group "
                    f"{caller.group_id}"
                )
        self.modes = {
            gid: user.is_admin
            or gid in user.leader_of
            or catalog.group(gid).permissions != "rw----"
            for gid in groups
        }

    def visible(self, row: Any) -> bool:
        """Tell whether the caller sees ``row`` (an owned row)."""
        if self.everything:
            return True
        mode = self.modes.get(row.group_id)
        return mode is True or (mode is False and row.owner_id == self.user_id)

    def sees_whole(self, group_id: int | None) -> bool:
        """Tell whether the caller sees every row of group ``group_id``."""
        return self.everything or (
            group_id is not None and self.modes.get(group_id) is True
        )

    def param(self, name: str) -> Any:
        """Return parameter ``name``; raise ApiUsageException if missing."""
        try:
            return self.params[name]
        except KeyError:
            raise omero.ApiUsageException(
                message=f"query parameter :{name} was not given"
            ) from None

    @staticmethod
    def compare(test: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
        """Compare two values; raise ValidationException if they cannot be."""
        try:
            return test(a, b)
        except TypeError:
            raise omero.ValidationException(
                message=f"cannot compare {type(a).__name__} with {type(b).__name__}"
            ) from None

    # -- finding and expanding rows ----------------------------------------

    def roots(self, plan: Plan, outer: list[Any]) -> Iterator[Segment]:
        """Yield the candidate root rows of ``plan``, in access order."""
        access, catalog, kind = plan.access, self.catalog, plan.root.kind
        if access.how == "scan" or access.values is None:
            yield from catalog.segments(kind)
            return
        try:
            values = sorted(set(access.values(outer, self)))
        except TypeError:
            raise omero.ValidationException(
                message="query values of different types"
            ) from None
        if access.how == "id":
            rows = [catalog.get(kind, v) for v in values]
            yield Segment([row for row in rows if row is not None])
        elif access.how == "referrers":
            assert access.field is not None
            for value in values:
                yield from catalog.referrers(kind, access.field, value)
        else:
            yield from self._reverse(plan, values)

    def _reverse(self, plan: Plan, values: list[Any]) -> Iterator[Segment]:
        access, catalog, kind = plan.access, self.catalog, plan.root.kind
        assert access.via is not None
        element_kind, back = access.via
        back_id = operator.attrgetter(f"{back}_id")
        if access.field is None:
            found = [catalog.get(element_kind, v) for v in values]
            elements = [Segment([e for e in found if e is not None])]
        else:
            elements = [
                segment
                for value in values
                for segment in catalog.referrers(element_kind, access.field, value)
            ]
        if len(elements) == 1:
            # one parent: children come in id order, map them lazily
            segment = elements[0]
            rows = Mapped(segment.rows, lambda e: catalog.get(kind, back_id(e)))
            yield Segment(rows, segment.group_id, None)
            return
        # several parents: each root once, by id
        ids = {back_id(element) for segment in elements for element in segment.rows}
        yield Segment([catalog.get(kind, id) for id in sorted(ids)])

    def expand(self, plan: Plan, binding: list[Any]) -> list[list[Any]]:
        """Return the bindings ``binding`` (with its root set) joins into."""
        bindings = [binding]
        catalog, width = self.catalog, plan.width
        for join in plan.joins:
            grown = []
            slot = join.slot.index
            for b in bindings:
                found = b[join.holder.index]
                for get in join.getters:
                    if found is None:
                        break
                    found = get(catalog, found)
                if join.many:
                    rows = [] if found is None else list(found)
                else:
                    rows = [] if found is None else [found]
                if join.slot.owned:
                    rows = [row for row in rows if self.visible(row)]
                if not rows:
                    if join.left:
                        b[slot] = None
                        grown.append(b)
                    continue
                if len(rows) == 1:
                    b[slot], b[width + slot] = rows[0], 0
                    grown.append(b)
                    continue
                for position, row in enumerate(rows):
                    copy = b.copy()
                    copy[slot], copy[width + slot] = row, position
                    grown.append(copy)
            bindings = grown
        return bindings

    def matches(
        self, plan: Plan, outer: list[Any], skip: list[int] | None = None
    ) -> Iterator[tuple[Any, list[Any]]]:
        """Yield ``(root row, passing bindings)`` for roots with any.

        ``skip[0]`` is how many results the consumer still wants to pass
        over; when each root gives one result and the caller sees a whole
        segment, roots are passed over by counting and ``skip[0]`` lowered.
        """
        root, where = plan.root.index, plan.where
        blank = outer.copy() if outer else plan.blank()
        counting = skip is not None and plan.one_result_per_root
        for segment in self.roots(plan, outer):
            rows = segment.rows
            if (
                counting
                and skip is not None
                and skip[0] > 0
                and (not plan.root.owned or self.sees_whole(segment.group_id))
            ):
                if skip[0] >= len(rows):
                    skip[0] -= len(rows)
                    continue
                rows = rows[skip[0] :]
                skip[0] = 0
            for row in rows:
                if row is None or (plan.root.owned and not self.visible(row)):
                    continue
                binding = blank.copy()
                binding[root] = row
                passing = [
                    b
                    for b in (self.expand(plan, binding) if plan.joins else [binding])
                    if where is None or where(b, self) is True
                ]
                if passing:
                    yield row, passing

    def units(self, plan: Plan, outer: list[Any], offset: int = 0) -> Iterator[Any]:
        """Yield the plan's results in order: ``(value, bindings)`` for an
        entity select, a binding otherwise; start ``offset`` results in."""
        if plan.order and not order_is_natural(plan, self, outer):
            collected = []
            for unit in self._units(plan, outer, 0):
                collected.append(unit)
                if len(collected) > SORT_LIMIT:
                    raise omero.ApiUsageException(
                        message=f"the emulator sorts at most {SORT_LIMIT} rows; "
                        "order by id (or name), or ask for fewer rows"
                    )
            for fn, descending in reversed(plan.order):
                collected.sort(key=self._sort_key(fn), reverse=descending)
            yield from collected[offset:]
            return
        yield from self._units(plan, outer, offset)

    def _sort_key(self, fn: Fn) -> Callable[[Any], tuple[bool, Any]]:
        return lambda unit: _sort_key(fn(_first(unit), self))

    def _units(self, plan: Plan, outer: list[Any], offset: int) -> Iterator[Any]:
        select = plan.select_slot
        if select is not None and select is not plan.root:
            # another alias than the root: distinct values, in order met
            seen: dict[tuple[str, int], tuple[Any, list[Any]]] = {}
            for _row, passing in self.matches(plan, outer):
                for b in passing:
                    value = b[select.index]
                    if value is None:
                        continue
                    key = (select.kind, _identity(value))
                    if key in seen:
                        seen[key][1].append(b)
                    else:
                        seen[key] = (value, [b])
            yield from list(seen.values())[offset:]
            return
        distinct: set[tuple[Any, ...]] | None = set() if plan.distinct else None
        skip = [offset]
        for row, passing in self.matches(plan, outer, skip):
            if select is not None:
                if skip[0] > 0:
                    skip[0] -= 1
                    continue
                yield row, passing
                continue
            for b in passing:
                if distinct is not None:
                    key = tuple(_identity(fn(b, self)) for fn, _t in plan.columns)
                    if key in distinct:
                        continue
                    distinct.add(key)
                if skip[0] > 0:
                    skip[0] -= 1
                    continue
                yield b

    # -- subqueries --------------------------------------------------------

    def exists(self, plan: Plan, outer: list[Any]) -> bool:
        """Tell whether subquery ``plan`` has a row for binding ``outer``."""
        return next(self.matches(plan, outer), None) is not None

    def column(self, plan: Plan, outer: list[Any]) -> frozenset[Any]:
        """Return the values (ids for entities) of subquery ``plan``'s column."""
        if plan.select_slot is not None:
            return frozenset(_identity(value) for value, _b in self.units(plan, outer))
        fn = plan.columns[0][0]
        return frozenset(_identity(fn(b, self)) for b in self.units(plan, outer))


def _first(unit: Any) -> list[Any]:
    binding: list[Any] = unit[1][0] if isinstance(unit, tuple) else unit
    return binding


def _identity(value: Any) -> Any:
    return (
        value
        if isinstance(value, (int, str, float, bool)) or value is None
        else (value.id)
    )


def _sort_key(value: Any) -> tuple[bool, Any]:
    # nulls sort last going up and first going down, as in PostgreSQL
    return (value is None, _identity(value) if value is not None else 0)


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
        found = SCHEMA.get(kind or "", {}).get(prop)
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
