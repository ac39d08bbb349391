"""Property values and ids: every MAPI type round-trips; wire forms match MS-OXCDATA."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from gateway.store import ids, values
from gateway.store import proptypes as pt
from gateway.store.errors import InvalidArgument, InvalidValue

GUID = uuid.UUID("00062002-0000-0000-c000-000000000046")
SAMPLES = [
    (pt.PT_SHORT, -5), (pt.PT_LONG, 0xFFFFFFFF), (pt.PT_I8, -(1 << 63)),
    (pt.PT_CURRENCY, 123456), (pt.PT_ERROR, 0x8004010F), (pt.PT_BOOLEAN, True),
    (pt.PT_FLOAT, 1.5), (pt.PT_DOUBLE, -2.25), (pt.PT_APPTIME, 45000.5),
    (pt.PT_UNICODE, "Grüße \u2603"), (pt.PT_BINARY, b"\x00\xff"), (pt.PT_CLSID, GUID),
    (pt.PT_SYSTIME, datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=UTC)),
    (pt.PT_SVREID, b"\x01\x02"),
    (pt.PT_MV_SHORT, [1, -2]), (pt.PT_MV_LONG, [1, 2, 3]), (pt.PT_MV_I8, [-(1 << 40), 7]),
    (pt.PT_MV_DOUBLE, [0.5]), (pt.PT_MV_UNICODE, ["a", "", "ß"]),
    (pt.PT_MV_BINARY, [b"", b"\x00"]), (pt.PT_MV_CLSID, [GUID]),
    (pt.PT_MV_SYSTIME, [datetime(1601, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)]),
    (pt.PT_MV_CURRENCY, [5]), (pt.PT_MV_FLOAT, [1.25]), (pt.PT_MV_APPTIME, [2.0]),
]


@pytest.mark.parametrize(("kind", "value"), SAMPLES, ids=[pt.TYPE_NAMES[k] for k, _ in SAMPLES])
def test_every_type_round_trips_through_sql(kind: int, value: object) -> None:
    tag = pt.prop_tag(0x6700, kind)
    checked = values.check(tag, value)
    assert values.from_sql(tag, values.to_sql(tag, checked)) == checked == value


@pytest.mark.parametrize(("kind", "value"), [
    (pt.PT_LONG, "1"), (pt.PT_LONG, 1 << 32), (pt.PT_SHORT, 70000), (pt.PT_BOOLEAN, "yes"),
    (pt.PT_UNICODE, b"bytes"), (pt.PT_UNICODE, "nul\x00inside"), (pt.PT_BINARY, "text"),
    (pt.PT_MV_LONG, 5), (pt.PT_MV_LONG, ["x"]), (pt.PT_CLSID, "not a guid"),
    (pt.PT_OBJECT, b""), (pt.PT_I8, True),
])
def test_wrong_values_are_refused_with_the_tag(kind: int, value: object) -> None:
    with pytest.raises(InvalidValue, match="0x6700"):
        values.check(pt.prop_tag(0x6700, kind), value)


def test_filetime_matches_the_windows_epoch() -> None:
    assert values.to_filetime(datetime(1970, 1, 1, tzinfo=UTC)) == 116444736000000000
    assert values.from_filetime(116444736000000000) == datetime(1970, 1, 1, tzinfo=UTC)


def test_eid_puts_the_replica_first_and_the_counter_big_endian() -> None:
    eid = ids.make_eid(0x0102030405)
    assert eid.to_bytes(8, "little") == b"\x01\x00\x00\x01\x02\x03\x04\x05"
    assert ids.split_eid(eid) == (1, 0x0102030405)
    with pytest.raises(InvalidArgument):
        ids.make_eid(1 << 48)


def test_entry_ids_have_the_ms_oxcdata_sizes_and_parse_back() -> None:
    provider, replica = uuid.uuid4(), uuid.uuid4()
    folder = ids.folder_entry_id(provider, replica, 0x0D)
    message = ids.message_entry_id(provider, replica, 0x0D, 0x1234)
    assert len(folder) == 46 and len(message) == 70
    assert ids.parse_entry_id(folder) == ("folder", provider, 0x0D, None)
    assert ids.parse_entry_id(message) == ("message", provider, 0x0D, 0x1234)
    with pytest.raises(InvalidArgument):
        ids.parse_entry_id(b"\x00" * 45)
    with pytest.raises(InvalidArgument):
        ids.parse_entry_id(folder[:20] + b"\x09\x00" + folder[22:])


def test_pcl_keeps_the_newest_change_per_namespace() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    pcl = ids.pcl_merge(None, ids.xid(a, 5))
    pcl = ids.pcl_merge(pcl, ids.xid(b, 2))
    pcl = ids.pcl_merge(pcl, ids.xid(a, 9))
    assert sorted(ids.pcl_unpack(pcl)) == sorted([ids.xid(a, 9), ids.xid(b, 2)])
    with pytest.raises(InvalidArgument):
        ids.pcl_unpack(b"\x16" + b"\x00" * 5)


def test_store_entry_id_wraps_emsmdb() -> None:
    raw = ids.store_entry_id("mail.example.org", "/o=org/ou=x/cn=Recipients/cn=user")
    assert raw[4:20] == ids.STORE_WRAP_UID
    assert b"emsmdb.dll\x00" in raw and raw.endswith(b"cn=user\x00")
