"""LDAP filter escaping, organisation overrides and the [auth]/[ldap] sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.ldap import LdapAuthenticator, LdapConfig, escape_filter_value
from gateway.auth.settings import AuthSection, LdapSection
from gateway.config import ConfigError
from gateway.host import build_host


@pytest.mark.parametrize(("value", "escaped"), [
    ("alice@example.org", "alice@example.org"),
    ("*", r"\2a"),
    ("a*)(uid=*", r"a\2a\29\28uid=\2a"),
    ("back\\slash", r"back\5cslash"),
    ("nul\0byte", r"nul\00byte"),
    ("\u0430lice", r"\d0\b0lice"),
    ("tab\there", r"tab\09here"),
])
def test_rfc4515_escaping(value: str, escaped: str) -> None:
    assert escape_filter_value(value) == escaped


def config(**changes: object) -> LdapConfig:
    section = LdapSection(server="ldap://ldap.example", bind_user="cn=svc", bind_password="pw",
                          base_dn="dc=example", username_attribute="mail")
    for key, value in changes.items():
        setattr(section, key, value)
    return LdapConfig.from_section(section)


def test_search_filter_with_and_without_extra_filter() -> None:
    assert config().search_filter("a*b") == r"(mail=a\2ab)"
    assert config(filter="(objectClass=person)").search_filter("x)(") == \
        r"(&(mail=x\29\28)(objectClass=person))"


def test_org_params_override_key_by_key() -> None:
    base = config(starttls=True)
    merged = base.with_org_params({"ldap_uri": "ldaps://other", "ldap_basedn": "ou=org",
                                   "ldap_mail_attr": "", "ldap_start_tls": "0",
                                   "unrelated": "x"})
    assert merged.server == "ldaps://other" and merged.base_dn == "ou=org"
    assert merged.username_attribute == "mail" and merged.bind_user == "cn=svc"
    assert merged.starttls is False
    assert base.with_org_params({}) is base
    assert base.with_org_params({"ldap_start_tls": "yes"}).starttls is True
    assert "pw" not in repr(merged)


def test_bad_org_attribute_is_refused_at_use() -> None:
    bad = config().with_org_params({"ldap_mail_attr": "mail)(uid=*"})
    with pytest.raises(ValueError, match="not an LDAP attribute"):
        bad.search_filter("alice")


async def test_unconfigured_and_empty_password_never_touch_the_network() -> None:
    ldap = LdapAuthenticator()
    assert not (await ldap.verify(config(server=""), "a@x", "pw")).ok
    outcome = await ldap.verify(config(server="ldap://192.0.2.1"), "a@x", "")
    assert not outcome.ok and outcome.reason == "empty password"
    assert not (await ldap.bind(config(), "uid=a", "")).ok
    assert ldap.binds == 0


def test_section_defaults() -> None:
    auth, ldap = AuthSection(), LdapSection()
    assert (auth.mode, auth.failure_delay, auth.cache_ttl) == ("externid", 1.0, 60.0)
    assert ldap.username_attribute == "mail" and not ldap.starttls


@pytest.mark.parametrize(("fragment", "message"), [
    ('[auth]\nmode = "kerberos"\n', "must be one of externid, sql, ldap"),
    ("[auth]\nfailure_delay = -1\n", "must not be negative"),
    ("[auth]\nfailure_window = 0\n", "greater than 0"),
    ('[ldap]\nfilter = "objectClass=person"\n', "not one parenthesised"),
    ('[ldap]\nfilter = "(a=b))(c=d"\n', "not one parenthesised"),
    ('[ldap]\nusername_attribute = "mail)(x"\n', "not an LDAP attribute"),
    ('[ldap]\nserver = "http://x"\n', "ldap:// or ldaps://"),
])
def test_bad_values_stop_start_up(tmp_path: Path, fragment: str, message: str) -> None:
    (tmp_path / "x.toml").write_text(fragment)
    with pytest.raises(ConfigError, match=message):
        build_host([tmp_path], environ={})


def test_good_values_load_and_secrets_are_masked(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text(
        '[auth]\nmode = "ldap"\n[ldap]\nserver = "ldap://127.0.0.1"\n'
        'bind_password = "hunter2"\nfilter = "(&(objectClass=person)(!(x=\\\\29)))"\n')
    host = build_host([tmp_path], environ={})
    assert host.config.auth.mode == "ldap"
    assert host.config.as_dict()["ldap"]["bind_password"] == "********"
    assert host.auth.names[0] == "password"
