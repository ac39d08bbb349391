"""crypt(3) password hashes as grommunio stores them in ``users.password``.

New hashes are SHA-512-crypt (``$6$``) with a 16-character salt and the
default 5000 rounds, the same as grommunio's admin API makes
(``crypt.mksalt(METHOD_SHA512)``). Verification accepts what grommunio's
libcrypt accepts: ``$6$``, ``$5$``, ``$1$`` and DES through libpass (the
maintained passlib fork); anything else (bcrypt ``$2b$``, yescrypt ``$y$``,
``$gy$`` ...) through the system's libxcrypt (``crypt_rn``, thread-safe).

Both functions block (SHA-512-crypt costs milliseconds): run them in an
executor. An empty stored hash, an empty password or a password containing a
NUL byte never verifies.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hmac
import threading

from passlib.hash import des_crypt, md5_crypt, sha256_crypt, sha512_crypt

SALT_SIZE = 16
_CRYPT_DATA_SIZE = 32768  # sizeof(struct crypt_data) in libxcrypt

_sha512 = sha512_crypt.using(salt_size=SALT_SIZE, rounds=5000)
_HANDLERS = (sha512_crypt, sha256_crypt, md5_crypt)

_libcrypt_lock = threading.Lock()
_libcrypt: ctypes.CDLL | bool | None = False  # False: not looked up yet


def hash_password(password: str) -> str:
    """A new ``$6$<16-char salt>$...`` hash of ``password``."""
    if not password or "\0" in password:
        raise ValueError("a password must be non-empty and contain no NUL byte")
    return str(_sha512.hash(password))


def _crypt_rn() -> ctypes.CDLL | None:
    global _libcrypt
    with _libcrypt_lock:
        if _libcrypt is False:
            name = ctypes.util.find_library("crypt")
            lib = None
            if name:
                try:
                    lib = ctypes.CDLL(name)
                    lib.crypt_rn.restype = ctypes.c_char_p
                    lib.crypt_rn.argtypes = [ctypes.c_char_p, ctypes.c_char_p,
                                             ctypes.c_void_p, ctypes.c_int]
                except (OSError, AttributeError):
                    lib = None
            _libcrypt = lib
        return _libcrypt if isinstance(_libcrypt, ctypes.CDLL) else None


def system_crypt(password: str, setting: str) -> str | None:
    """libxcrypt's ``crypt_rn(password, setting)``; None when unavailable or refused."""
    lib = _crypt_rn()
    if lib is None:
        return None
    data = ctypes.create_string_buffer(_CRYPT_DATA_SIZE)
    result = lib.crypt_rn(password.encode("utf-8"), setting.encode("ascii"), data,
                          _CRYPT_DATA_SIZE)
    if not result or result.startswith(b"*"):
        return None
    return result.decode("ascii", "replace")


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches the crypt(3) hash ``stored``."""
    if not password or not stored or "\0" in password:
        return False
    try:
        stored.encode("ascii")
    except UnicodeEncodeError:
        return False
    for handler in _HANDLERS:
        if handler.identify(stored):
            try:
                return bool(handler.verify(password, stored))
            except ValueError:
                return False
    if len(stored) == 13 and des_crypt.identify(stored):
        try:
            return bool(des_crypt.verify(password, stored))
        except ValueError:
            return False
    computed = system_crypt(password, stored)
    return computed is not None and hmac.compare_digest(computed.encode(), stored.encode())
