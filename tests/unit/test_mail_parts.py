"""The pieces of gateway/mail on their own: [mail] settings, the queue files, DSN
building, header and address handling of submission."""

from __future__ import annotations

import email
import email.policy
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, build_config, read_layers
from gateway.mail import dsn
from gateway.mail.queue import (
    DELIVERED,
    FAILED,
    Envelope,
    QueueFiles,
    Recipient,
    check_queue_id,
    new_queue_id,
)
from gateway.mail.settings import MailSection, RelayHost, parse_relayhost, resolve
from gateway.mail.submission import SubmissionRefused, check_address, split_header


# -- settings ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("", None),
    ("[mail.example.net]:587", RelayHost("mail.example.net", 587, False)),
    ("[mail.example.net]", RelayHost("mail.example.net", 25, False)),
    ("example.net", RelayHost("example.net", 25, True)),
    ("example.net:2525", RelayHost("example.net", 2525, True)),
    ("[::1]:25", RelayHost("::1", 25, False)),
])
def test_relayhost_forms(text: str, expected: RelayHost | None) -> None:
    assert parse_relayhost(text) == expected


@pytest.mark.parametrize("text", ["[host", "[host]x", "host:0", "host:99999", "::1:25",
                                  "ho st", "[]:25", ":25"])
def test_relayhost_malformed(text: str) -> None:
    with pytest.raises(ValueError):
        parse_relayhost(text)


def test_section_checks_through_config(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text('[mail]\nrelay_tls = "maybe"\n')
    with pytest.raises(ConfigError, match="relay_tls"):
        build_config(read_layers([tmp_path], {}), {"mail": MailSection}, [tmp_path])
    (tmp_path / "m.toml").write_text('[mail]\nretry_schedule = []\n')
    with pytest.raises(ConfigError, match="retry_schedule"):
        build_config(read_layers([tmp_path], {}), {"mail": MailSection}, [tmp_path])
    (tmp_path / "m.toml").write_text('[mail]\nrelayhost = "[x"\nrelay_password = "pw"\n')
    with pytest.raises(ConfigError, match="relayhost"):
        build_config(read_layers([tmp_path], {}), {"mail": MailSection}, [tmp_path])
    (tmp_path / "m.toml").write_text('[mail]\nrelay_password = "hunter2"\n')
    config = build_config(read_layers([tmp_path], {}), {"mail": MailSection}, [tmp_path])
    assert config.as_dict()["mail"]["relay_password"] != "hunter2"


def test_derived_defaults() -> None:
    settings = resolve(MailSection(hostname="gw.example.org"))
    assert settings.bounce_from == "MAILER-DAEMON@gw.example.org"
    assert settings.relay is None and not settings.mx_lookup
    assert resolve(MailSection()).hostname  # the machine's name


def test_pending_conf_fragment_states_the_defaults() -> None:
    """conf.d's [mail] fragment spells out exactly the declared defaults."""
    import tomllib

    from gateway.config import SOURCE_CONF_D

    found = [p for p in SOURCE_CONF_D.iterdir() if p.name.startswith("mail.toml")]
    assert found, "conf.d/mail.toml missing"
    values = tomllib.loads(found[0].read_text())["mail"]
    assert values == {name: getattr(MailSection(), name)
                      for name in MailSection.__dataclass_fields__}


# -- queue files ------------------------------------------------------------------------------
def envelope(qid: str, **changes: object) -> Envelope:
    now = time.time()
    values: dict[str, object] = dict(id=qid, sender="a@x.test",
                                     recipients=[Recipient("b@y.test")], size=3, created=now,
                                     queued_at=now, next_attempt=now)
    values.update(changes)
    return Envelope(**values)  # type: ignore[arg-type]


def test_queue_ids_are_unique_and_checked() -> None:
    ids = {new_queue_id() for _ in range(1000)}
    assert len(ids) == 1000 and all(check_queue_id(i) == i for i in ids)
    for bad in ("../x", "", "ABC", "1234567890AB/../", "g" * 20):
        with pytest.raises(ValueError):
            check_queue_id(bad)


def test_files_round_trip_and_atomic_layout(tmp_path: Path) -> None:
    files = QueueFiles(tmp_path / "queue")
    qid = new_queue_id()
    files.put(b"abc", envelope(qid, recipients=[Recipient("jörg@y.test", notify=["NEVER"])]))
    assert sorted(os.listdir(files.messages)) == [f"{qid}.eml", f"{qid}.json"]
    assert os.listdir(files.tmp) == []
    loaded = files.load(qid)
    assert loaded is not None and loaded.recipients[0].address == "jörg@y.test"
    assert loaded.recipients[0].notify == ["NEVER"] and files.read_raw(qid) == b"abc"
    assert files.ids() == [qid]
    files.remove(qid)
    assert files.ids() == [] and os.listdir(files.messages) == []


def test_orphans_swept_and_corrupt_envelope_left(tmp_path: Path) -> None:
    files = QueueFiles(tmp_path / "queue")
    files.ensure()
    orphan = files.messages / "AAAAAAAAAAAAAAAA.eml"
    orphan.write_bytes(b"crashed before its envelope")
    young = files.messages / "BBBBBBBBBBBBBBBB.eml"
    young.write_bytes(b"being queued right now")
    old = time.time() - 7200
    os.utime(orphan, (old, old))
    (files.messages / "CCCCCCCCCCCCCCCC.json").write_text("{not json")
    half = files.tmp / "DDDDDDDDDDDDDDDD.eml.1234"
    half.write_bytes(b"half written")
    os.utime(half, (old, old))
    assert files.ids() == ["CCCCCCCCCCCCCCCC"]
    assert not orphan.exists() and young.exists() and not half.exists()
    assert files.load("CCCCCCCCCCCCCCCC") is None


def test_lock_is_exclusive(tmp_path: Path) -> None:
    files = QueueFiles(tmp_path / "queue")
    qid = new_queue_id()
    files.put(b"x", envelope(qid))
    first = files.lock(qid)
    assert first is not None
    assert files.lock(qid) is None
    files.unlock(first)
    second = files.lock(qid)
    assert second is not None
    files.unlock(second)
    assert files.lock("FFFFFFFFFFFFFFFF") is None


# -- DSN --------------------------------------------------------------------------------------
ORIGINAL = b"From: <a@x.test>\r\nTo: <b@y.test>\r\nSubject: hi\r\n\r\nthe body\r\n"


def failed(address: str, **changes: object) -> Recipient:
    values: dict[str, object] = dict(address=address, state=FAILED, action="failed", code=550,
                                     enhanced="5.1.1", text="5.1.1 no such user\r\nX-Evil: 1",
                                     remote_mta="dns; mx.y.test")
    values.update(changes)
    return Recipient(**values)  # type: ignore[arg-type]


def test_dsn_failure_report_structure() -> None:
    env = envelope("ABCDEF0123456789", envid="e1", ret="")
    r = failed("b@y.test", orcpt="rfc822;B@y.test")
    raw = dsn.notice(hostname="gw.test", bounce_from="MAILER-DAEMON@gw.test", envelope=env,
                     raw=ORIGINAL, recipients=[r], action="failed")
    assert raw is not None
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert msg.get_content_type() == "multipart/report"
    assert msg["To"] == "a@x.test" and msg["Auto-Submitted"] == "auto-replied"
    kinds = [p.get_content_type() for p in msg.iter_parts()]
    assert kinds == ["text/plain", "message/delivery-status", "message/rfc822"]
    status = raw.split(b"message/delivery-status")[1].decode()
    for line in ("Reporting-MTA: dns; gw.test", "Original-Envelope-Id: e1", "Arrival-Date: ",
                 "Original-Recipient: rfc822; B@y.test", "Final-Recipient: rfc822; b@y.test",
                 "Action: failed", "Status: 5.1.1", "Remote-MTA: dns; mx.y.test",
                 "Diagnostic-Code: smtp; 550 5.1.1 no such user X-Evil: 1"):
        assert line in status, line
    assert b"\r\nX-Evil" not in raw  # a reply's CR/LF cannot add header fields
    assert b"the body" in raw


def test_dsn_policy() -> None:
    env = envelope("ABCDEF0123456789")
    args: dict[str, Any] = dict(hostname="h", bounce_from="m@h", raw=ORIGINAL)
    assert dsn.notice(envelope=envelope("ABCDEF0123456789", sender=""),
                      recipients=[failed("b@y.test")], action="failed", **args) is None
    assert dsn.notice(envelope=env, recipients=[failed("b@y.test", notify=["NEVER"])],
                      action="failed", **args) is None
    assert dsn.notice(envelope=env, recipients=[failed("b@y.test", notify=["SUCCESS"])],
                      action="failed", **args) is None
    assert dsn.notice(envelope=env, recipients=[failed("b@y.test")], action="delayed",
                      **args) is None  # DELAY only when asked for
    delayed = dsn.notice(envelope=env, recipients=[failed("b@y.test", notify=["DELAY"])],
                         action="delayed", max_queue_age=3600, **args)
    assert delayed is not None and b"Will-Retry-Until:" in delayed
    assert b"text/rfc822-headers" in delayed and b"the body" not in delayed
    ok = Recipient("b@y.test", state=DELIVERED, action="relayed", notify=["SUCCESS"], code=250)
    success = dsn.notice(envelope=env, recipients=[ok], action="relayed", **args)
    assert success is not None and b"Status: 2.0.0" in success
    headers_only = dsn.notice(envelope=envelope("ABCDEF0123456789", ret="HDRS"),
                              recipients=[failed("b@y.test")], action="failed", **args)
    assert headers_only is not None and b"the body" not in headers_only
    big = ORIGINAL + b"x" * (dsn.FULL_LIMIT + 1)
    assert b"xxxx" not in (dsn.notice(envelope=env, recipients=[failed("b@y.test")],
                                      action="failed", hostname="h", bounce_from="m@h",
                                      raw=big) or b"")


# -- submission helpers -------------------------------------------------------------------------
def test_split_header_keeps_bytes() -> None:
    raw = b"From: a\r\nTo: b,\r\n c\r\nBcc: x\r\n\r\nbody\r\n\r\nmore"
    fields, rest = split_header(raw)
    assert fields == [b"From: a\r\n", b"To: b,\r\n c\r\n", b"Bcc: x\r\n"]
    assert b"".join(fields) + rest == raw
    fields, rest = split_header(b"Subject: lf only\n\nbody\n")
    assert fields == [b"Subject: lf only\n"] and rest == b"\nbody\n"


@pytest.mark.parametrize("good", ["a@b.test", "first.last+tag@Sub.Example.ORG", "jörg@bücher.de",
                                  "x@[192.0.2.1]"])
def test_check_address_accepts(good: str) -> None:
    assert check_address(good, sender=False).rpartition("@")[2] == good.rpartition("@")[
        2].lower()


@pytest.mark.parametrize("bad", ["a@b.test\r\nDATA", "a@b.test\n", "<a@b.test>", "a b@c.test",
                                 "@b.test", "a@", "a@b..test", "a@-b.test", "a@b_c.test",
                                 "x" * 65 + "@b.test", "a@" + "b" * 250 + ".test", "a\x00@b.test"])
def test_check_address_refuses(bad: str) -> None:
    with pytest.raises(SubmissionRefused) as refused:
        check_address(bad, sender=True)
    assert refused.value.code == 501 and refused.value.enhanced == "5.1.7"


def test_envelope_json_is_plain_data(tmp_path: Path) -> None:
    env = envelope("ABCDEF0123456789", recipients=[failed("b@y.test")])
    data = json.loads(env.to_json())
    assert data["recipients"][0]["state"] == "failed"
    assert Envelope.from_json(env.to_json()) == env
