"""Store errors: each names what was wrong, and maps onto a MAPI error code.

Protocol plugins translate them into their own failures (an IMAP ``NO``, an
EWS ResponseCode, a ROP return value) by the ``code`` attribute.
"""

from __future__ import annotations

# MAPI error codes (MS-OXCDATA 2.4) the store raises.
MAPI_E_NOT_FOUND = 0x8004010F
MAPI_E_INVALID_PARAMETER = 0x80070057
MAPI_E_NO_ACCESS = 0x80070005
MAPI_E_COLLISION = 0x80040604
MAPI_E_FOLDER_CYCLE = 0x8004060B
MAPI_E_TOO_BIG = 0x80040305
MAPI_E_TOO_COMPLEX = 0x80040117
MAPI_E_STORE_FULL = 0x8004060C
MAPI_E_QUOTA_EXCEEDED = 0x80040510
MAPI_E_CORRUPT_DATA = 0x8004011B
MAPI_E_BAD_VALUE = 0x80040301


class StoreError(Exception):
    """Base of every store failure."""

    code = 0x80004005  # MAPI_E_CALL_FAILED


class NotFound(StoreError):
    code = MAPI_E_NOT_FOUND


class InvalidValue(StoreError, ValueError):
    """A property value that does not fit its tag's type, or breaks a limit."""

    code = MAPI_E_BAD_VALUE

    def __init__(self, tag: int, reason: str):
        self.tag = tag
        super().__init__(f"property 0x{tag:08X}: {reason}")


class InvalidArgument(StoreError, ValueError):
    code = MAPI_E_INVALID_PARAMETER


class TooBig(StoreError):
    code = MAPI_E_TOO_BIG


class TooComplex(StoreError):
    """A restriction or sort too deep or too wide to run."""

    code = MAPI_E_TOO_COMPLEX


class Collision(StoreError):
    """A folder name already used among its siblings."""

    code = MAPI_E_COLLISION


class FolderCycle(StoreError):
    """A folder moved or copied into itself or one of its descendants."""

    code = MAPI_E_FOLDER_CYCLE


class AccessDenied(StoreError):
    code = MAPI_E_NO_ACCESS


class QuotaExceeded(StoreError):
    """A storage, receive or send quota reached; ``kind`` says which."""

    code = MAPI_E_STORE_FULL

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


class CorruptStore(StoreError):
    code = MAPI_E_CORRUPT_DATA
