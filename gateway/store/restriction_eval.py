"""The Python side of restrictions run in SQL: functions registered on the connection.

What SQL cannot say (multi-valued properties, values kept in the blob store,
computed properties without an SQL form) the compiled condition hands to
``gw_leaf``, ``gw_object`` and ``gw_load``, which look up the :class:`Leaf`
tests of the query's :class:`Evaluation`; run the query inside
:func:`running`. Also here: caseless text folding for SQL (``gw_casefold``,
``gw_loose``) and for Python (:func:`fold`, :func:`loosen`).
"""

from __future__ import annotations

import itertools
import sqlite3
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from gateway.store import proptypes as pt
from gateway.store import values
from gateway.store.restriction_domains import Domain
from gateway.store.txn import Txn


# -- text folding ------------------------------------------------------------------------------
def fold(text: str) -> str:
    """The caseless form of ``text`` (Unicode canonical caseless matching: "STRASSE" is "straße").

    Composed again at the end (NFC), so "cafe" is not found inside "café".
    """
    if text.isascii():
        return text.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def loosen(text: str) -> str:
    """Caseless, compatibility-decomposed and without non-spacing marks ("Café" → "cafe")."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKD", text).casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def stored_value(txn: Txn, tag: int, value: Any, blob: str | None) -> Any:
    """A property row's value in its Python form, loading it from the blob store if kept there."""
    if blob is not None:
        raw = txn.blobs.get(txn.conn, blob)
        value = raw.decode("utf-8") if pt.prop_type(tag) == pt.PT_UNICODE else raw
    return values.from_sql(tag, value)


# -- Python evaluation from SQL ------------------------------------------------------------------
@dataclass(frozen=True)
class Leaf:
    domain: Domain
    tags: tuple[int, ...]
    test: Callable[..., bool]


_KEYS = itertools.count(1)
_ACTIVE: dict[int, Evaluation] = {}


@dataclass
class Evaluation:
    """The Python side of one query: leaves SQL hands back, and the first error they raised."""

    txn: Txn
    leaves: list[Leaf] = field(default_factory=list)
    error: BaseException | None = None
    key: int = field(default_factory=lambda: next(_KEYS))


@contextmanager
def running(evaluation: Evaluation) -> Iterator[None]:
    """Run queries of ``evaluation`` (SQL functions registered, its leaves reachable)."""
    ensure_functions(evaluation.txn.conn)
    _ACTIVE[evaluation.key] = evaluation
    try:
        yield
    except sqlite3.OperationalError:
        if evaluation.error is not None:
            raise evaluation.error from None
        raise
    finally:
        _ACTIVE.pop(evaluation.key, None)


def ensure_functions(conn: sqlite3.Connection) -> None:
    """Register ``gw_casefold``, ``gw_loose``, ``gw_leaf``, ``gw_object`` once per connection."""
    try:
        conn.execute("SELECT gw_casefold('')").fetchone()
        return
    except sqlite3.OperationalError:
        pass
    conn.create_function("gw_casefold", 1, _sql_text(fold), deterministic=True)
    conn.create_function("gw_loose", 1, _sql_text(loosen), deterministic=True)
    conn.create_function("gw_leaf", 5, _sql_leaf)
    conn.create_function("gw_object", 3, _sql_object)
    conn.create_function("gw_load", 4, _sql_load)


def _sql_text(fn: Callable[[str], str]) -> Callable[[Any], Any]:
    def apply(value: Any) -> Any:
        return fn(value) if isinstance(value, str) else value
    return apply


def _guarded(key: int, run: Callable[[Evaluation], Any]) -> Any:
    evaluation = _ACTIVE[key]
    try:
        return run(evaluation)
    except Exception as exc:
        if evaluation.error is None:
            evaluation.error = exc
        raise


def _sql_leaf(key: int, index: int, value: Any, blob: str | None, tag: int) -> int:
    """A leaf on one stored property row (multi-valued or in the blob store)."""
    def run(ev: Evaluation) -> int:
        return int(ev.leaves[index].test(stored_value(ev.txn, tag, value, blob)))
    return int(_guarded(key, run))


def _sql_object(key: int, index: int, object_id: int) -> int:
    """A leaf on computed properties without an SQL form, read for the whole object."""
    def run(ev: Evaluation) -> int:
        leaf = ev.leaves[index]
        assert leaf.domain.reader is not None
        props = leaf.domain.reader(ev.txn, object_id, list(leaf.tags))
        return int(leaf.test(*(props.get(tag) for tag in leaf.tags)))
    return int(_guarded(key, run))


def _sql_load(key: int, value: Any, blob: str | None, tag: int) -> Any:
    """A property row's SQLite value, loaded from the blob store when kept there."""
    def run(ev: Evaluation) -> Any:
        return values.to_sql(tag, stored_value(ev.txn, tag, value, blob))
    return _guarded(key, run)
