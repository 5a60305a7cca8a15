"""Shape a plan's matches into what IQuery returns.

:func:`build_objects` turns entity results into model objects, loading the
collections and references the query join-fetched; :func:`aggregate_row`
computes ``count``, ``min``, ``max``, ``sum`` and ``minIndex``/``maxIndex``;
:func:`order_is_natural` tells whether the access path already yields the
order asked for, so that paging need not sort.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from omero.rtypes import rint, rlong

from aiomero.testing.store import LINK_KINDS

if TYPE_CHECKING:
    from aiomero.testing.objects import ModelFactory
    from aiomero.testing.plan import Plan
    from aiomero.testing.run import Run

__all__ = ["aggregate_row", "build_objects", "order_is_natural"]


def build_objects(
    plan: Plan, units: Iterable[tuple[Any, list[Any]]], factory: ModelFactory, run: Run
) -> list[Any]:
    """Return the model object of each ``(value, bindings)`` result.

    A fetched collection holds the elements met in the result's bindings,
    in order and once each; a fetched reference points at the loaded row.
    Collections and references that were not fetched stay unloaded.
    """
    select = plan.select_slot
    assert select is not None
    loaded: dict[tuple[int, str], tuple[list[Any], set[int]]] = {}
    found = []
    for value, bindings in units:
        found.append(factory.row(select.kind, value))
        for b in bindings:
            for join in plan.fetches:
                holder = b[join.holder.index]
                if holder is None:
                    continue
                holder_obj = factory.row(join.holder.kind, holder)
                child = b[join.slot.index]
                child_obj = (
                    None if child is None else factory.row(join.slot.kind, child)
                )
                if not join.many:
                    factory.set_reference(holder_obj, join.prop_name, child_obj)
                    continue
                key = (id(holder_obj), join.prop_name)
                entry = loaded.get(key)
                if entry is None:
                    entry = loaded[key] = ([], set())
                    factory.set_collection(holder_obj, join.prop_name, ())
                    setattr(holder_obj, f"_{join.prop_name}Seq", entry[0])
                if child_obj is not None and id(child_obj) not in entry[1]:
                    entry[1].add(id(child_obj))
                    entry[0].append(child_obj)
    return found


def aggregate_row(plan: Plan, run: Run) -> list[Any]:
    """Compute the plan's aggregates over all its matches: one row."""
    if plan.one_result_per_root and all(a.of_root for a in plan.aggregates):
        total = _count_roots(plan, run)
        return [rlong(total) for _a in plan.aggregates]
    bindings = list(run.units(plan, []))
    row = []
    for aggregate in plan.aggregates:
        if aggregate.fn is None:
            row.append(rlong(len(bindings)))
            continue
        values = [aggregate.fn(b, run) for b in bindings]
        present = [
            v if isinstance(v, (int, str, float)) else v.id
            for v in values
            if v is not None
        ]
        if aggregate.distinct:
            present = list(dict.fromkeys(present))
        if aggregate.name == "count":
            row.append(rlong(len(present)))
        elif not present:
            row.append(None)
        elif aggregate.name == "sum":
            row.append(rlong(sum(int(v) for v in present)))
        else:
            pick = min if aggregate.name in ("min", "minindex") else max
            sort, wrap = aggregate.type
            if aggregate.name in ("minindex", "maxindex"):
                wrap = rint
            elif sort != "scalar":
                wrap = rlong
            row.append(wrap(pick(present)))
    return row


def _count_roots(plan: Plan, run: Run) -> int:
    total = 0
    for segment in run.roots(plan, []):
        if not plan.root.owned or run.sees_whole(segment.group_id):
            total += len(segment.rows)
        else:
            total += sum(
                1 for row in segment.rows if row is not None and run.visible(row)
            )
    return total


def order_is_natural(plan: Plan, run: Run, outer: list[Any]) -> bool:
    """Tell whether the plan's access yields its ``order by`` unsorted.

    Scans and id look-ups yield rows by id; the rows pointing at parents
    come parent by parent, links by the id at their other end and other
    rows by id. Names count as ordered like ids when the catalog says so.
    A key fixed by a single wanted value is ignored.
    """
    keys = plan.order_keys
    if any(key is None for key in keys):
        return False
    access = plan.access
    count = 0
    if access.values is not None:
        count = len(set(access.values(outer, run)))
    constant: set[str] = set()
    natural: list[tuple[set[str], bool]]
    if access.how == "scan":
        natural = [({"id"}, True)]
    elif access.how == "id":
        if count <= 1:
            return True
        natural = [({"id"}, True)]
    elif access.how == "referrers":
        assert access.field is not None
        first = {access.field, f"{access.field}.id"}
        if plan.root.kind in LINK_KINDS:
            other = "child" if access.field == "parent" else "parent"
            second = {other, f"{other}.id"}
        else:
            second = {"id"}
        natural = [(first, False), (second, True)]
        if count <= 1:
            constant, natural = first, natural[1:]
    else:
        if count > 1:
            return False
        natural = [({"id"}, True)]
    names_too = run.catalog.names_follow_ids(plan.root.kind)

    position = 0
    for key in keys:
        assert key is not None
        if key in constant:
            continue
        alternatives, unique = natural[position]
        if key in alternatives:
            if unique:
                return True
            position += 1
            continue
        if names_too and "id" in alternatives and key in ("name", "lower(name)"):
            continue
        return False
    return True
