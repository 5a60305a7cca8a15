"""A parser for the part of HQL that OMERO clients send.

:func:`parse` turns a query string into a :class:`Query` tree. The subset is
what BlitzGateway and aiomero build, and a little more:

- ``select [distinct] item, ...`` (optional), where an item is a path
  (``obj``, ``obj.details.owner.id``), or a function of one:
  ``count([distinct] x)``, ``count(*)``, ``min``, ``max``, ``sum``,
  ``lower``, ``upper``, ``index``, ``minIndex``, ``maxIndex``;
- ``from Entity [as] alias`` with one entity;
- ``[left [outer] | inner] join [fetch] path [as] alias``, repeated;
- ``where`` with ``and``, ``or``, ``not``, parentheses, comparisons
  (``= != <> < <= > >=``), ``[not] in (...)`` over a list, a parameter or
  a subquery, ``[not] like``, ``is [not] null`` and ``[not] exists
  (subquery)``;
- ``order by expr [asc | desc], ...``.

Operands are paths, ``:named`` parameters, numbers, quoted strings and
``true``/``false``/``null``. Anything else raises :class:`HqlError`, whose
message names what was not understood.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "And",
    "Compare",
    "Exists",
    "Func",
    "HqlError",
    "In",
    "IsNull",
    "Join",
    "Like",
    "Literal",
    "Not",
    "Or",
    "Order",
    "Param",
    "Path",
    "Query",
    "parse",
]


class HqlError(ValueError):
    """A query the parser does not understand; the message says where."""


@dataclass(frozen=True)
class Path:
    """A dotted path: an alias or property followed by properties."""

    parts: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class Param:
    """A named parameter, ``:name``."""

    name: str


@dataclass(frozen=True)
class Literal:
    """A number, string, boolean or null written in the query."""

    value: object


@dataclass(frozen=True)
class Func:
    """A function call; ``args`` is empty for ``count(*)``."""

    name: str
    args: tuple[Expr, ...]
    distinct: bool = False


@dataclass(frozen=True)
class Compare:
    """A comparison with one of ``= != < <= > >=`` (``<>`` becomes ``!=``)."""

    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class In:
    """``left [not] in`` a list of operands, a parameter or a subquery."""

    left: Expr
    items: tuple[Expr, ...] | Query
    negated: bool = False


@dataclass(frozen=True)
class Like:
    """``left [not] like pattern``."""

    left: Expr
    pattern: Expr
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    """``operand is [not] null``."""

    operand: Expr
    negated: bool = False


@dataclass(frozen=True)
class Exists:
    """``exists (subquery)``; ``not exists`` is a :class:`Not` of it."""

    query: Query


@dataclass(frozen=True)
class And:
    """All of ``items``."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    """Any of ``items``."""

    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Not:
    """The negation of ``item``."""

    item: Expr


Expr = (
    Path
    | Param
    | Literal
    | Func
    | Compare
    | In
    | Like
    | IsNull
    | Exists
    | And
    | Or
    | Not
)


@dataclass(frozen=True)
class Join:
    """One join: the path joined, its alias, and how."""

    path: Path
    alias: str | None
    left: bool
    fetch: bool


@dataclass(frozen=True)
class Order:
    """One ``order by`` item."""

    expr: Expr
    descending: bool


@dataclass(frozen=True)
class Query:
    """A parsed query; ``select`` is None when the query omits it."""

    select: tuple[Expr, ...] | None
    distinct: bool
    entity: str
    alias: str | None
    joins: tuple[Join, ...]
    where: Expr | None
    order: tuple[Order, ...]


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<param>:[A-Za-z_]\w*)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<name>[A-Za-z_][\w$]*)
  | (?P<op><>|!=|<=|>=|=|<|>)
  | (?P<punct>[(),.*])
    """,
    re.VERBOSE,
)

_KEYWORDS = frozenset(
    {
        *("select", "distinct", "from", "as", "left", "outer", "inner", "join"),
        *("fetch", "where", "and", "or", "not", "in", "like", "is", "null"),
        *("exists", "order", "by", "asc", "desc", "true", "false"),
    }
)

_FUNCTIONS = frozenset(
    {"count", "min", "max", "sum", "lower", "upper", "index", "minindex", "maxindex"}
)


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise HqlError(f"unexpected character {text[position]!r} at {position}")
        kind = match.lastgroup
        assert kind is not None
        value = match.group()
        position = match.end()
        if kind == "space":
            continue
        if kind == "name" and value.lower() in _KEYWORDS:
            kind, value = "keyword", value.lower()
        tokens.append((kind, value))
    tokens.append(("end", ""))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.at = 0

    # -- token helpers -----------------------------------------------------

    def peek(self, offset: int = 0) -> tuple[str, str]:
        return self.tokens[min(self.at + offset, len(self.tokens) - 1)]

    def accept(self, *words: str) -> bool:
        kind, value = self.peek()
        if kind in ("keyword", "punct", "op") and value in words:
            self.at += 1
            return True
        return False

    def expect(self, word: str) -> None:
        if not self.accept(word):
            raise HqlError(f"expected {word!r} but found {self.describe()}")

    def describe(self) -> str:
        kind, value = self.peek()
        return "the end of the query" if kind == "end" else repr(value)

    def name(self) -> str:
        kind, value = self.peek()
        if kind != "name":
            raise HqlError(f"expected a name but found {self.describe()}")
        self.at += 1
        return value

    # -- clauses -----------------------------------------------------------

    def query(self) -> Query:
        select: tuple[Expr, ...] | None = None
        distinct = False
        if self.accept("select"):
            distinct = self.accept("distinct")
            items = [self.operand()]
            while self.accept(","):
                items.append(self.operand())
            select = tuple(items)
        self.expect("from")
        entity = self.name()
        alias = self.alias()
        if self.accept(","):
            raise HqlError("more than one entity in 'from' is not supported")
        joins = []
        while self.peek()[1] in ("left", "inner", "join"):
            joins.append(self.join())
        where = self.expression() if self.accept("where") else None
        order: list[Order] = []
        if self.accept("order"):
            self.expect("by")
            order.append(self.order_item())
            while self.accept(","):
                order.append(self.order_item())
        return Query(select, distinct, entity, alias, tuple(joins), where, tuple(order))

    def alias(self) -> str | None:
        if self.accept("as"):
            return self.name()
        return self.name() if self.peek()[0] == "name" else None

    def join(self) -> Join:
        left = False
        if self.accept("left"):
            self.accept("outer")
            left = True
        else:
            self.accept("inner")
        self.expect("join")
        fetch = self.accept("fetch")
        path = self.path()
        return Join(path, self.alias(), left, fetch)

    def order_item(self) -> Order:
        expr = self.operand()
        if self.accept("desc"):
            return Order(expr, True)
        self.accept("asc")
        return Order(expr, False)

    # -- boolean expressions -----------------------------------------------

    def expression(self) -> Expr:
        items = [self.conjunction()]
        while self.accept("or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conjunction(self) -> Expr:
        items = [self.negation()]
        while self.accept("and"):
            items.append(self.negation())
        return items[0] if len(items) == 1 else And(tuple(items))

    def negation(self) -> Expr:
        if self.accept("not"):
            return Not(self.negation())
        return self.predicate()

    def predicate(self) -> Expr:
        if self.accept("exists"):
            return Exists(self.subquery())
        if self.peek()[1] == "(" and self.peek(1)[1] != "select":
            self.at += 1
            inner = self.expression()
            self.expect(")")
            if isinstance(inner, (Path, Param, Literal, Func)):
                return self.comparison(inner)
            return inner
        return self.comparison(self.operand())

    def comparison(self, left: Expr) -> Expr:
        kind, value = self.peek()
        if kind == "op":
            self.at += 1
            op = "!=" if value == "<>" else value
            return Compare(op, left, self.operand())
        negated = self.accept("not")
        if self.accept("in"):
            return In(left, self.in_items(), negated)
        if self.accept("like"):
            return Like(left, self.operand(), negated)
        if not negated and self.accept("is"):
            negated = self.accept("not")
            self.expect("null")
            return IsNull(left, negated)
        if negated:
            raise HqlError(
                f"expected 'in' or 'like' after 'not', found {self.describe()}"
            )
        return left

    def in_items(self) -> tuple[Expr, ...] | Query:
        if self.peek()[1] == "(" and self.peek(1)[1] == "select":
            return self.subquery()
        if self.peek()[0] == "param":
            return (self.operand(),)
        self.expect("(")
        items = [self.operand()]
        while self.accept(","):
            items.append(self.operand())
        self.expect(")")
        return tuple(items)

    def subquery(self) -> Query:
        self.expect("(")
        if self.peek()[1] != "select":
            raise HqlError(f"expected a subquery but found {self.describe()}")
        query = self.query()
        self.expect(")")
        return query

    # -- operands ----------------------------------------------------------

    def operand(self) -> Expr:
        kind, value = self.peek()
        if kind == "param":
            self.at += 1
            return Param(value[1:])
        if kind == "number":
            self.at += 1
            return Literal(float(value) if "." in value else int(value))
        if kind == "string":
            self.at += 1
            return Literal(value[1:-1].replace("''", "'"))
        if kind == "keyword" and value in ("true", "false", "null"):
            self.at += 1
            return Literal({"true": True, "false": False, "null": None}[value])
        if value == "(":
            self.at += 1
            inner = self.operand()
            self.expect(")")
            return inner
        if kind == "name" and self.peek(1)[1] == "(":
            return self.function()
        if kind == "name":
            return self.path()
        raise HqlError(f"unexpected {self.describe()}")

    def function(self) -> Func:
        name = self.name().lower()
        if name not in _FUNCTIONS:
            raise HqlError(f"function {name}() is not supported")
        self.expect("(")
        if name == "count" and self.accept("*"):
            self.expect(")")
            return Func(name, ())
        distinct = self.accept("distinct")
        args = (self.operand(),)
        self.expect(")")
        return Func(name, args, distinct)

    def path(self) -> Path:
        parts = [self.name()]
        while self.accept("."):
            parts.append(self.name())
        return Path(tuple(parts))


def parse(text: str) -> Query:
    """Parse ``text`` into a :class:`Query`; raise :class:`HqlError` if unsupported."""
    parser = _Parser(text)
    query = parser.query()
    if parser.peek()[0] != "end":
        raise HqlError(f"unexpected {parser.describe()} after the query")
    return query
