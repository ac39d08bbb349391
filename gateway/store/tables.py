"""Tables: the contents, associated contents and hierarchy views of a folder, run in SQL.

The one query path behind IMAP SEARCH, EWS FindItem, EAS and MAPI QueryRows:
:func:`query_contents` and :func:`query_hierarchy` take the columns wanted,
sort keys, a restriction (:mod:`gateway.store.restrictions`) and a page, and
return a :class:`TableResult`. Plugins call the async forms at the bottom
(``await tables.contents_table(mbox, folder_id, columns, ...)``).

Rows are dicts keyed by the column keys as given (tags or ``NamedProp``),
values in their Python form (:mod:`gateway.store.values`). A property the
object lacks is left out of its row, as with ``Txn.read_props``; a
``PT_UNSPECIFIED`` column matches the property of any type. Every row also
carries ``"id"``: the object's id in this store (``message_id`` or
``folder_id``, its global counter; ``ids.make_eid`` gives the 64-bit MAPI id).
In a hierarchy table ``PidTagDepth`` is 1 for the folder's own subfolders.

Order: sort keys are ``(tag, descending)`` pairs, sorted in SQL, with the
object id (ascending) breaking ties, so the order is total and stable.
Strings sort caselessly; one kept in the blob store sorts as if missing.
Without sort keys, contents come in id (creation) order and a hierarchy
depth first, parents before their subfolders.

Paging: ``offset`` skips rows; ``bookmark`` (a ``TableResult.bookmark_next``,
an opaque string) resumes right after the row it was taken at by that row's
sort values and id (keyset pagination), so deleting or adding rows before it
neither skips nor repeats any. Both may be combined with ``limit``.

How: one SELECT. Sort keys LEFT JOIN their property rows; columns are scalar
subqueries on the primary key (stored values) or SQL expressions (computed
ones), so a page costs one query whatever its width. A small page is cut in an
inner query first, so only its own rows' columns are read. ``total`` costs a
``count(*)`` only when the page does not already show the whole table.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from gateway.store import computed, folders, values
from gateway.store import proptypes as pt
from gateway.store import tags as T
from gateway.store.errors import InvalidArgument, TooComplex
from gateway.store.named import NamedProp
from gateway.store.restriction_domains import FOLDERS, MESSAGES, Domain, SqlProp
from gateway.store.restriction_eval import Evaluation, running, stored_value
from gateway.store.restriction_sql import Sql, compile_where, join_sql
from gateway.store.restrictions import Restriction, resolve
from gateway.store.txn import PropKey, Txn

if TYPE_CHECKING:
    from gateway.store.mailbox import Mailbox

NESTED_LIMIT = 2000
"""Pages up to this many rows are cut before their columns are read."""
MAX_COLUMNS = 512
MAX_SORT_KEYS = 16
_MARK = "\x00"
"""A stored column reads ``value``, or NUL + blob hash when the value is in the blob store
(NUL cannot start a stored string, and binary values come back as bytes, not text)."""

HIERARCHY = replace(FOLDERS, sql={**FOLDERS.sql, T.PidTagDepth: SqlProp("t.depth")})

Columns = Sequence[PropKey]
SortKeys = Sequence[tuple[PropKey, bool]]


@dataclass
class TableResult:
    rows: list[dict[Any, Any]]
    total: int
    """Rows of the whole table (restriction applied), whatever the page."""
    bookmark_next: str | None = None
    """Resumes right after the last row returned; ``None`` when no row was."""
    more: bool = False
    """Rows follow this page."""


@dataclass
class _Source:
    """Where a table's rows come from: ``{prefix} SELECT ... FROM {from_} WHERE {where}``."""

    domain: Domain
    alias: str
    kind: str
    scope: int
    prefix: str
    prefix_params: list[Any]
    from_: str
    where: str
    where_params: list[Any]
    row: list[str]
    """What ``computed`` functions read, in their order."""
    computed: dict[int, Callable[..., Any]]
    default_order: str | None = None

    @property
    def id(self) -> str:
        return f"{self.alias}.{self.domain.id_column}"


def _row_columns(statement: str, alias: str) -> list[str]:
    names = statement.split("SELECT ", 1)[1].split(" FROM ", 1)[0].split(", ")
    return [f"{alias}.{name.strip()}" for name in names]


def _contents(txn: Txn, folder_id: int, associated: bool) -> _Source:
    folders.require(txn, folder_id)
    return _Source(MESSAGES, "m", "associated" if associated else "contents", folder_id, "", [],
                   "messages m", "m.folder_id = ? AND m.associated = ?",
                   [folder_id, int(bool(associated))],
                   _row_columns(computed.MESSAGE_ROW, "m"), computed.MESSAGE_COMPUTED)


_TREE = ("WITH RECURSIVE t(id, depth, path) AS (SELECT folder_id, 1, printf('%016X', folder_id) "
         "FROM folders WHERE parent_id = ? UNION ALL SELECT c.folder_id, t.depth + 1, "
         "t.path || printf('%016X', c.folder_id) FROM folders c JOIN t ON c.parent_id = t.id "
         "WHERE t.depth < ?)")


def _hierarchy(txn: Txn, folder_id: int, depth: int | str) -> _Source:
    folders.require(txn, folder_id)
    if depth == 1 and not isinstance(depth, bool):
        deepest = 1
    elif depth == "deep":
        deepest = folders.MAX_DEPTH + 1
    else:
        raise InvalidArgument(f"a hierarchy table's depth is 1 or 'deep', not {depth!r}")
    return _Source(HIERARCHY, "f", f"hierarchy-{depth}", folder_id, _TREE, [folder_id, deepest],
                   "t JOIN folders f ON f.folder_id = t.id", "1", [],
                   _row_columns(computed.FOLDER_ROW, "f"), computed.FOLDER_COMPUTED, "t.path")


# -- sort keys, columns, bookmarks -------------------------------------------------------------
def _instance_flag(key: Any) -> bool:
    kind = key.type if isinstance(key, NamedProp) else key if isinstance(key, int) else 0
    return bool(kind & pt.MV_INSTANCE)


def _sequence(value: Any, what: str, most: int) -> list[Any]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise InvalidArgument(f"{what} are a list, not {type(value).__name__}")
    if len(value) > most:
        raise TooComplex(f"more than {most} {what}")
    return list(value)


@dataclass
class _Sort:
    keys: list[tuple[str, bool]]
    """SQL expression, descending."""
    joins: list[str]
    joined: dict[int, str]
    """Stored tag → the alias of its joined row (columns reuse it)."""
    fingerprint: str


def _sort(txn: Txn, source: _Source, sort: SortKeys) -> _Sort:
    domain, alias = source.domain, source.alias
    keys: list[tuple[str, bool]] = []
    joins: list[str] = []
    joined: dict[int, str] = {}
    spec: list[Any] = []
    for i, item in enumerate(_sequence(sort, "sort keys", MAX_SORT_KEYS)):
        if not isinstance(item, tuple | list) or len(item) != 2 or not isinstance(item[1], bool):
            raise InvalidArgument(f"a sort key is (tag, descending: bool), not {item!r}")
        key, descending = item
        tag, kind = resolve(txn, key)
        if _instance_flag(key) or kind & pt.MV_FLAG or kind not in pt.STORABLE_TYPES:
            raise InvalidArgument(f"cannot sort on type 0x{kind:04X} (typed, single-valued only)")
        spec.append((tag, descending))
        if tag is None:
            continue  # a named property this store has never seen: equal on every row
        if tag in domain.sql:
            expr = domain.sql[tag].expr.format(a=alias)
        elif tag in domain.python:
            raise InvalidArgument(f"cannot sort on the computed property 0x{tag:08X}")
        else:
            joins.append(f"LEFT JOIN {domain.props} k{i} ON k{i}.{domain.id_column} = "
                         f"{source.id} AND k{i}.tag = {tag}")
            joined.setdefault(tag, f"k{i}")
            expr = f"k{i}.value"
        keys.append((f"gw_casefold({expr})" if kind == pt.PT_UNICODE else expr, descending))
    if not keys and source.default_order:
        keys.append((source.default_order, False))
    text = repr((source.kind, source.scope, spec))
    return _Sort(keys, joins, joined, hashlib.sha256(text.encode()).hexdigest()[:16])


@dataclass
class _Columns:
    selects: list[str]
    plain: list[tuple[PropKey, int, Callable[[Any], Any] | None]]
    """Row key, result index, conversion (``None``: as it comes)."""
    typed: list[tuple[PropKey, int]]
    """``PT_UNSPECIFIED`` columns: the found tag at the index, its value after it."""
    python: list[tuple[PropKey, Callable[..., Any]]]
    row_at: int
    """Where the ``_Source.row`` columns start in a result row (-1: not selected)."""


_PLAIN = frozenset({pt.PT_SHORT, pt.PT_LONG, pt.PT_I8, pt.PT_CURRENCY, pt.PT_ERROR,
                    pt.PT_FLOAT, pt.PT_DOUBLE, pt.PT_APPTIME})


def _sql_converter(tag: int, prop: SqlProp) -> Callable[[Any], Any] | None:
    if prop.from_sql is not None:
        return prop.from_sql
    if pt.prop_type(tag) in _PLAIN or pt.prop_type(tag) == pt.PT_UNICODE:
        return None
    return lambda value: values.from_sql(tag, value)


def _stored_converter(txn: Txn, tag: int) -> Callable[[Any], Any] | None:
    kind = pt.prop_type(tag)
    if kind in _PLAIN:
        return None
    if kind == pt.PT_SYSTIME:
        return values.from_filetime
    if kind == pt.PT_UNICODE:
        def text(value: str) -> Any:
            return stored_value(txn, tag, None, value[1:]) if value[:1] == _MARK else value
        return text

    def other(value: Any) -> Any:
        if isinstance(value, str):
            return stored_value(txn, tag, None, value[1:])
        return values.from_sql(tag, value)
    return other


def _stored_select(domain: Domain, alias: str, which: str, what: str) -> str:
    return (f"(SELECT {what} FROM {domain.props} WHERE {domain.id_column} = "
            f"{alias}.{domain.id_column} AND {which})")


def _columns(txn: Txn, source: _Source, columns: Columns, joined: dict[int, str],
             first: int) -> _Columns:
    domain, alias = source.domain, source.alias
    out = _Columns([], [], [], [], -1)
    value = "coalesce(value, char(0) || blob)"
    for key in _sequence(columns, "columns", MAX_COLUMNS):
        if _instance_flag(key):
            raise InvalidArgument("multi-valued instance columns (MV_INSTANCE) are not supported")
        tag, kind = resolve(txn, key)
        if tag is None:
            continue
        at = first + len(out.selects)
        found = domain.computed_tag(tag)
        if found is not None and found in domain.sql:
            out.selects.append(domain.sql[found].expr.format(a=alias))
            out.plain.append((key, at, _sql_converter(found, domain.sql[found])))
        elif found is not None:
            out.python.append((key, source.computed[found]))
        elif kind == pt.PT_UNSPECIFIED:
            base = pt.prop_id(tag) << 16
            which = f"tag BETWEEN {base} AND {base | 0xFFFF} ORDER BY tag LIMIT 1"
            out.selects += [_stored_select(domain, alias, which, "tag"),
                            _stored_select(domain, alias, which, value)]
            out.typed.append((key, at))
        elif tag in joined:
            row = joined[tag]
            out.selects.append(f"coalesce({row}.value, char(0) || {row}.blob)")
            out.plain.append((key, at, _stored_converter(txn, tag)))
        else:
            out.selects.append(_stored_select(domain, alias, f"tag = {tag}", value))
            out.plain.append((key, at, _stored_converter(txn, tag)))
    if out.python:
        out.row_at = first + len(out.selects)
        out.selects += source.row
    return out


def _encode(fingerprint: str, keys: Sequence[Any], last_id: int) -> str:
    packed = [{"b": v.hex()} if isinstance(v, bytes) else v for v in keys]
    raw = json.dumps([1, fingerprint, packed, last_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(token: Any, fingerprint: str, count: int) -> tuple[list[Any], int]:
    try:
        if not isinstance(token, str):
            raise TypeError
        version, found, packed, last_id = json.loads(
            base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        keys = [bytes.fromhex(v["b"]) if isinstance(v, dict) else v for v in packed]
    except (ValueError, TypeError, KeyError, AttributeError):
        raise InvalidArgument("not a bookmark of a table") from None
    if (version != 1 or found != fingerprint or len(keys) != count
            or not isinstance(last_id, int)
            or not all(v is None or isinstance(v, int | float | str | bytes) for v in keys)):
        raise InvalidArgument("the bookmark belongs to another table or sort order")
    return keys, last_id


def _after(sort: _Sort, id_expr: str, keys: list[Any], last_id: int) -> Sql:
    """Rows after the one with sort values ``keys`` and id ``last_id``, in the table's order."""
    terms: list[Sql] = []
    equal: list[Sql] = []
    for (expr, descending), value in zip(sort.keys, keys, strict=True):
        beyond: Sql | None
        if not descending:
            beyond = (f"{expr} IS NOT NULL", []) if value is None else (f"{expr} > ?", [value])
        else:
            beyond = None if value is None else (f"({expr} < ? OR {expr} IS NULL)", [value])
        if beyond is not None:
            terms.append(join_sql([*equal, beyond], "AND", "(1)"))
        equal.append((f"{expr} IS ?", [value]))
    terms.append(join_sql([*equal, (f"{id_expr} > ?", [last_id])], "AND", "(1)"))
    return join_sql(terms, "OR", "(0)")


# -- running a table ---------------------------------------------------------------------------
def _page(offset: Any, limit: Any) -> None:
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise InvalidArgument(f"an offset is a non-negative integer, not {offset!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise InvalidArgument(f"a limit is a non-negative integer or None, not {limit!r}")


def _query(txn: Txn, source: _Source, columns: Columns, sort: SortKeys,
           restriction: Restriction | None, offset: int, limit: int | None,
           bookmark: str | None) -> TableResult:
    _page(offset, limit)
    evaluation = Evaluation(txn)
    order = _sort(txn, source, sort)
    where, params = compile_where(txn, restriction, source.domain, source.alias, evaluation)
    conditions = [(source.where, source.where_params), (where, params)]
    if bookmark is not None:
        keys, last_id = _decode(bookmark, order.fingerprint, len(order.keys))
        conditions.append(_after(order, source.id, keys, last_id))
    where_sql, where_params = join_sql(conditions, "AND", "(1)")
    nested = limit is not None and limit <= NESTED_LIMIT and not source.prefix
    width = 1 + len(order.keys)
    cols = _columns(txn, source, columns, {} if nested else order.joined, width)
    directions = [" DESC" if descending else "" for _, descending in order.keys]
    order_sql = "".join(f"{expr}{d}, " for (expr, _), d in zip(order.keys, directions,
                                                                  strict=True))
    page = [limit + 1 if limit is not None else -1, offset]
    if nested:
        inner_keys = "".join(f", {expr} AS k{i}" for i, (expr, _) in enumerate(order.keys))
        outer_keys = "".join(f", o.k{i}" for i in range(len(order.keys)))
        outer_order = "".join(f"o.k{i}{d}, " for i, d in enumerate(directions))
        table = source.domain.table
        sql = (f"SELECT o.id{outer_keys}{''.join(', ' + s for s in cols.selects)} FROM "
               f"(SELECT {source.id} AS id{inner_keys} FROM {source.from_} "
               f"{' '.join(order.joins)} WHERE {where_sql} ORDER BY {order_sql}{source.id} "
               f"LIMIT ? OFFSET ?) o JOIN {table} {source.alias} ON {source.id} = o.id "
               f"ORDER BY {outer_order}o.id")
    else:
        selects = [source.id, *(expr for expr, _ in order.keys), *cols.selects]
        sql = (f"{source.prefix} SELECT {', '.join(selects)} FROM {source.from_} "
               f"{' '.join(order.joins)} WHERE {where_sql} ORDER BY {order_sql}{source.id} "
               f"LIMIT ? OFFSET ?")
    with running(evaluation):
        raw = txn.conn.execute(sql, [*source.prefix_params, *where_params, *page]).fetchall()
        more = limit is not None and len(raw) > limit
        if more:
            del raw[limit:]
        if bookmark is None and offset == 0 and not more:
            total = len(raw)
        else:
            total = _count(txn, source, where, params)
    rows = _rows(txn, raw, cols)
    token = _encode(order.fingerprint, raw[-1][1:width], raw[-1][0]) if raw else None
    return TableResult(rows, total, token, more)


def _rows(txn: Txn, raw: list[Any], cols: _Columns) -> list[dict[Any, Any]]:
    rows: list[dict[Any, Any]] = []
    plain, typed, python, row_at = cols.plain, cols.typed, cols.python, cols.row_at
    for record in raw:
        row: dict[Any, Any] = {"id": record[0]}
        for key, at, convert in plain:
            value = record[at]
            if value is not None:
                row[key] = value if convert is None else convert(value)
        for key, at in typed:
            tag = record[at]
            if tag is not None:
                convert = _stored_converter(txn, tag)
                value = record[at + 1]
                row[key] = value if convert is None else convert(value)
        if python:
            object_row = record[row_at:]
            for key, compute in python:
                row[key] = compute(txn, record[0], object_row)
        rows.append(row)
    return rows


def _count(txn: Txn, source: _Source, where: str, params: list[Any]) -> int:
    sql = (f"{source.prefix} SELECT count(*) FROM {source.from_} "
           f"WHERE {source.where} AND {where}")
    row = txn.conn.execute(sql, [*source.prefix_params, *source.where_params, *params]).fetchone()
    return int(row[0])


def _count_only(txn: Txn, source: _Source, restriction: Restriction | None) -> int:
    evaluation = Evaluation(txn)
    where, params = compile_where(txn, restriction, source.domain, source.alias, evaluation)
    with running(evaluation):
        return _count(txn, source, where, params)


# -- the API -----------------------------------------------------------------------------------
def query_contents(txn: Txn, folder_id: int, columns: Columns, sort: SortKeys = (),
                   restriction: Restriction | None = None, associated: bool = False,
                   offset: int = 0, limit: int | None = None,
                   bookmark: str | None = None) -> TableResult:
    """A page of a folder's messages (``associated``: its FAI messages)."""
    source = _contents(txn, folder_id, associated)
    return _query(txn, source, columns, sort, restriction, offset, limit, bookmark)


def query_hierarchy(txn: Txn, folder_id: int, columns: Columns, sort: SortKeys = (),
                    restriction: Restriction | None = None, depth: int | str = 1,
                    offset: int = 0, limit: int | None = None,
                    bookmark: str | None = None) -> TableResult:
    """A page of a folder's subfolders (``depth="deep"``: all folders below it)."""
    source = _hierarchy(txn, folder_id, depth)
    return _query(txn, source, columns, sort, restriction, offset, limit, bookmark)


def count(txn: Txn, folder_id: int, restriction: Restriction | None = None,
          associated: bool = False) -> int:
    """How many messages of a folder match ``restriction``."""
    return _count_only(txn, _contents(txn, folder_id, associated), restriction)


def count_hierarchy(txn: Txn, folder_id: int, restriction: Restriction | None = None,
                    depth: int | str = 1) -> int:
    """How many folders below ``folder_id`` (``depth`` as in :func:`query_hierarchy`) match."""
    return _count_only(txn, _hierarchy(txn, folder_id, depth), restriction)


async def contents_table(mbox: Mailbox, folder_id: int, columns: Columns, sort: SortKeys = (),
                         restriction: Restriction | None = None, *, associated: bool = False,
                         offset: int = 0, limit: int | None = None,
                         bookmark: str | None = None) -> TableResult:
    return await mbox.read(query_contents, folder_id, columns, sort, restriction, associated,
                           offset, limit, bookmark)


async def hierarchy_table(mbox: Mailbox, folder_id: int, columns: Columns, sort: SortKeys = (),
                          restriction: Restriction | None = None, *, depth: int | str = 1,
                          offset: int = 0, limit: int | None = None,
                          bookmark: str | None = None) -> TableResult:
    return await mbox.read(query_hierarchy, folder_id, columns, sort, restriction, depth,
                           offset, limit, bookmark)


async def contents_count(mbox: Mailbox, folder_id: int, restriction: Restriction | None = None,
                         *, associated: bool = False) -> int:
    return await mbox.read(count, folder_id, restriction, associated)


async def hierarchy_count(mbox: Mailbox, folder_id: int, restriction: Restriction | None = None,
                          *, depth: int | str = 1) -> int:
    return await mbox.read(count_hierarchy, folder_id, restriction, depth)
