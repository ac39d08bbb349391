"""Generate gateway/store/tags.py from the property vocabulary in gateway/store/data.

The store's property names are data, not hand-typed code. Three tab-separated files,
with MS-OXPROPS names, hold them:

- ``propsets.tsv``: property sets, ``name  GUID``;
- ``proptags.tsv``: tagged properties, ``name  id  type  [options]``;
- ``namedprops.tsv``: named properties, ``name  propset  LID-or-string-name  type  [options]``.

Lines starting with ``#`` are comments. Types are the ``PT_*`` names of
:mod:`gateway.store.proptypes`. Options, space-separated: ``alias=<Name>`` (another
MS-OXPROPS name for the same property: same tag, or same set, key and type; the tag keeps
the first name) and, for tagged properties only, ``addressbook`` (an MS-OXOABK property:
NSPI has no named properties, so its ids may run from 0x8000 to 0xFFFE).

The data is checked before anything is written; every problem is reported as
``file:line: what``: malformed lines, names (duplicates across all three files too),
unknown types, ids outside 0x0001-0x7FFF, LIDs outside 0x0001-0xFFFF, malformed GUIDs,
unknown property sets, and one tag (or set and key) under two names without an alias.

Usage::

    .venv/bin/python -m gateway.store.tags_gen           # (re)write tags.py
    .venv/bin/python -m gateway.store.tags_gen --check   # exit 1 if tags.py is stale

Importing the ``gateway.store`` package imports ``tags``, so when tags.py is missing or
broken run the file itself, ``.venv/bin/python gateway/store/tags_gen.py``: this module
imports nothing of the package (it loads proptypes.py by path).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from uuid import UUID

HERE = Path(__file__).resolve().parent


def _load_proptypes() -> ModuleType:
    """proptypes.py, by path: the gateway.store package imports the tags.py written here."""
    spec = importlib.util.spec_from_file_location("_tags_gen_proptypes", HERE / "proptypes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_proptypes = _load_proptypes()
NAMED_MIN: int = _proptypes.NAMED_MIN
TYPE_NAMES: dict[int, str] = _proptypes.TYPE_NAMES
DATA_DIR = HERE / "data"
OUTPUT = HERE / "tags.py"
PROPSETS = "propsets.tsv"
PROPTAGS = "proptags.tsv"
NAMEDPROPS = "namedprops.tsv"

TAGGED_MIN = 0x0001
TAGGED_MAX = 0x7FFF
ADDRESS_BOOK_MAX = 0xFFFE
LID_MIN = 0x0001
LID_MAX = 0xFFFF
"""Every LID MS-OXPROPS assigns fits in 16 bits."""
STRING_NAME_MAX = 255
LINE_LENGTH = 100

TYPES: dict[str, int] = {
    name: value for value, name in TYPE_NAMES.items()
    if value in _proptypes.STORABLE_TYPES | {_proptypes.PT_OBJECT}
    and value != _proptypes.PT_ERROR
}
"""The types a property may be declared with (not PT_UNSPECIFIED, PT_NULL or PT_ERROR)."""

_HEX = re.compile(r"0[xX][0-9A-Fa-f]+")
_GUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_TAG_NAME = re.compile(r"(?:PidTag|MetaTag)[A-Z0-9][A-Za-z0-9_]*")
_LID_NAME = re.compile(r"PidLid[A-Z0-9][A-Za-z0-9_]*")
_STRING_NAME = re.compile(r"PidName[A-Z0-9][A-Za-z0-9_]*")
_PROPSET_NAME = re.compile(r"(?:PS|PSETID)_[A-Za-z0-9_]+")
_PRINTABLE = re.compile(r"[\x21-\x7E](?:[\x20-\x7E]*[\x21-\x7E])?")


class VocabularyError(ValueError):
    """The data files are wrong; ``problems`` holds one ``file:line: what`` per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PropSet:
    name: str
    guid: UUID
    line: int


@dataclass(frozen=True)
class TaggedDef:
    name: str
    prop_id: int
    prop_type: int
    alias: str | None
    addressbook: bool
    line: int

    @property
    def tag(self) -> int:
        return self.prop_id << 16 | self.prop_type


@dataclass(frozen=True)
class NamedDef:
    name: str
    propset: str
    key: int | str
    prop_type: int
    alias: str | None
    line: int


@dataclass(frozen=True)
class Vocabulary:
    propsets: list[PropSet]
    tagged: list[TaggedDef]
    named: list[NamedDef]


class _Reader:
    """Reads the three files, collecting problems instead of stopping at the first."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.problems: list[str] = []
        self.names: dict[str, str] = {}  # name -> "file:line" of its definition

    def error(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def rows(self, filename: str) -> Iterator[tuple[str, int, list[str]]]:
        """``("file:line", line, fields)`` of each line that is not blank or a comment."""
        path = self.data_dir / filename
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            self.error(filename, f"cannot read {path}: {exc.strerror or exc}")
            return
        for number, raw in enumerate(text.splitlines(), 1):
            if raw.strip() and not raw.lstrip().startswith("#"):
                fields = [field.strip() for field in raw.split("\t")]
                yield f"{filename}:{number}", number, fields

    def claim(self, where: str, name: str) -> bool:
        """Record a constant name; False (and a problem) if another line has it."""
        if name in self.names:
            self.error(where, f"duplicate name {name} (first defined at {self.names[name]})")
            return False
        self.names[name] = where
        return True

    def prop_type(self, where: str, text: str) -> int | None:
        if text not in TYPES:
            self.error(where, f"unknown property type {text!r} (expected a PT_* name such as "
                              "PT_UNICODE, PT_LONG, PT_MV_BINARY)")
            return None
        return TYPES[text]

    def options(self, where: str, text: str, allowed: tuple[str, ...]) -> dict[str, str] | None:
        found: dict[str, str] = {}
        for word in text.split():
            key, _, value = word.partition("=")
            if key not in allowed or (key == "alias") != bool(value):
                self.error(where, f"unknown option {word!r} (allowed: "
                                  + ", ".join("alias=<Name>" if a == "alias" else a
                                              for a in allowed) + ")")
                return None
            found[key] = value
        return found

    # -- propsets.tsv -----------------------------------------------------------------------
    def read_propsets(self) -> list[PropSet]:
        propsets: list[PropSet] = []
        guids: dict[UUID, str] = {}
        for where, line, fields in self.rows(PROPSETS):
            if len(fields) != 2:
                self.error(where, "expected 2 tab-separated fields (name, GUID), "
                                  f"got {len(fields)}")
                continue
            name, text = fields
            if not _PROPSET_NAME.fullmatch(name):
                self.error(where, f"malformed property set name {name!r} "
                                  "(expected PS_* or PSETID_*)")
                continue
            if not _GUID.fullmatch(text):
                self.error(where, f"malformed GUID {text!r} for {name} "
                                  "(expected 8-4-4-4-12 hex digits, no braces)")
                continue
            guid = UUID(text)
            if guid in guids:
                self.error(where, f"GUID {text} of {name} is already {guids[guid]}")
                continue
            if self.claim(where, name):
                guids[guid] = name
                propsets.append(PropSet(name, guid, line))
        return propsets

    # -- proptags.tsv -----------------------------------------------------------------------
    def read_tagged(self) -> list[TaggedDef]:
        defs: list[TaggedDef] = []
        wheres: dict[str, str] = {}
        for where, line, fields in self.rows(PROPTAGS):
            if len(fields) not in (3, 4):
                self.error(where, "expected 3 or 4 tab-separated fields "
                                  f"(name, id, type[, options]), got {len(fields)}")
                continue
            name, id_text, type_text = fields[:3]
            if not _TAG_NAME.fullmatch(name):
                self.error(where, f"malformed tagged property name {name!r} "
                                  "(expected PidTag* or MetaTag*)")
                continue
            options = self.options(where, fields[3] if len(fields) == 4 else "",
                                   ("alias", "addressbook"))
            prop_type = self.prop_type(where, type_text)
            if options is None or prop_type is None:
                continue
            addressbook = "addressbook" in options
            if not _HEX.fullmatch(id_text):
                self.error(where, f"malformed property id {id_text!r} for {name} "
                                  "(expected hex such as 0x0037)")
                continue
            prop_id = int(id_text, 16)
            high = ADDRESS_BOOK_MAX if addressbook else TAGGED_MAX
            if not TAGGED_MIN <= prop_id <= high:
                hint = "" if addressbook or prop_id > ADDRESS_BOOK_MAX else (
                    "; ids from 0x8000 are named properties, or mark an address-book "
                    "property with the option addressbook")
                self.error(where, f"property id {id_text} of {name} is outside "
                                  f"0x{TAGGED_MIN:04X}-0x{high:04X}{hint}")
                continue
            if self.claim(where, name):
                wheres[name] = where
                defs.append(TaggedDef(name, prop_id, prop_type, options.get("alias"),
                                      addressbook, line))
        by_name = {d.name: d for d in defs}
        primary: dict[int, TaggedDef] = {}
        for d in defs:
            where = wheres[d.name]
            if d.alias is not None:
                target = by_name.get(d.alias)
                if target is None or target.alias is not None:
                    self.error(where, f"alias={d.alias}: {d.alias} is not a tagged property "
                                      "defined without alias")
                elif target.tag != d.tag:
                    self.error(where, f"{d.name} (0x{d.tag:08X}) cannot alias {d.alias}, "
                                      f"which is 0x{target.tag:08X}")
                continue
            first = primary.setdefault(d.tag, d)
            if first is not d:
                self.error(where, f"{d.name} has the tag 0x{d.tag:08X} of {first.name} "
                                  f"({wheres[first.name]}); if both are names of one "
                                  f"property, add the option alias={first.name}")
        return defs

    # -- namedprops.tsv ---------------------------------------------------------------------
    def read_named(self, propsets: list[PropSet]) -> list[NamedDef]:
        known = {p.name for p in propsets}
        defs: list[NamedDef] = []
        wheres: dict[str, str] = {}
        for where, line, fields in self.rows(NAMEDPROPS):
            if len(fields) not in (4, 5):
                self.error(where, "expected 4 or 5 tab-separated fields (name, propset, "
                                  f"LID or name, type[, options]), got {len(fields)}")
                continue
            name, propset, key_text, type_text = fields[:4]
            options = self.options(where, fields[4] if len(fields) == 5 else "", ("alias",))
            prop_type = self.prop_type(where, type_text)
            if options is None or prop_type is None:
                continue
            if propset not in known:
                self.error(where, f"unknown property set {propset!r} for {name} "
                                  f"(not in {PROPSETS})")
                continue
            key: int | str
            if _HEX.fullmatch(key_text):
                key = int(key_text, 16)
                if not LID_MIN <= key <= LID_MAX:
                    self.error(where, f"LID {key_text} of {name} is outside "
                                      f"0x{LID_MIN:04X}-0x{LID_MAX:04X}")
                    continue
                if not _LID_NAME.fullmatch(name):
                    self.error(where, f"malformed name {name!r} for a LID "
                                      "(expected PidLid*)")
                    continue
            else:
                key = key_text
                if key_text[:2].lower() == "0x":
                    self.error(where, f"malformed LID {key_text!r} for {name}")
                    continue
                if not (_PRINTABLE.fullmatch(key_text) and len(key_text) <= STRING_NAME_MAX):
                    self.error(where, f"malformed string name {key_text!r} for {name} "
                                      f"(printable ASCII, at most {STRING_NAME_MAX} characters)")
                    continue
                if not _STRING_NAME.fullmatch(name):
                    self.error(where, f"malformed name {name!r} for a string-named property "
                                      "(expected PidName*)")
                    continue
            if self.claim(where, name):
                wheres[name] = where
                defs.append(NamedDef(name, propset, key, prop_type, options.get("alias"), line))
        by_name = {d.name: d for d in defs}
        primary: dict[tuple[str, int | str], NamedDef] = {}
        for d in defs:
            where = wheres[d.name]
            if d.alias is not None:
                target = by_name.get(d.alias)
                if target is None or target.alias is not None:
                    self.error(where, f"alias={d.alias}: {d.alias} is not a named property "
                                      "defined without alias")
                elif (target.propset, target.key, target.prop_type) != (
                        d.propset, d.key, d.prop_type):
                    self.error(where, f"{d.name} cannot alias {d.alias}: set, key and type "
                                      "must be the same")
                continue
            first = primary.setdefault((d.propset, d.key), d)
            if first is not d:
                self.error(where, f"{d.name} is {d.propset} {_key_text(d.key)}, like "
                                  f"{first.name} ({wheres[first.name]}); if both are names "
                                  f"of one property, add the option alias={first.name}")
        return defs


def load(data_dir: Path = DATA_DIR) -> Vocabulary:
    """Read and check the three data files; raise :class:`VocabularyError` listing problems."""
    reader = _Reader(data_dir)
    propsets = reader.read_propsets()
    tagged = reader.read_tagged()
    named = reader.read_named(propsets)
    if reader.problems:
        raise VocabularyError(reader.problems)
    return Vocabulary(propsets, tagged, named)


# -- rendering --------------------------------------------------------------------------------
HEADER = '''\
# GENERATED by gateway/store/tags_gen.py from gateway/store/data/*.tsv. Do not edit:
# change the data, then run  .venv/bin/python -m gateway.store.tags_gen
"""The MAPI property vocabulary, with MS-OXPROPS names.

- ``PidTag*`` (and the MS-OXCFXICS ``MetaTag*``) are full 32-bit property tags,
  ``id << 16 | type``;
- ``PidLid*`` and ``PidName*`` are :class:`~gateway.store.named.NamedProp` values, mapped to
  an id from 0x8000 by each store;
- ``PS_*`` and ``PSETID_*`` are property-set GUIDs.

:func:`tag_name` names a tag for logs and errors.
"""
'''

FOOTER = '''

def tag_name(tag: int, *, addressbook: bool = False) -> str:
    """The name of a tag, ``"0x%08X"`` if it has none.

    A PT_STRING8 tag is named like its PT_UNICODE twin. Address-book tags from 0x8000
    (MS-OXOABK) are looked up only with ``addressbook=True``: in a mailbox those ids belong
    to named properties.
    """
    for candidate in (tag, normal_tag(tag)):
        name = TAG_NAMES.get(candidate)
        if name is None and addressbook:
            name = ADDRESS_BOOK_TAG_NAMES.get(candidate)
        if name is not None:
            return name
    return f"0x{tag:08X}"
'''


def _key_text(key: int | str) -> str:
    return f"0x{key:04X}" if isinstance(key, int) else _quote(key)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _call(head: str, args: list[str]) -> list[str]:
    """``head(args)`` on one line, or wrapped the way ruff's formatter would."""
    line = f"{head}({', '.join(args)})"
    if len(line) <= LINE_LENGTH:
        return [line]
    inner = "    " + ", ".join(args)
    if len(inner) <= LINE_LENGTH:
        return [f"{head}(", inner, ")"]
    return [f"{head}(", *(f"    {a}," for a in args), ")"]


def _import(module: str, names: list[str]) -> list[str]:
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= LINE_LENGTH:
        return [line]
    return [f"from {module} import (", *(f"    {n}," for n in names), ")"]


def render(vocab: Vocabulary) -> str:
    """The text of tags.py for ``vocab``."""
    type_names = sorted({TYPE_NAMES[d.prop_type] for d in vocab.named})
    out = [HEADER, "from typing import Final", "from uuid import UUID", "",
           "from gateway.store.named import NamedProp",
           *_import("gateway.store.proptypes", [*type_names, "normal_tag"]),
           "", "# Property sets (propsets.tsv)"]
    out += [f'{p.name}: Final = UUID("{str(p.guid).upper()}")' for p in vocab.propsets]

    out += ["", "# Tagged properties (proptags.tsv)"]
    for d in vocab.tagged:
        note = TYPE_NAMES[d.prop_type] + (f", alias of {d.alias}" if d.alias else "")
        out.append(f"{d.name}: Final = 0x{d.tag:08X}  # {note}")

    out += ["", "# Named properties (namedprops.tsv)"]
    for n in vocab.named:
        out += _call(f"{n.name}: Final = NamedProp",
                     [n.propset, _key_text(n.key), TYPE_NAMES[n.prop_type]])

    mailbox = sorted((d.tag, d.name) for d in vocab.tagged
                     if d.alias is None and d.prop_id < NAMED_MIN)
    address_book = sorted((d.tag, d.name) for d in vocab.tagged
                          if d.alias is None and d.prop_id >= NAMED_MIN)
    out += ["", "TAG_NAMES: Final[dict[int, str]] = {",
            *(f'    0x{tag:08X}: "{name}",' for tag, name in mailbox), "}",
            '"""Tag → name, ids 0x0001-0x7FFF; an aliased tag has its first name."""',
            "ADDRESS_BOOK_TAG_NAMES: Final[dict[int, str]] = {",
            *(f'    0x{tag:08X}: "{name}",' for tag, name in address_book), "}",
            '"""Tag → name of the MS-OXOABK properties with ids from 0x8000."""',
            "NAMED_PROPS: Final[dict[str, NamedProp]] = {",
            "    name: value for name, value in dict(globals()).items()",
            "    if isinstance(value, NamedProp)", "}",
            '"""Name → named property, aliases included."""',
            "PROPSET_NAMES: Final[dict[UUID, str]] = {",
            *(f"    {p.name}: {_quote(p.name)}," for p in vocab.propsets), "}",
            '"""Property-set GUID → name."""']
    return "\n".join(out) + "\n" + FOOTER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway.store.tags_gen",
        description="Check gateway/store/data/*.tsv and write gateway/store/tags.py from them.")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if the output is not what the data makes")
    parser.add_argument("--data", type=Path, default=DATA_DIR, metavar="DIR",
                        help="directory of the .tsv files (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=OUTPUT, metavar="FILE",
                        help="the module to write (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        vocab = load(args.data)
    except VocabularyError as exc:
        print(exc, file=sys.stderr)
        return 2
    text = render(vocab)
    try:
        current = args.output.read_text(encoding="utf-8")
    except FileNotFoundError:
        current = None
    if args.check:
        if current != text:
            print(f"{args.output} is out of date; run: python -m gateway.store.tags_gen",
                  file=sys.stderr)
            return 1
        return 0
    if current != text:
        args.output.write_text(text, encoding="utf-8")
    print(f"{args.output}: {len(vocab.tagged)} tagged, {len(vocab.named)} named properties, "
          f"{len(vocab.propsets)} property sets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
