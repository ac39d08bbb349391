"""grommunio's privilege bits, the DETAIL1 rule, EWS/MAPI denials and account state."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.directory import User
from gateway.directory import privileges as p


def user(bits: int, status: int = 0, display_type: int | None = 0) -> User:
    return User(id=1, username="a@example.test", domain_id=1, password="", maildir="",
                lang="", timezone="", privilege_bits=bits, address_status=status,
                externid=None, homeserver=0, display_type=display_type, display_name="",
                org_id=0)


def test_bit_values_are_grommunios() -> None:
    assert (p.IMAP, p.SMTP, p.CHGPASSWD, p.PUBADDR) == (0x1, 0x2, 0x4, 0x8)
    assert (p.CHAT, p.VIDEO, p.FILES, p.ARCHIVE) == (0x10, 0x20, 0x40, 0x80)
    assert (p.DETAIL1, p.WEB, p.EAS, p.DAV) == (0x100, 0x200, 0x400, 0x800)
    assert p.DEFAULT_NEW_USER == 0xF
    assert {"imap", "smtp", "chgpasswd", "pubaddr", "web", "eas", "dav", "ews",
            "mapi"} <= p.NAMES


def test_without_detail1_web_eas_dav_count_as_granted() -> None:
    plain = user(p.IMAP)
    for protocol in ("web", "eas", "dav", "caldav", "carddav"):
        assert p.protocol_allowed(plain, protocol)
    detailed = user(p.IMAP | p.DETAIL1 | p.EAS)
    assert p.protocol_allowed(detailed, "eas")
    assert not p.protocol_allowed(detailed, "web")
    assert not p.protocol_allowed(detailed, "dav")


def test_bits_gate_imap_pop3_smtp() -> None:
    assert p.protocol_allowed(user(p.IMAP), "IMAP") and p.protocol_allowed(user(p.IMAP), "pop3")
    assert not p.protocol_allowed(user(p.SMTP), "imap")
    assert p.protocol_allowed(user(p.SMTP), "smtp") and not p.protocol_allowed(user(0), "smtp")


def test_ews_mapi_need_no_bit_unless_denied() -> None:
    nobody = user(0)
    for protocol in ("ews", "mapi", "rpc", "autodiscover", "oab"):
        assert p.protocol_allowed(nobody, protocol)
    assert not p.protocol_allowed(nobody, "ews", {"ews"})
    assert not p.protocol_allowed(nobody, "rpc", frozenset({"mapi"}))
    assert p.protocol_allowed(nobody, "mapi", {"ews"})
    assert p.protocol_allowed(nobody, "autodiscover", {"ews", "mapi"})


def test_unknown_protocol_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        p.protocol_allowed(user(0xFFF), "gopher")


def test_changing_web_sets_detail1_and_keeps_the_others() -> None:
    bits, denied = p.apply_changes(p.DEFAULT_NEW_USER, (), allow=(), deny={"web"})
    assert bits & p.DETAIL1 and not bits & p.WEB and bits & p.EAS and bits & p.DAV
    assert denied == frozenset()
    assert not p.protocol_allowed(user(bits), "web") and p.protocol_allowed(user(bits), "eas")
    again, _ = p.apply_changes(bits, (), allow={"web"}, deny={"dav"})
    assert again & p.WEB and not again & p.DAV and again & p.EAS


def test_extra_denials_and_conflicts() -> None:
    bits, denied = p.apply_changes(0xF, (), allow=(), deny={"ews", "imap"})
    assert bits == 0xE and denied == {"ews"}
    bits, denied = p.apply_changes(bits, denied, allow={"ews", "imap"}, deny={"mapi"})
    assert bits == 0xF and denied == {"mapi"}
    with pytest.raises(p.PrivilegeError, match="both allowed and denied"):
        p.apply_changes(0, (), allow={"smtp"}, deny={"smtp"})
    with pytest.raises(p.PrivilegeError, match="unknown privilege"):
        p.apply_changes(0, (), allow={"root"}, deny=())


def test_parse_names() -> None:
    assert p.parse_names(("imap, SMTP", "ews")) == {"imap", "smtp", "ews"}
    assert p.parse_names(None) == set() and p.parse_names("") == set()
    with pytest.raises(p.PrivilegeError, match="unknown privilege drop"):
        p.parse_names("imap,drop")


def test_granted_names() -> None:
    assert p.granted_names(0xF) == ["imap", "smtp", "chgpasswd", "pubaddr", "web", "eas", "dav",
                                    "ews", "mapi"]
    assert p.granted_names(p.DETAIL1 | p.DAV, {"ews"}) == ["dav", "mapi"]


@pytest.mark.parametrize(("status", "display_type", "reason"), [
    (0, 0, None), (1, 0, "suspended"), (3, 0, "deleted"), (4, 0, "shared mailbox"),
    (5, 0, "contact"), (0x10, 0, "suspended domain"), (0x30, 0, "deleted domain"),
    (0, None, "no display type"), (0, 1, "display type 1"), (0, 7, "display type 7"),
])
def test_account_problem(status: int, display_type: int | None, reason: str | None) -> None:
    problem = p.account_problem(user(0xF, status, display_type))
    if reason is None:
        assert problem is None
    else:
        assert problem is not None and reason in problem


def test_user_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        user(0).privilege_bits = 1  # type: ignore[misc]
