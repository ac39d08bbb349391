"""Time-zone blobs (MS-OXOCAL 2.2.1.39, 2.2.1.41) ⇄ tzinfo and VTIMEZONE: the public
face of :mod:`~gateway.convert.timezone_blobs` (PidLidTimeZoneStruct and TZDEFINITION
bytes), :mod:`~gateway.convert.timezone_rules` (rules derived from a tzinfo,
:class:`RulesTZ`, VTIMEZONE output) and :mod:`~gateway.convert.timezone_names`
(Windows ⇄ IANA names with icalendar's table).
"""

from __future__ import annotations

from gateway.convert.timezone_blobs import MAX_RULES as MAX_RULES
from gateway.convert.timezone_blobs import TZRULE_FLAG_EFFECTIVE as TZRULE_FLAG_EFFECTIVE
from gateway.convert.timezone_blobs import TZRULE_FLAG_RECUR_CURRENT as TZRULE_FLAG_RECUR_CURRENT
from gateway.convert.timezone_blobs import SystemTime as SystemTime
from gateway.convert.timezone_blobs import TimeZoneError as TimeZoneError
from gateway.convert.timezone_blobs import TZDefinition as TZDefinition
from gateway.convert.timezone_blobs import TZRule as TZRule
from gateway.convert.timezone_blobs import build_tzdefinition as build_tzdefinition
from gateway.convert.timezone_blobs import build_tzstruct as build_tzstruct
from gateway.convert.timezone_blobs import description as description
from gateway.convert.timezone_blobs import effective_rule as effective_rule
from gateway.convert.timezone_blobs import parse_tzdefinition as parse_tzdefinition
from gateway.convert.timezone_blobs import parse_tzstruct as parse_tzstruct
from gateway.convert.timezone_names import iana_to_windows as iana_to_windows
from gateway.convert.timezone_names import keyname_for as keyname_for
from gateway.convert.timezone_names import windows_to_iana as windows_to_iana
from gateway.convert.timezone_names import zone as zone
from gateway.convert.timezone_rules import YEARS_AHEAD as YEARS_AHEAD
from gateway.convert.timezone_rules import RulesTZ as RulesTZ
from gateway.convert.timezone_rules import definition_from_tzinfo as definition_from_tzinfo
from gateway.convert.timezone_rules import rule_for_year as rule_for_year
from gateway.convert.timezone_rules import to_vtimezone as to_vtimezone

__all__ = [
    "MAX_RULES",
    "TZRULE_FLAG_EFFECTIVE",
    "TZRULE_FLAG_RECUR_CURRENT",
    "YEARS_AHEAD",
    "RulesTZ",
    "SystemTime",
    "TZDefinition",
    "TZRule",
    "TimeZoneError",
    "build_tzdefinition",
    "build_tzstruct",
    "definition_from_tzinfo",
    "description",
    "effective_rule",
    "iana_to_windows",
    "keyname_for",
    "parse_tzdefinition",
    "parse_tzstruct",
    "rule_for_year",
    "to_vtimezone",
    "windows_to_iana",
    "zone",
]
