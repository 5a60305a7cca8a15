"""One execution of a query plan: what the caller sees, and the rows found.

A :class:`Run` finds a plan's root rows through its access path, expands the
joins into bindings, keeps those the ``where`` clause accepts and yields the
results in order, passing over the rows before a page by counting when it
can (see :mod:`aiomero.testing.query`).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import omero

from aiomero.testing.compiler import all_of
from aiomero.testing.derived import Mapped
from aiomero.testing.plan import Fn, Plan
from aiomero.testing.results import order_is_natural
from aiomero.testing.store import Segment

if TYPE_CHECKING:
    from aiomero.testing.catalog import Caller, Catalog

__all__ = ["SORT_LIMIT", "Run", "identity"]

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
        root = plan.root.index
        blank = outer.copy() if outer else plan.blank()
        decides = segment_decides(plan)
        for segment in self.roots(plan, outer):
            rows = segment.rows
            where, exact = plan.where, not plan.residual
            if decides and segment.referenced:
                decided = decide_for_segment(plan, segment.referenced)
                if decided is None:
                    continue
                where, exact = decided
            if (
                exact
                and plan.joins_keep_one_row
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
                    key = (select.kind, identity(value))
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
                    key = tuple(identity(fn(b, self)) for fn, _t in plan.columns)
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
            return frozenset(identity(value) for value, _b in self.units(plan, outer))
        fn = plan.columns[0][0]
        return frozenset(identity(fn(b, self)) for b in self.units(plan, outer))


def segment_decides(plan: Plan) -> bool:
    """Whether some condition of ``plan`` may be settled per segment."""
    return any(c.test is not None for c in plan.conjuncts)


def decide_for_segment(
    plan: Plan, referenced: Mapping[tuple[str, str], bool]
) -> tuple[Fn | None, bool] | None:
    """Settle the ``[not] exists`` conditions a segment knows the answer to.

    Return None when one is false for every row of the segment, else the
    condition left to check row by row and whether nothing is left beyond
    what the access path answers.
    """
    kept = []
    for conjunct in plan.conjuncts:
        test = conjunct.test
        known = None if test is None else referenced.get((test[0], test[1]))
        if test is None or known is None:
            kept.append(conjunct)
        elif known == test[2]:
            # "not exists" where every row has one, or "exists" where none has
            return None
    exact = all(c.is_access for c in kept)
    return all_of([c.fn for c in kept]), exact


def _first(unit: Any) -> list[Any]:
    binding: list[Any] = unit[1][0] if isinstance(unit, tuple) else unit
    return binding


def identity(value: Any) -> Any:
    """Return a plain value as is, and an entity row as its id."""
    if value is None or isinstance(value, (int, str, float, bool)):
        return value
    return value.id


def _sort_key(value: Any) -> tuple[bool, Any]:
    # nulls sort last going up and first going down, as in PostgreSQL
    return (value is None, identity(value) if value is not None else 0)
