"""Turn a parsed :class:`~aiomero.testing.hql.Query` into a :class:`Plan`.

Expressions follow SQL's three-valued logic: a comparison with null is
null, ``and``/``or``/``not`` treat null as unknown, and a row passes a
``where`` only when it is true. Entities compare by id (``ws.image =
obj.id``). Parameters are read from the run, so one plan serves every call
with the same query text.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from omero.rtypes import rint

from aiomero.testing import hql
from aiomero.testing.plan import (
    Access,
    Aggregate,
    Conjunct,
    Fn,
    Join,
    Layout,
    Plan,
    PlanError,
    Scope,
    Slot,
    can_find_referrers,
)
from aiomero.testing.schema import COLL, REF, SCHEMA

if TYPE_CHECKING:
    from aiomero.testing.catalog import Catalog
    from aiomero.testing.run import Run

__all__ = ["all_of", "compile_query"]

_AGGREGATES = frozenset({"count", "min", "max", "sum", "minindex", "maxindex"})

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def compile_query(
    catalog: Catalog,
    query: hql.Query,
    outer: Scope | None = None,
    layout: Layout | None = None,
) -> Plan:
    """Compile ``query``; raise PlanError for what the emulator cannot do."""
    layout = layout or Layout()
    scope = Scope(catalog, query.entity, query.alias, outer, layout)
    compiler = _Compiler(catalog, scope)
    joins = [compiler.join(join) for join in query.joins]
    access = compiler.access(query.where, joins)
    conjuncts = []
    for item in _conjuncts(query.where):
        is_access = item is access.conjunct
        if is_access and access.how in ("id", "referrers"):
            # the access finds exactly the rows this condition asks for
            continue
        fn = compiler.predicate(item)
        conjuncts.append(Conjunct(fn, compiler.segment_test(item), is_access))
    where = all_of([c.fn for c in conjuncts])

    select_slot = None
    columns: list[tuple[Fn, Any]] = []
    aggregates: list[Aggregate] = []
    items = query.select
    alias = _single_alias(scope, items)
    if items is None:
        select_slot = scope.root
    elif alias is not None:
        select_slot = alias
    elif any(isinstance(i, hql.Func) and i.name in _AGGREGATES for i in items):
        aggregates = [compiler.aggregate(item) for item in items]
    else:
        columns = [compiler.operand(item) for item in items]

    order = [(compiler.operand(o.expr)[0], o.descending) for o in query.order]
    keys = [None if o.descending else scope.canonical(o.expr) for o in query.order]
    fetches = [j for j in joins if j.fetch and not j.prop_name.startswith("details.")]
    plan = Plan(
        slots=scope.slots,
        joins=joins,
        where=where,
        conjuncts=conjuncts,
        access=access,
        select_slot=select_slot,
        columns=columns,
        aggregates=aggregates,
        # entity results are distinct rows already
        distinct=query.distinct and select_slot is None,
        order=order,
        order_keys=keys,
        fetches=fetches,
        layout=layout,
    )
    return plan


def _single_alias(scope: Scope, items: tuple[Any, ...] | None) -> Slot | None:
    """The slot of a select list that is one alias, such as ``select obj``."""
    if not items or len(items) != 1:
        return None
    item = items[0]
    if not isinstance(item, hql.Path) or len(item.parts) != 1:
        return None
    found = scope.lookup(item.parts[0])
    return None if found is None else found[0]


def _as_key(fn: Fn, kind_type: Any) -> Fn:
    """Make an entity-valued function return the entity's id."""
    if kind_type[0] != "entity" or kind_type[1] == "Event":
        return fn
    return lambda b, r: None if (v := fn(b, r)) is None else v.id


class _Compiler:
    def __init__(self, catalog: Catalog, scope: Scope) -> None:
        self.catalog = catalog
        self.scope = scope
        self.subplans: dict[int, Plan] = {}

    # -- joins -------------------------------------------------------------

    def join(self, join: hql.Join) -> Join:
        holder, local, props = self.scope.walk(join.path)
        if not local or not props:
            raise PlanError(f"cannot join {join.path}")
        for name, prop in props[:-1]:
            if prop.sort != REF:
                raise PlanError(f"cannot join through {name!r} (in {join.path})")
        name, prop = props[-1]
        if prop.sort not in (REF, COLL):
            raise PlanError(f"cannot join {join.path}: not an entity")
        if join.fetch and len(props) > 1:
            raise PlanError(f"cannot fetch through a path: {join.path}")
        root_path = None
        if prop.sort == REF and holder.root_path is not None:
            names = [holder.root_path] if holder.root_path else []
            root_path = ".".join(names + [n for n, _p in props])
        slot = self.scope.add(join.alias, prop.target, root_path)
        return Join(
            slot=slot,
            holder=holder,
            getters=[p.get for _n, p in props],
            prop_name=name,
            many=prop.sort == COLL,
            left=join.left,
            fetch=join.fetch,
        )

    # -- finding the roots -------------------------------------------------

    def access(self, where: Any, joins: list[Join]) -> Access:
        """Pick the cheapest way to the root rows."""
        best: Access | None = None
        for conjunct in _conjuncts(where):
            found = self.access_by(conjunct, joins)
            if found is not None and (
                best is None or _RANK[found.how] < _RANK[best.how]
            ):
                best = found
        return best or Access("scan")

    def segment_test(self, item: Any) -> tuple[str, str, bool] | None:
        """Recognise ``[not] exists`` of a row pointing at the root.

        Return the pointing kind, its field and whether the test is negated,
        or None for any other condition.
        """
        negated = isinstance(item, hql.Not)
        if negated:
            item = item.item
        sub = self.subplans.get(id(item)) if isinstance(item, hql.Exists) else None
        if sub is None or sub.joins or sub.residual or sub.access.how != "referrers":
            return None
        others = sub.access.others
        if len(others) != 1 or self.scope.canonical(others[0]) not in ("", "id"):
            return None
        assert sub.access.field is not None
        return sub.root.kind, sub.access.field, negated

    def access_by(self, conjunct: Any, joins: list[Join]) -> Access | None:
        pairs: list[tuple[Any, tuple[Any, ...]]]
        if isinstance(conjunct, hql.Compare) and conjunct.op == "=":
            pairs = [
                (conjunct.left, (conjunct.right,)),
                (conjunct.right, (conjunct.left,)),
            ]
        elif isinstance(conjunct, hql.In) and not conjunct.negated:
            if isinstance(conjunct.items, hql.Query):
                return None
            pairs = [(conjunct.left, conjunct.items)]
        else:
            return None
        for target, others in pairs:
            if not isinstance(target, hql.Path) or any(
                self.scope.is_local(o) for o in others
            ):
                continue
            access = self.access_for(target, others, joins)
            if access is not None:
                access.conjunct, access.others = conjunct, others
                return access
        return None

    def access_for(
        self, target: hql.Path, others: tuple[Any, ...], joins: list[Join]
    ) -> Access | None:
        slot, local, props = self.scope.walk(target)
        if not local:
            return None
        names = [name for name, _prop in props]
        if names and names[-1] == "id":
            names = names[:-1]
        values = self.values(others)
        root = self.scope.root
        if slot is root:
            if not names:
                return Access("id", values)
            if len(names) == 1 and can_find_referrers(root.kind, names[0]):
                return Access("referrers", values, field=names[0])
            return None
        join = next((j for j in joins if j.slot is slot), None)
        if join is None or not join.many or join.holder is not root:
            return None
        via = SCHEMA[root.kind][join.prop_name].via
        if via is None:
            return None
        if not names:
            return Access("reverse", values, via=via, join=join)
        if len(names) == 1 and can_find_referrers(via[0], names[0]):
            return Access("reverse", values, field=names[0], via=via, join=join)
        return None

    def values(self, others: tuple[Any, ...]) -> Fn:
        """Compile the wanted values: ids, from parameters, literals or paths."""
        fns = [self.operand(o) for o in others]
        keyed = [_as_key(fn, kind_type) for fn, kind_type in fns]

        def collect(b: list[Any], r: Run) -> list[Any]:
            found: list[Any] = []
            for fn in keyed:
                value = fn(b, r)
                if isinstance(value, (list, tuple, set, frozenset)):
                    found.extend(value)
                elif value is not None:
                    found.append(value)
            return found

        return collect

    # -- expressions -------------------------------------------------------

    def operand(self, expr: Any) -> tuple[Fn, Any]:
        """Compile a value: a path, a parameter, a literal or a function."""
        if isinstance(expr, hql.Path):
            return self.scope.path(expr)
        if isinstance(expr, hql.Param):
            name = expr.name
            return (lambda _b, r: r.param(name)), ("param", None)
        if isinstance(expr, hql.Literal):
            value = expr.value
            return (lambda _b, _r: value), ("literal", None)
        if isinstance(expr, hql.Func):
            return self.function(expr)
        raise PlanError(f"expected a value, found {type(expr).__name__.lower()}")

    def function(self, expr: hql.Func) -> tuple[Fn, Any]:
        if expr.name in ("lower", "upper"):
            inner, kind_type = self.operand(expr.args[0])
            change = str.lower if expr.name == "lower" else str.upper
            return (
                lambda b, r: None if (v := inner(b, r)) is None else change(v)
            ), kind_type
        if expr.name == "index":
            return self.index_of(expr)
        raise PlanError(f"{expr.name}() is only allowed in the select list")

    def index_of(self, expr: hql.Func) -> tuple[Fn, Any]:
        arg = expr.args[0] if expr.args else None
        if not isinstance(arg, hql.Path) or len(arg.parts) != 1:
            raise PlanError(f"{expr.name}() takes a joined alias")
        found = self.scope.lookup(arg.parts[0])
        if found is None:
            raise PlanError(f"{expr.name}() takes a joined alias, not {arg}")
        index, layout = found[0].index, self.scope.layout
        return (lambda b, _r: b[layout.count + index]), ("scalar", rint)

    def aggregate(self, item: Any) -> Aggregate:
        if not isinstance(item, hql.Func) or item.name not in _AGGREGATES:
            raise PlanError("cannot mix aggregates and plain columns without group by")
        if not item.args:
            return Aggregate(item.name, None, ("scalar", None), False, True)
        if item.name in ("minindex", "maxindex"):
            fn, kind_type = self.index_of(item)
            return Aggregate(item.name, fn, kind_type, item.distinct, False)
        fn, kind_type = self.operand(item.args[0])
        of_root = item.name == "count" and self.scope.canonical(item.args[0]) in (
            "",
            "id",
        )
        if item.name == "count":
            fn = _as_key(fn, kind_type)
        return Aggregate(item.name, fn, kind_type, item.distinct, of_root)

    def predicate(self, expr: Any) -> Fn:
        """Compile a condition to a function returning True, False or None."""
        if isinstance(expr, hql.And):
            parts = [self.predicate(e) for e in expr.items]
            return _all(parts)
        if isinstance(expr, hql.Or):
            parts = [self.predicate(e) for e in expr.items]
            return _any(parts)
        if isinstance(expr, hql.Not):
            inner = self.predicate(expr.item)
            return lambda b, r: None if (v := inner(b, r)) is None else not v
        if isinstance(expr, hql.Compare):
            return self.compare(expr)
        if isinstance(expr, hql.In):
            return self.membership(expr)
        if isinstance(expr, hql.Like):
            return self.like(expr)
        if isinstance(expr, hql.IsNull):
            fn, _t = self.operand(expr.operand)
            negated = expr.negated
            return lambda b, r: (fn(b, r) is None) != negated
        if isinstance(expr, hql.Exists):
            sub = compile_query(self.catalog, expr.query, self.scope, self.scope.layout)
            self.subplans[id(expr)] = sub
            return lambda b, r: r.exists(sub, b)
        raise PlanError(f"a {type(expr).__name__.lower()} is not a condition")

    def compare(self, expr: hql.Compare) -> Fn:
        left = _as_key(*self.operand(expr.left))
        right = _as_key(*self.operand(expr.right))
        test = _COMPARE[expr.op]

        def compare(b: list[Any], r: Run) -> bool | None:
            a, c = left(b, r), right(b, r)
            if a is None or c is None:
                return None
            return r.compare(test, a, c)

        return compare

    def membership(self, expr: hql.In) -> Fn:
        left = _as_key(*self.operand(expr.left))
        negated = expr.negated
        if isinstance(expr.items, hql.Query):
            sub = compile_query(self.catalog, expr.items, self.scope, self.scope.layout)
            if sub.select_slot is None and len(sub.columns) != 1:
                raise PlanError("a subquery after 'in' must select one column")

            def in_subquery(b: list[Any], r: Run) -> bool | None:
                value = left(b, r)
                return None if value is None else (value in r.column(sub, b)) != negated

            return in_subquery

        values = self.values(expr.items)
        constant = not any(self.scope.is_local(item) for item in expr.items)
        key = object()

        def in_list(b: list[Any], r: Run) -> bool | None:
            value = left(b, r)
            if value is None:
                return None
            wanted = r.cache.get(key) if constant else None
            if wanted is None:
                wanted = frozenset(values(b, r))
                if constant:
                    r.cache[key] = wanted
            return (value in wanted) != negated

        return in_list

    def like(self, expr: hql.Like) -> Fn:
        left, _t = self.operand(expr.left)
        pattern, _t = self.operand(expr.pattern)
        negated = expr.negated

        def like(b: list[Any], r: Run) -> bool | None:
            value, wanted = left(b, r), pattern(b, r)
            if value is None or wanted is None:
                return None
            return (
                _like_regex(str(wanted)).fullmatch(str(value)) is not None
            ) != negated

        return like


_RANK = {"id": 0, "referrers": 1, "reverse": 2, "scan": 3}

_LIKE_CACHE: dict[str, re.Pattern[str]] = {}


def _like_regex(pattern: str) -> re.Pattern[str]:
    found = _LIKE_CACHE.get(pattern)
    if found is None:
        parts = (
            ".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern
        )
        found = re.compile("".join(parts), re.DOTALL)
        if len(_LIKE_CACHE) < 1024:
            _LIKE_CACHE[pattern] = found
    return found


def _conjuncts(where: Any) -> list[Any]:
    if where is None:
        return []
    return list(where.items) if isinstance(where, hql.And) else [where]


def all_of(parts: list[Fn]) -> Fn | None:
    """Return a function true when all ``parts`` are, or None for no parts."""
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else _all(parts)


def _all(parts: list[Fn]) -> Fn:
    def all_of(b: list[Any], r: Run) -> bool | None:
        result: bool | None = True
        for part in parts:
            value = part(b, r)
            if value is False:
                return False
            if value is None:
                result = None
        return result

    return all_of


def _any(parts: list[Fn]) -> Fn:
    def any_of(b: list[Any], r: Run) -> bool | None:
        result: bool | None = False
        for part in parts:
            value = part(b, r)
            if value is True:
                return True
            if value is None:
                result = None
        return result

    return any_of
