"""The well-known folders of a store: their fixed global counters and classes.

A private store's default folders have fixed ids below ``FIRST_FREE_GC`` (the
same numbering grommunio uses, so ids in logs compare), which makes "the
Inbox" a constant rather than a lookup. Provisioning creates them; these
folders cannot be deleted, moved or renamed away.
"""

from __future__ import annotations

from enum import IntEnum


class Private(IntEnum):
    ROOT = 0x01
    DEFERRED_ACTION = 0x02
    SPOOLER_QUEUE = 0x03
    SHORTCUTS = 0x04
    FINDER = 0x05
    VIEWS = 0x06
    COMMON_VIEWS = 0x07
    SCHEDULE = 0x08
    IPM_SUBTREE = 0x09
    SENT_ITEMS = 0x0A
    DELETED_ITEMS = 0x0B
    OUTBOX = 0x0C
    INBOX = 0x0D
    DRAFTS = 0x0E
    CALENDAR = 0x0F
    JOURNAL = 0x10
    NOTES = 0x11
    TASKS = 0x12
    CONTACTS = 0x13
    QUICK_CONTACTS = 0x14
    IM_CONTACT_LIST = 0x15
    GAL_CONTACTS = 0x16
    JUNK = 0x17
    LOCAL_FREEBUSY = 0x18
    """"Freebusy Data", where PidTagFreeBusyEntryIds points."""
    SYNC_ISSUES = 0x19
    CONFLICTS = 0x1A
    LOCAL_FAILURES = 0x1B
    SERVER_FAILURES = 0x1C
    CONVERSATION_ACTION_SETTINGS = 0x1D
    QUICK_STEP_SETTINGS = 0x1E
    SUGGESTED_CONTACTS = 0x1F
    REMINDERS = 0x20
    ARCHIVE = 0x22
    RSS_FEEDS = 0x23
    YAMMER_ROOT = 0x24
    FILES = 0x25
    CONTACTS_SEARCH = 0x26


class Public(IntEnum):
    ROOT = 0x01
    IPM_SUBTREE = 0x02
    NON_IPM_SUBTREE = 0x03
    EFORMS_REGISTRY = 0x04


FIRST_FREE_GC = 0x100
"""Global counters from here on are allocated by the store."""

PROTECTED_PRIVATE = frozenset(int(folder) for folder in Private)
PROTECTED_PUBLIC = frozenset(int(folder) for folder in Public)
