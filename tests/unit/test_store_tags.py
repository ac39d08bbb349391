"""The property vocabulary: generated tags.py, MS-OXPROPS values, the data checks."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import pytest

from gateway.store import tags as T
from gateway.store import tags_gen
from gateway.store.named import NamedProp
from gateway.store.proptypes import (
    PT_BINARY,
    PT_BOOLEAN,
    PT_MV_UNICODE,
    PT_SYSTIME,
    PT_UNICODE,
    prop_id,
    prop_type,
)


def test_generated_module_is_up_to_date(capsys: pytest.CaptureFixture[str]) -> None:
    assert tags_gen.main(["--check"]) == 0, capsys.readouterr().err
    assert tags_gen.render(tags_gen.load()) == tags_gen.OUTPUT.read_text(encoding="utf-8")


def test_check_reports_a_stale_module(tmp_path: Path) -> None:
    stale = tmp_path / "tags.py"
    stale.write_text("# old\n")
    assert tags_gen.main(["--check", "--output", str(stale)]) == 1
    assert stale.read_text() == "# old\n"
    assert tags_gen.main(["--output", str(stale)]) == 0
    assert tags_gen.main(["--check", "--output", str(stale)]) == 0


@pytest.mark.parametrize(("tag", "expected"), [
    (T.PidTagSubject, 0x0037001F),
    (T.PidTagMessageClass, 0x001A001F),
    (T.PidTagBody, 0x1000001F),
    (T.PidTagHtml, 0x10130102),
    (T.PidTagMessageDeliveryTime, 0x0E060040),
    (T.PidTagMessageFlags, 0x0E070003),
    (T.PidTagMessageSizeExtended, 0x0E080014),
    (T.PidTagDisplayName, 0x3001001F),
    (T.PidTagContainerClass, 0x3613001F),
    (T.PidTagSourceKey, 0x65E00102),
    (T.PidTagChangeKey, 0x65E20102),
    (T.PidTagPredecessorChangeList, 0x65E30102),
    (T.PidTagFlagStatus, 0x10900003),
    (T.PidTagLastVerbExecuted, 0x10810003),
    (T.PidTagMid, 0x674A0014),
    (T.PidTagFolderId, 0x67480014),
    (T.PidTagChangeNumber, 0x67A40014),
    (T.PidTagAttachDataObject, 0x3701000D),
    (T.PidTagRuleCondition, 0x667900FD),
    (T.PidTagRuleActions, 0x668000FE),
    (T.MetaTagIdsetGiven, 0x40170003),
    (T.PidTagAddressBookProxyAddresses, 0x800F101F),
])
def test_well_known_tags(tag: int, expected: int) -> None:
    assert tag == expected


def test_well_known_named_properties() -> None:
    assert T.PidLidAppointmentStartWhole == NamedProp(T.PSETID_Appointment, 0x820D, PT_SYSTIME)
    assert T.PidLidGlobalObjectId == NamedProp(T.PSETID_Meeting, 0x0003, PT_BINARY)
    assert T.PidLidReminderSet == NamedProp(T.PSETID_Common, 0x8503, PT_BOOLEAN)
    assert T.PidLidEmail1EmailAddress == NamedProp(T.PSETID_Address, 0x8083, PT_UNICODE)
    assert T.PidNameKeywords == NamedProp(T.PS_PUBLIC_STRINGS, "Keywords", PT_MV_UNICODE)
    assert T.PidLidAppointmentStartWhole.kind == "lid"
    assert T.PidNameKeywords.kind == "name"
    assert T.NAMED_PROPS["PidLidAppointmentStartWhole"] is T.PidLidAppointmentStartWhole


def test_property_set_guids() -> None:
    assert T.PSETID_Appointment == UUID("00062002-0000-0000-C000-000000000046")
    assert T.PS_PUBLIC_STRINGS == UUID("00020329-0000-0000-C000-000000000046")
    assert T.PS_MAPI == UUID("00020328-0000-0000-C000-000000000046")
    assert T.PSETID_Meeting == UUID("6ED8DA90-450B-101B-98DA-00AA003F1305")
    assert T.PSETID_Attachment == UUID("96357F7F-59E1-47D0-99A7-46515C183B54")
    assert T.PROPSET_NAMES[T.PSETID_Common] == "PSETID_Common"


def test_tag_names() -> None:
    assert T.TAG_NAMES[0x0037001F] == "PidTagSubject"
    assert T.tag_name(T.PidTagSubject) == "PidTagSubject"
    assert T.tag_name(0x0037001E) == "PidTagSubject"  # PT_STRING8 twin
    assert T.tag_name(T.PidTagEntryId) == "PidTagEntryId"  # not its alias PidTagMemberEntryId
    assert T.tag_name(0x12340003) == "0x12340003"
    assert T.tag_name(0x800F101F) == "0x800F101F"  # a named-property id in a mailbox
    assert T.tag_name(0x800F101F, addressbook=True) == "PidTagAddressBookProxyAddresses"


def test_vocabulary_is_consistent() -> None:
    vocab = tags_gen.load()
    assert 400 <= len(vocab.tagged) <= 600
    assert 150 <= len(vocab.named) <= 250
    for tag, name in T.TAG_NAMES.items():
        assert getattr(T, name) == tag
        assert 0x0001 <= prop_id(tag) <= 0x7FFF
        assert prop_type(tag) in tags_gen.TYPES.values()


# -- the data checks ---------------------------------------------------------------------------
PROPSETS = "PS_PUBLIC_STRINGS\t00020329-0000-0000-C000-000000000046\n" \
           "PSETID_Appointment\t00062002-0000-0000-C000-000000000046\n"
PROPTAGS = "# comment\nPidTagSubject\t0x0037\tPT_UNICODE\nPidTagEntryId\t0x0FFF\tPT_BINARY\n"
NAMEDPROPS = "PidLidLocation\tPSETID_Appointment\t0x8208\tPT_UNICODE\n" \
             "PidNameKeywords\tPS_PUBLIC_STRINGS\tKeywords\tPT_MV_UNICODE\n"


def write_data(tmp_path: Path, propsets: str = PROPSETS, proptags: str = PROPTAGS,
               namedprops: str = NAMEDPROPS) -> Path:
    (tmp_path / "propsets.tsv").write_text(propsets)
    (tmp_path / "proptags.tsv").write_text(proptags)
    (tmp_path / "namedprops.tsv").write_text(namedprops)
    return tmp_path


def problems(tmp_path: Path, **files: str) -> str:
    with pytest.raises(tags_gen.VocabularyError) as info:
        tags_gen.load(write_data(tmp_path, **files))
    return str(info.value)


def test_valid_data_loads_and_renders(tmp_path: Path) -> None:
    data = write_data(tmp_path, proptags=PROPTAGS + (
        "PidTagMemberEntryId\t0x0FFF\tPT_BINARY\talias=PidTagEntryId\n"
        "PidTagAddressBookProxyAddresses\t0x800F\tPT_MV_UNICODE\taddressbook\n"))
    vocab = tags_gen.load(data)
    assert [d.tag for d in vocab.tagged] == [0x0037001F, 0x0FFF0102, 0x0FFF0102, 0x800F101F]
    assert [(n.key, n.prop_type) for n in vocab.named] == [
        (0x8208, PT_UNICODE), ("Keywords", PT_MV_UNICODE)]
    text = tags_gen.render(vocab)
    assert "PidTagMemberEntryId: Final = 0x0FFF0102  # PT_BINARY, alias of PidTagEntryId" in text
    assert '    0x0FFF0102: "PidTagEntryId",' in text
    out = tmp_path / "tags.py"
    assert tags_gen.main(["--data", str(data), "--output", str(out)]) == 0
    namespace: dict[str, object] = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)
    assert namespace["PidLidLocation"] == NamedProp(T.PSETID_Appointment, 0x8208, PT_UNICODE)


@pytest.mark.parametrize(("proptags", "where", "words"), [
    ("PidTagSubject\t0x0037\tPT_UNICODE\nPidTagSubject\t0x0E1D\tPT_UNICODE\n",
     "proptags.tsv:2", "duplicate name PidTagSubject"),
    ("PidTagSubject\t0x0037\tPT_UNICODE\nPidTagTopic\t0x0037\tPT_UNICODE\n",
     "proptags.tsv:2", "alias=PidTagSubject"),
    ("PidTagSubject\t0x0037\tPT_UNICODE\nPidTagTopic\t0x0037\tPT_LONG\talias=PidTagSubject\n",
     "proptags.tsv:2", "cannot alias PidTagSubject"),
    ("PidTagSubject\t0x0037\tPT_UNICODE\nPidTagTopic\t0x0038\tPT_UNICODE\talias=PidTagNone\n",
     "proptags.tsv:2", "PidTagNone is not"),
    ("\nPidTagSubject\t0x0037\tPT_TEXT\n", "proptags.tsv:2", "unknown property type 'PT_TEXT'"),
    ("PidTagSubject\t0x0037\tPT_ERROR\n", "proptags.tsv:1", "unknown property type"),
    ("PidTagSubject\t0x8037\tPT_UNICODE\n", "proptags.tsv:1", "outside 0x0001-0x7FFF"),
    ("PidTagSubject\t0x0000\tPT_UNICODE\n", "proptags.tsv:1", "outside 0x0001-0x7FFF"),
    ("PidTagSubject\t0xFFFF\tPT_UNICODE\taddressbook\n", "proptags.tsv:1",
     "outside 0x0001-0xFFFE"),
    ("PidTagSubject\t37\tPT_UNICODE\n", "proptags.tsv:1", "malformed property id '37'"),
    ("PidTagSubject\t0x0037\n", "proptags.tsv:1", "expected 3 or 4"),
    ("PidTagSubject\t0x0037\tPT_UNICODE\tprivate\n", "proptags.tsv:1", "unknown option"),
    ("Subject\t0x0037\tPT_UNICODE\n", "proptags.tsv:1", "malformed tagged property name"),
])
def test_bad_tagged_properties(tmp_path: Path, proptags: str, where: str, words: str) -> None:
    message = problems(tmp_path, proptags=proptags)
    line = next(line for line in message.splitlines() if words in line)
    assert line.startswith(where + ": ")


@pytest.mark.parametrize(("namedprops", "where", "words"), [
    ("PidLidLocation\tPSETID_Appointment\t0x10000\tPT_UNICODE\n",
     "namedprops.tsv:1", "LID 0x10000 of PidLidLocation is outside 0x0001-0xFFFF"),
    ("PidLidLocation\tPSETID_Appointment\t0x0000\tPT_UNICODE\n", "namedprops.tsv:1", "outside"),
    ("PidLidLocation\tPSETID_Appointment\t0x82G8\tPT_UNICODE\n",
     "namedprops.tsv:1", "malformed LID '0x82G8'"),
    ("PidLidLocation\tPSETID_Nowhere\t0x8208\tPT_UNICODE\n",
     "namedprops.tsv:1", "unknown property set 'PSETID_Nowhere'"),
    ("PidLidLocation\tPSETID_Appointment\t0x8208\tPT_UNICODE\n"
     "PidLidWhere\tPSETID_Appointment\t0x8208\tPT_UNICODE\n",
     "namedprops.tsv:2", "alias=PidLidLocation"),
    ("PidNameKeywords\tPS_PUBLIC_STRINGS\tKeywords\tPT_MV_UNICODE\n"
     "PidNameKeywords\tPS_PUBLIC_STRINGS\tCategories\tPT_MV_UNICODE\n",
     "namedprops.tsv:2", "duplicate name PidNameKeywords"),
    ("PidLidKeywords\tPS_PUBLIC_STRINGS\tKeywords\tPT_MV_UNICODE\n",
     "namedprops.tsv:1", "expected PidName*"),
    ("PidNameLocation\tPSETID_Appointment\t0x8208\tPT_UNICODE\n",
     "namedprops.tsv:1", "expected PidLid*"),
    ("PidLidLocation\tPSETID_Appointment\t0x8208\tPT_VARIANT\n",
     "namedprops.tsv:1", "unknown property type"),
    ("PidLidLocation\tPSETID_Appointment\t0x8208\n", "namedprops.tsv:1", "expected 4 or 5"),
    ("PidTagSubject\tPSETID_Appointment\t0x8208\tPT_UNICODE\n",
     "namedprops.tsv:1", "malformed name 'PidTagSubject' for a LID"),
])
def test_bad_named_properties(tmp_path: Path, namedprops: str, where: str, words: str) -> None:
    message = problems(tmp_path, namedprops=namedprops)
    line = next(line for line in message.splitlines() if words in line)
    assert line.startswith(where + ": ")


@pytest.mark.parametrize(("propsets", "where", "words"), [
    ("PS_PUBLIC_STRINGS\t00020329-0000-0000-C000-00000000004\n", "propsets.tsv:1",
     "malformed GUID"),
    ("PS_PUBLIC_STRINGS\t{00020329-0000-0000-C000-000000000046}\n", "propsets.tsv:1",
     "malformed GUID"),
    (PROPSETS + "PSETID_Other\t00020329-0000-0000-c000-000000000046\n", "propsets.tsv:3",
     "is already PS_PUBLIC_STRINGS"),
    (PROPSETS + "PS_PUBLIC_STRINGS\t00020386-0000-0000-C000-000000000046\n", "propsets.tsv:3",
     "duplicate name PS_PUBLIC_STRINGS"),
    ("PUBLIC_STRINGS\t00020329-0000-0000-C000-000000000046\n", "propsets.tsv:1",
     "malformed property set name"),
])
def test_bad_property_sets(tmp_path: Path, propsets: str, where: str, words: str) -> None:
    message = problems(tmp_path, propsets=propsets)
    line = next(line for line in message.splitlines() if words in line)
    assert line.startswith(where + ": ")


def test_every_problem_is_reported_and_nothing_written(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    data = write_data(tmp_path, proptags="PidTagA\t0x9000\tPT_LONG\nPidTagB\t0x0001\tPT_X\n")
    out = tmp_path / "tags.py"
    assert tags_gen.main(["--data", str(data), "--output", str(out)]) == 2
    assert not out.exists()
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[0] for line in err] == ["proptags.tsv:1", "proptags.tsv:2"]
