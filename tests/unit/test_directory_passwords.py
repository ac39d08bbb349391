"""crypt(3) hashes as grommunio stores them."""

from __future__ import annotations

import re

import pytest
from passlib.hash import des_crypt, md5_crypt, sha256_crypt

from gateway.directory.passwords import hash_password, system_crypt, verify_password


def test_new_hashes_are_sha512_crypt_with_a_16_character_salt() -> None:
    hashed = hash_password("secret")
    assert re.fullmatch(r"\$6\$[./0-9A-Za-z]{16}\$[./0-9A-Za-z]{86}", hashed)
    assert len(hashed) <= 136  # users.password is varchar(136)
    assert hash_password("secret") != hashed  # salted
    assert verify_password("secret", hashed)
    assert not verify_password("Secret", hashed)


@pytest.mark.parametrize("bad", ["", "a\0b"])
def test_hash_refuses_empty_and_nul(bad: str) -> None:
    with pytest.raises(ValueError):
        hash_password(bad)


def test_other_schemes_grommunio_accepts() -> None:
    for stored in (md5_crypt.hash("pw"), sha256_crypt.hash("pw"), des_crypt.hash("pw")):
        assert verify_password("pw", stored) and not verify_password("px", stored)


@pytest.mark.parametrize("setting", ["$y$j9T$abcdefghijklmnop$", "$2b$05$abcdefghijklmnopqrstuu"])
def test_libxcrypt_schemes(setting: str) -> None:
    stored = system_crypt("pw", setting)
    if stored is None:
        pytest.skip("libcrypt without this scheme")
    assert verify_password("pw", stored) and not verify_password("px", stored)


@pytest.mark.parametrize(("password", "stored"), [
    ("pw", ""), ("", "$6$abc$def"), ("p\0w", "$6$abc$def"), ("pw", "garbage"),
    ("pw", "$6$ünïcode$x"), ("pw", "*"), ("pw", "!"),
])
def test_nothing_odd_verifies(password: str, stored: str) -> None:
    assert not verify_password(password, stored)
