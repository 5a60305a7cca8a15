"""Compile a parsed HQL query into a plan of small Python functions.

A plan names one *slot* per alias: the root entity, then one per join (a
subquery's slots follow its outer query's). A row being evaluated is a
*binding*, a list holding each slot's row and, after all slots, each slot's
position in the collection it came from (for ``index()``). Expressions
compile to functions of the binding and of the :class:`~aiomero.testing.
query.Run` of one execution, which holds the parameters and what the caller
may see.

The compiler also picks how to find the root rows (:class:`Access`): by id,
through the rows pointing at a parent (the links of a dataset, the wells of
a plate), backwards through a joined collection (the datasets whose
``projectLinks`` have a given parent), or by scanning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiomero.testing import hql
from aiomero.testing.derived import DERIVED
from aiomero.testing.schema import COLL, OWNED_KINDS, REF, SCHEMA, Prop, kind_of
from aiomero.testing.store import REFERRER_FIELDS

if TYPE_CHECKING:
    from aiomero.testing.catalog import Catalog
    from aiomero.testing.run import Run

__all__ = [
    "UNSET",
    "Access",
    "Aggregate",
    "Conjunct",
    "Fn",
    "Join",
    "Plan",
    "PlanError",
    "Scope",
    "Slot",
    "can_find_referrers",
]

Fn = Callable[[list[Any], "Run"], Any]
Type = tuple[str, Any]

# to-one references that always lead to a visible row: an inner join on one
# never drops a row
_ALWAYS_THERE = frozenset(
    {
        "details.owner",
        "details.group",
        "details.creationEvent",
        "details.updateEvent",
        "parent",
        "child",
        "plate",
        "well",
        "image",
        "pixels",
        "pixelsType",
        "logicalChannel",
    }
)


class PlanError(ValueError):
    """A query that parses but that the emulator cannot answer."""


@dataclass(eq=False)
class Slot:
    """One alias: its kind and, when reached from the root through
    references only, its path from the root (``""`` for the root)."""

    index: int
    alias: str | None
    kind: str
    root_path: str | None
    owned: bool


@dataclass(eq=False)
class Join:
    """A compiled join: fill ``slot`` from ``holder`` through ``getters``,
    the last of which reads ``prop`` (called ``prop_name``)."""

    slot: Slot
    holder: Slot
    getters: list[Callable[[Any, Any], Any]]
    prop_name: str
    many: bool
    left: bool
    fetch: bool

    @property
    def can_drop_rows(self) -> bool:
        """Whether this join may remove a row (an inner join that may miss)."""
        return not self.left and (self.many or self.prop_name not in _ALWAYS_THERE)


@dataclass
class Layout:
    """Slot numbering shared by a query and its subqueries.

    ``lazy`` lists the hidden slots that remember a reference reached by a
    path (``l.child`` in ``l.child.name`` and ``l.child.details.owner.id``),
    so that each is looked up once per binding; they start as :data:`UNSET`.
    """

    count: int = 0
    lazy: list[int] = field(default_factory=list)
    readers: dict[tuple[int, tuple[str, ...]], Fn] = field(default_factory=dict)


#: The value of a hidden slot not computed yet.
UNSET = object()


@dataclass(eq=False)
class Access:
    """How to find the root rows.

    ``how`` is ``"id"`` (``values`` are root ids), ``"referrers"`` (root rows
    whose ``field`` is one of ``values``), ``"reverse"`` (roots reached back
    from the elements of ``join``, a collection of kind ``via[0]`` pointing
    at the root by ``via[1]``; the elements have ``field`` in ``values``,
    or their own id in ``values`` when ``field`` is None) or ``"scan"``.
    """

    how: str
    values: Fn | None = None
    field: str | None = None
    via: tuple[str, str] | None = None
    join: Join | None = None
    conjunct: Any = None
    others: tuple[Any, ...] = ()


@dataclass(eq=False)
class Conjunct:
    """One condition of a ``where ... and ...`` list.

    ``test`` is set for ``[not] exists (select x from K x where x.f = obj)``:
    whether some row of kind ``K`` points at the root by field ``f``, which a
    segment may know for all its rows at once (``Segment.referenced``).
    ``is_access`` marks the condition the access path already answers.
    """

    fn: Fn
    test: tuple[str, str, bool] | None = None
    is_access: bool = False


@dataclass(eq=False)
class Aggregate:
    """An aggregate column: ``count``, ``min``, ``max``, ``sum``, ``minindex``
    or ``maxindex`` of ``fn`` (None for ``count(*)``); ``of_root`` marks a
    count of the root entity itself."""

    name: str
    fn: Fn | None
    type: Type
    distinct: bool
    of_root: bool


@dataclass(eq=False)
class Plan:
    """Everything needed to execute one query."""

    slots: list[Slot]
    joins: list[Join]
    where: Fn | None
    conjuncts: list[Conjunct]
    access: Access
    select_slot: Slot | None
    columns: list[tuple[Fn, Type]]
    aggregates: list[Aggregate]
    distinct: bool
    order: list[tuple[Fn, bool]]
    order_keys: list[str | None]
    fetches: list[Join]
    layout: Layout

    @property
    def width(self) -> int:
        """How many slots a binding has, subqueries' and hidden ones included."""
        return self.layout.count

    def blank(self) -> list[Any]:
        """Return an empty binding: slots, then their positions."""
        binding: list[Any] = [None] * (2 * self.layout.count)
        for index in self.layout.lazy:
            binding[index] = UNSET
        return binding

    @property
    def root(self) -> Slot:
        """The slot of the entity after ``from``."""
        return self.slots[0]

    @property
    def one_result_per_root(self) -> bool:
        """Whether every root row found gives exactly one result.

        Then rows can be skipped by counting them. That holds when nothing
        beyond the access filters, no join can drop a row, and no join can
        multiply one (or the query selects distinct roots).
        """
        return not self.residual and self.joins_keep_one_row

    @property
    def residual(self) -> bool:
        """Whether a condition beyond the access path's remains."""
        return any(not c.is_access for c in self.conjuncts)

    @property
    def joins_keep_one_row(self) -> bool:
        """Whether the joins and the select neither drop nor repeat a root."""
        if self.distinct:
            return False
        if self.select_slot is not None and self.select_slot is not self.root:
            return False
        for join in self.joins:
            if join is self.access.join:
                continue
            if join.can_drop_rows:
                return False
            if join.many and self.select_slot is None:
                return False
        return True


class Scope:
    """The aliases of one query level, and compilation of its paths."""

    def __init__(
        self,
        catalog: Catalog,
        entity: str,
        alias: str | None,
        outer: Scope | None,
        layout: Layout,
    ) -> None:
        kind = kind_of(entity)
        if kind is None:
            raise PlanError(f"unknown entity {entity!r}")
        self.catalog = catalog
        self.outer = outer
        self.layout = layout
        self.slots: list[Slot] = []
        self.aliases: dict[str, Slot] = {}
        self.root = self.add(alias, kind, "")

    def add(self, alias: str | None, kind: str, root_path: str | None) -> Slot:
        """Add a slot for ``alias``."""
        slot = Slot(self.layout.count, alias, kind, root_path, kind in OWNED_KINDS)
        self.layout.count += 1
        self.slots.append(slot)
        if alias is not None:
            self.aliases[alias] = slot
        return slot

    def lookup(self, name: str) -> tuple[Slot, bool] | None:
        """Find alias ``name`` here or outside; say whether it is local."""
        if name in self.aliases:
            return self.aliases[name], True
        found = None if self.outer is None else self.outer.lookup(name)
        return None if found is None else (found[0], False)

    def walk(self, path: hql.Path) -> tuple[Slot, bool, list[tuple[str, Prop]]]:
        """Resolve ``path`` into its start slot, locality and properties.

        A path whose first name is no alias starts at the root, as in
        ``from Well where plate.id = :id``. Raises PlanError for an unknown
        property or a step past a scalar.
        """
        found = self.lookup(path.parts[0])
        if found is None:
            slot, local, rest = self.root, True, list(path.parts)
        else:
            (slot, local), rest = found, list(path.parts[1:])
        props: list[tuple[str, Prop]] = []
        kind: str | None = slot.kind
        while rest:
            name = rest.pop(0)
            if name == "details" and rest:
                name = f"details.{rest.pop(0)}"
            if kind is None or kind not in SCHEMA:
                # past a reference the emulator never fills: always null
                props.append((name, _NULL))
                continue
            prop = SCHEMA[kind].get(name)
            if prop is None:
                raise PlanError(f"{kind} has no property {name!r} (in {path})")
            props.append((name, prop))
            if prop.sort == REF:
                kind = prop.target if prop.target in SCHEMA else None
            elif rest and prop.sort == COLL:
                raise PlanError(f"collection {name!r} must be joined (in {path})")
            elif rest:
                raise PlanError(f"cannot go past {kind}.{name} (in {path})")
        return slot, local, props

    def path(self, path: hql.Path) -> tuple[Fn, Type]:
        """Compile ``path``; return its function and its type.

        The type is ``("entity", kind)`` or ``("scalar", rtypes wrapper)``.
        """
        slot, _local, props = self.walk(path)
        kind_type: Type = ("entity", slot.kind)
        for name, prop in props:
            if prop.sort == COLL:
                raise PlanError(f"collection {name!r} must be joined (in {path})")
            kind_type = ("entity" if prop.sort == REF else "scalar", prop.target)
        if len(props) >= 2 and props[-1][0] == "id" and props[-2][1].field:
            # the id of a reference is on the row itself: no look-up
            read = self.remembered(slot.index, props[:-2])
            attr = props[-2][1].field
            return (
                lambda b, r: None if (v := read(b, r)) is None else getattr(v, attr)
            ), kind_type
        if props and props[-1][1].sort != REF:
            read = self.remembered(slot.index, props[:-1])
            get, catalog = props[-1][1].get, self.catalog
            return (
                lambda b, r: None if (v := read(b, r)) is None else get(catalog, v)
            ), kind_type
        return self.remembered(slot.index, props), kind_type

    def remembered(self, index: int, props: list[tuple[str, Prop]]) -> Fn:
        """Return a reader of slot ``index`` through references ``props``,
        remembering each step in a hidden slot."""
        if not props:
            return lambda b, _r: b[index]
        key = (index, tuple(name for name, _prop in props))
        found = self.layout.readers.get(key)
        if found is not None:
            return found
        base = self.remembered(index, props[:-1])
        get, catalog = props[-1][1].get, self.catalog
        hidden = self.layout.count
        self.layout.count += 1
        self.layout.lazy.append(hidden)

        def read(b: list[Any], r: Run) -> Any:
            value = b[hidden]
            if value is UNSET:
                value = base(b, r)
                value = b[hidden] = None if value is None else get(catalog, value)
            return value

        self.layout.readers[key] = read
        return read

    def canonical(self, expr: Any) -> str | None:
        """Return ``expr`` spelt from the root (``parent.id``), or None."""
        if isinstance(expr, hql.Func) and expr.name == "lower" and expr.args:
            inner = self.canonical(expr.args[0])
            return None if inner is None else f"lower({inner})"
        if not isinstance(expr, hql.Path):
            return None
        slot, local, props = self.walk(expr)
        if not local or slot.root_path is None:
            return None
        if any(prop.sort == COLL for _name, prop in props):
            return None
        names = [slot.root_path] if slot.root_path else []
        return ".".join(names + [name for name, _prop in props])

    def is_local(self, expr: Any) -> bool:
        """Tell whether ``expr`` reads any slot of this query level."""
        if isinstance(expr, hql.Path):
            return self.walk(expr)[1]
        if isinstance(expr, hql.Func):
            return any(self.is_local(arg) for arg in expr.args)
        return False


_NULL = Prop(REF, None, lambda _c, _v: None)


def chain(catalog: Catalog, index: int, getters: list[Any]) -> Fn:
    """Return a function reading slot ``index`` through ``getters``."""
    if not getters:
        return lambda b, _r: b[index]
    if len(getters) == 1:
        get = getters[0]
        return lambda b, _r: None if (v := b[index]) is None else get(catalog, v)

    def read(b: list[Any], _r: Run) -> Any:
        value = b[index]
        for get in getters:
            if value is None:
                return None
            value = get(catalog, value)
        return value

    return read


def can_find_referrers(kind: str, field: str) -> bool:
    """Tell whether rows of ``kind`` can be looked up by ``field``."""
    derived = DERIVED.get(kind)
    if derived is not None:
        return field in derived.fields
    return field in REFERRER_FIELDS.get(kind, ())
