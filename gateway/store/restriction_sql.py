"""Restrictions compiled to SQL, with Python fallbacks for what SQL cannot say.

:func:`compile_where` turns a restriction tree (:mod:`gateway.store.restrictions`)
into one SQL condition over a :class:`Domain` (messages as ``m``, folders as
``f``, ...): a stored property becomes ``EXISTS (SELECT 1 FROM message_props p
WHERE ...)``, a computed one its SQL expression (``m.size``, the flags with the
read bit from ``m.is_read``, ...). What SQL cannot say is evaluated in Python
by functions registered on the connection, only for the rows SQL hands them,
so counting and paging stay in SQL: multi-valued properties (packed blobs; a
restriction matches when any element does), values kept in the blob store, and
computed properties without an SQL form (entry ids, source keys).

This module holds the compiler and its leaves; the domains are in
:mod:`gateway.store.restriction_domains`, the Python side in
:mod:`gateway.store.restriction_eval`.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable
from typing import Any

from gateway.store import proptypes as pt
from gateway.store import values
from gateway.store.errors import InvalidArgument, InvalidValue, TooComplex
from gateway.store.restriction_domains import Domain
from gateway.store.restriction_eval import Evaluation, Leaf, fold, loosen
from gateway.store.restrictions import (
    FUZZY,
    RELOPS,
    And,
    Bitmask,
    CompareProps,
    Content,
    Exists,
    Not,
    Or,
    Property,
    Restriction,
    Size,
    SubRestriction,
    relop,
    resolve,
)
from gateway.store.txn import Txn

MAX_NODES = 4096
"""Nodes one restriction may have (each becomes SQL; SQLite bounds statements)."""

_PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge,
    "eq": operator.eq, "ne": operator.ne,
}

_STRING = pt.PT_UNICODE
_BYTES = (pt.PT_BINARY, pt.PT_SVREID)
_INTEGERS = (pt.PT_SHORT, pt.PT_LONG, pt.PT_I8)


# -- compiling ------------------------------------------------------------------------------------
Sql = tuple[str, list[Any]]


def compile_where(txn: Txn, restriction: Restriction | None, domain: Domain, alias: str,
                  evaluation: Evaluation) -> Sql:
    """An SQL condition (and its parameters) true for the objects ``restriction`` matches.

    Run the query inside :func:`running` with the same ``evaluation``. Raises
    :class:`TooComplex` beyond ``txn.limits.max_restriction_depth`` or
    :data:`MAX_NODES`, :class:`InvalidValue` for a value that does not fit its
    tag's type, :class:`InvalidArgument` for anything else malformed.
    """
    if restriction is None:
        return "1", []
    return _Compiler(txn, evaluation).node(restriction, domain, alias, 1)


def join_sql(parts: list[Sql], word: str, empty: str) -> Sql:
    """``(a word b word ...)``, nested in balanced groups so SQLite's expression depth stays low."""
    if not parts:
        return empty, []
    if len(parts) > 16:
        middle = len(parts) // 2
        left, right = join_sql(parts[:middle], word, empty), join_sql(parts[middle:], word, empty)
        return f"({left[0]} {word} {right[0]})", left[1] + right[1]
    return (f"({f' {word} '.join(sql for sql, _ in parts)})",
            [param for _, params in parts for param in params])


class _Compiler:
    def __init__(self, txn: Txn, evaluation: Evaluation):
        self.txn = txn
        self.ev = evaluation
        self.count = 0
        self.aliases = itertools.count()

    def node(self, node: Any, domain: Domain, alias: str, depth: int) -> Sql:
        if depth > self.txn.limits.max_restriction_depth:
            raise TooComplex(f"a restriction nested deeper than "
                             f"{self.txn.limits.max_restriction_depth} levels")
        self.count += 1
        if self.count > MAX_NODES:
            raise TooComplex(f"a restriction of more than {MAX_NODES} nodes")
        if isinstance(node, And | Or):
            word, empty = ("AND", "(1)") if isinstance(node, And) else ("OR", "(0)")
            parts = [self.node(child, domain, alias, depth + 1) for child in node.children]
            return join_sql(parts, word, empty)
        if isinstance(node, Not):
            sql, params = self.node(node.child, domain, alias, depth + 1)
            return f"(NOT {sql})", params
        if isinstance(node, SubRestriction):
            return self.sub(node, domain, alias, depth)
        handler = _LEAVES.get(type(node))
        if handler is None:
            raise InvalidArgument(f"{node!r} is not a restriction")
        return handler(self, node, domain, alias)

    def sub(self, node: SubRestriction, domain: Domain, alias: str, depth: int) -> Sql:
        sub = domain.subs.get(node.kind)
        if sub is None:
            raise InvalidArgument(f"a {domain.name} has no {node.kind!r} to restrict "
                                  f"(it has: {', '.join(domain.subs) or 'none'})")
        inner_alias = f"s{next(self.aliases)}"
        sql, params = self.node(node.restriction, sub, inner_alias, depth + 1)
        return (f"EXISTS (SELECT 1 FROM {sub.table} {inner_alias} WHERE {inner_alias}.{sub.parent}"
                f" = {alias}.{domain.id_column} AND {sql})", params)

    # -- helpers shared by the leaves -----------------------------------------------------------
    def leaf(self, domain: Domain, tags: tuple[int, ...], test: Callable[..., bool]) -> int:
        self.ev.leaves.append(Leaf(domain, tags, test))
        return len(self.ev.leaves) - 1

    def in_python(self, domain: Domain, alias: str, tags: tuple[int, ...],
                  test: Callable[..., bool]) -> Sql:
        index = self.leaf(domain, tags, test)
        return f"gw_object(?, ?, {alias}.{domain.id_column})", [self.ev.key, index]

    def stored(self, domain: Domain, alias: str, tag: int,
               condition: Callable[[str], Sql] | None) -> Sql:
        """``EXISTS`` a row of ``tag`` on the object (meeting ``condition(row alias)``)."""
        p = f"p{next(self.aliases)}"
        if pt.prop_type(tag) == pt.PT_UNSPECIFIED:
            base = pt.prop_id(tag) << 16
            which = f"{p}.tag BETWEEN {base} AND {base | 0xFFFF}"
        else:
            which = f"{p}.tag = {tag}"
        sql, params = condition(p) if condition is not None else ("1", [])
        return (f"EXISTS (SELECT 1 FROM {domain.props} {p} WHERE {p}.{domain.id_column} = "
                f"{alias}.{domain.id_column} AND {which} AND ({sql}))", params)

    def row_leaf(self, domain: Domain, p: str, tag: int, test: Callable[[Any], bool]) -> Sql:
        index = self.leaf(domain, (tag,), test)
        return f"gw_leaf(?, ?, {p}.value, {p}.blob, {p}.tag)", [self.ev.key, index]

    def inline_or_blob(self, domain: Domain, p: str, tag: int, inline: Sql,
                       test: Callable[[Any], bool]) -> Sql:
        """``inline`` on a value kept in the row, Python on one in the blob store."""
        leaf_sql, leaf_params = self.row_leaf(domain, p, tag, test)
        return (f"CASE WHEN {p}.blob IS NULL THEN coalesce({inline[0]}, 0) ELSE {leaf_sql} END",
                inline[1] + leaf_params)


# -- the leaves ---------------------------------------------------------------------------------
def _check_tag(tag: int | None, kind: int) -> int:
    """The tag to name in an error (a named property's own type when it is unknown here)."""
    return tag if tag is not None else kind


def _norm(value: Any) -> Any:
    return fold(value) if isinstance(value, str) else value


def _any_element(kind: int, test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    if kind & pt.MV_FLAG:
        return lambda actual: actual is not None and any(test(item) for item in actual)
    return lambda actual: actual is not None and test(actual)


def _whole_value(compare: Callable[[Any, Any], bool], wanted: Any) -> Callable[[Any], bool]:
    return lambda actual: actual is not None and compare([_norm(v) for v in actual], wanted)


def _property(c: _Compiler, node: Property, domain: Domain, alias: str) -> Sql:
    op = relop(node.op)
    tag, kind = resolve(c.txn, node.tag)
    if kind == pt.PT_UNSPECIFIED or kind not in pt.STORABLE_TYPES:
        raise InvalidArgument(f"a property restriction needs a typed tag, not 0x{kind:04X}")
    named = _check_tag(tag, kind)
    whole = bool(kind & pt.MV_FLAG) and isinstance(node.value, list | tuple)
    if whole:
        if op not in ("eq", "ne"):
            raise InvalidArgument("a whole multi-valued value compares only with eq or ne")
        checked = values.check(named, list(node.value))
    else:
        checked = values.check(pt.change_type(named, kind & ~pt.MV_FLAG), node.value)
    if tag is None:
        return "(0)", []
    compare = _PY_OPS[op]
    wanted = [_norm(v) for v in checked] if whole else _norm(checked)
    if whole:
        test = _whole_value(compare, wanted)
    else:
        test = _any_element(kind, lambda item: compare(_norm(item), wanted))
    symbol, base = RELOPS[op], kind & ~pt.MV_FLAG
    computed_tag = domain.computed_tag(tag)
    if computed_tag is not None and computed_tag in domain.sql:
        prop = domain.sql[computed_tag]
        expr = prop.expr.format(a=alias)
        sql_value = prop.to_sql(checked) if prop.to_sql else values.to_sql(tag, checked)
        if base == _STRING:
            return f"coalesce(gw_casefold({expr}) {symbol} ?, 0)", [fold(sql_value)]
        return f"coalesce({expr} {symbol} ?, 0)", [sql_value]
    if computed_tag is not None:
        return c.in_python(domain, alias, (computed_tag,), test)

    def condition(p: str) -> Sql:
        if kind & pt.MV_FLAG:
            return c.row_leaf(domain, p, tag, test)
        sql_value = values.to_sql(tag, checked)
        if base == _STRING:
            return c.inline_or_blob(domain, p, tag, (f"gw_casefold({p}.value) {symbol} ?",
                                                     [fold(sql_value)]), test)
        if base in _BYTES:
            return c.inline_or_blob(domain, p, tag, (f"{p}.value {symbol} ?", [sql_value]), test)
        return f"{p}.value {symbol} ?", [sql_value]
    return c.stored(domain, alias, tag, condition)


def _content(c: _Compiler, node: Content, domain: Domain, alias: str) -> Sql:
    tag, kind = resolve(c.txn, node.tag)
    base, named = kind & ~pt.MV_FLAG, _check_tag(tag, kind)
    if base == _STRING and not isinstance(node.value, str):
        raise InvalidValue(named, f"a content restriction on a string needs a string, "
                                  f"not {type(node.value).__name__}")
    if base in _BYTES and not isinstance(node.value, bytes):
        raise InvalidValue(named, f"a content restriction on a binary needs bytes, "
                                  f"not {type(node.value).__name__}")
    if base != _STRING and base not in _BYTES:
        raise InvalidValue(named, "a content restriction needs a string or binary property")
    if node.fuzzy not in FUZZY.values():
        raise InvalidArgument(f"fuzzy {node.fuzzy!r} is not full, substring or prefix")
    if not isinstance(node.ignore_case, bool) or not isinstance(node.loose, bool):
        raise InvalidArgument("ignore_case and loose are booleans")
    if isinstance(node.value, str) and "\x00" in node.value:
        raise InvalidValue(named, "NUL inside a string")
    if tag is None:
        return "(0)", []
    transform: Callable[[str], str] | None = None
    sql_fn = ""
    if base == _STRING and node.loose:
        transform, sql_fn = loosen, "gw_loose"
    elif base == _STRING and node.ignore_case:
        transform, sql_fn = fold, "gw_casefold"
    needle: Any = transform(node.value) if transform and isinstance(node.value, str) \
        else node.value
    fuzzy = node.fuzzy

    def match(hay: Any) -> bool:
        if transform is not None and isinstance(hay, str):
            hay = transform(hay)
        if fuzzy == "full":
            return bool(hay == needle)
        return bool(hay.startswith(needle) if fuzzy == "prefix" else needle in hay)
    test = _any_element(kind, match)

    def on(expr: str) -> Sql:
        value = f"{sql_fn}({expr})" if sql_fn else expr
        if fuzzy == "full":
            return f"{value} = ?", [needle]
        if fuzzy == "prefix":
            return f"substr({value}, 1, ?) = ?", [len(needle), needle]
        return f"instr({value}, ?) > 0", [needle]
    computed_tag = domain.computed_tag(tag)
    if computed_tag is not None and computed_tag in domain.sql:
        sql, params = on(domain.sql[computed_tag].expr.format(a=alias))
        return f"coalesce({sql}, 0)", params
    if computed_tag is not None:
        return c.in_python(domain, alias, (computed_tag,), test)

    def condition(p: str) -> Sql:
        if kind & pt.MV_FLAG:
            return c.row_leaf(domain, p, tag, test)
        return c.inline_or_blob(domain, p, tag, on(f"{p}.value"), test)
    return c.stored(domain, alias, tag, condition)


def _bitmask(c: _Compiler, node: Bitmask, domain: Domain, alias: str) -> Sql:
    tag, kind = resolve(c.txn, node.tag)
    named = _check_tag(tag, kind)
    if kind not in _INTEGERS:
        raise InvalidValue(named, "a bitmask restriction needs an integer property")
    if not isinstance(node.mask, int) or isinstance(node.mask, bool):
        raise InvalidValue(named, f"a bitmask is an integer, not {type(node.mask).__name__}")
    if tag is None:
        return "(0)", []
    symbol = "!=" if node.any_set else "="
    mask, any_set = node.mask, bool(node.any_set)

    def test(actual: Any) -> bool:
        return actual is not None and bool(actual & mask) == any_set
    computed_tag = domain.computed_tag(tag)
    if computed_tag is not None and computed_tag in domain.sql:
        expr = domain.sql[computed_tag].expr.format(a=alias)
        return f"coalesce(({expr} & ?) {symbol} 0, 0)", [mask]
    if computed_tag is not None:
        return c.in_python(domain, alias, (computed_tag,), test)
    return c.stored(domain, alias, tag, lambda p: (f"({p}.value & ?) {symbol} 0", [mask]))


def _size(c: _Compiler, node: Size, domain: Domain, alias: str) -> Sql:
    op = relop(node.op)
    tag, kind = resolve(c.txn, node.tag)
    if not isinstance(node.size, int) or isinstance(node.size, bool) or node.size < 0:
        raise InvalidValue(_check_tag(tag, kind), "a size is a non-negative integer")
    if tag is None:
        return "(0)", []
    compare, size = _PY_OPS[op], node.size
    computed_tag = domain.computed_tag(tag)
    if computed_tag is not None:
        def test(actual: Any) -> bool:
            return actual is not None and compare(
                values.stored_size(values.to_sql(computed_tag, actual)), size)
        return c.in_python(domain, alias, (computed_tag,), test)
    return c.stored(domain, alias, tag, lambda p: (f"{p}.size {RELOPS[op]} ?", [size]))


def _exists(c: _Compiler, node: Exists, domain: Domain, alias: str) -> Sql:
    tag, _ = resolve(c.txn, node.tag)
    if tag is None:
        return "(0)", []
    if domain.computed_tag(tag) is not None:
        return "(1)", []
    return c.stored(domain, alias, tag, None)


def _compare(c: _Compiler, node: CompareProps, domain: Domain, alias: str) -> Sql:
    op = relop(node.op)
    (tag1, kind1), (tag2, kind2) = resolve(c.txn, node.tag1), resolve(c.txn, node.tag2)
    if kind1 != kind2:
        raise InvalidValue(_check_tag(tag2, kind2), "compared with a property of another type")
    if kind1 & pt.MV_FLAG or kind1 not in pt.STORABLE_TYPES:
        raise InvalidArgument("properties compared must be of one single-valued type")
    if tag1 is None or tag2 is None:
        return "(0)", []
    compare = _PY_OPS[op]
    operands = [domain.computed_tag(tag1) or tag1, domain.computed_tag(tag2) or tag2]
    if any(t in domain.python or (t in domain.sql and domain.sql[t].to_sql)
           for t in operands):
        def test(a: Any, b: Any) -> bool:
            return a is not None and b is not None and compare(_norm(a), _norm(b))
        return c.in_python(domain, alias, (operands[0], operands[1]), test)
    sides, params = [], []
    for tag in operands:
        if tag in domain.sql:
            expr = domain.sql[tag].expr.format(a=alias)
        else:
            p = f"p{next(c.aliases)}"
            value = f"{p}.value"
            if kind1 == _STRING or kind1 in _BYTES:
                value = f"CASE WHEN {p}.blob IS NULL THEN {p}.value ELSE " \
                        f"gw_load(?, {p}.value, {p}.blob, {p}.tag) END"
                params.append(c.ev.key)
            expr = (f"(SELECT {value} FROM {domain.props} {p} WHERE {p}.{domain.id_column} = "
                    f"{alias}.{domain.id_column} AND {p}.tag = {tag})")
        sides.append(f"gw_casefold({expr})" if kind1 == _STRING else expr)
    return f"coalesce({sides[0]} {RELOPS[op]} {sides[1]}, 0)", params


_LEAVES: dict[type, Callable[[_Compiler, Any, Domain, str], Sql]] = {
    Property: _property, Content: _content, Bitmask: _bitmask, Size: _size, Exists: _exists,
    CompareProps: _compare,
}
