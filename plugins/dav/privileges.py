"""WebDAV ACL privileges (RFC 3744) from the store's folder rights (MS-OXCPERM).

``read`` needs ReadAny; ``write-content`` (change items) EditAny; ``bind`` (add
items) Create; ``unbind`` (remove items) DeleteAny; ``write-properties`` (the
collection's own settings) FolderOwner; ``read-acl``/``write-acl`` FolderOwner.
CalDAV's ``read-free-busy`` follows the free/busy rights or ReadAny.
"""

from __future__ import annotations

from gateway.store.rights import Rights
from plugins.dav.xmlns import CALDAV, DAV, tag
from plugins.dav.xmlout import Element, element, sub

D = lambda name: tag(DAV, name)  # noqa: E731

MAPPING: list[tuple[str, Rights]] = [
    (D("read"), Rights.READ_ANY),
    (D("write-content"), Rights.EDIT_ANY),
    (D("bind"), Rights.CREATE),
    (D("unbind"), Rights.DELETE_ANY),
    (D("write-properties"), Rights.FOLDER_OWNER),
    (D("read-acl"), Rights.FOLDER_OWNER),
    (D("write-acl"), Rights.FOLDER_OWNER),
    (D("read-current-user-privilege-set"), Rights.NONE),
    (tag(CALDAV, "read-free-busy"), Rights.FREE_BUSY_SIMPLE),
]


def held(rights: Rights) -> list[str]:
    """The privileges ``rights`` grant."""
    out = []
    for name, needed in MAPPING:
        if name == tag(CALDAV, "read-free-busy"):
            if rights & (Rights.FREE_BUSY_SIMPLE | Rights.FREE_BUSY_DETAILED | Rights.READ_ANY):
                out.append(name)
        elif not needed & ~rights:
            out.append(name)
    if all(name in out for name in (D("write-content"), D("bind"), D("unbind"),
                                    D("write-properties"))):
        out.append(D("write"))
    if len(out) == len(MAPPING) + 1:
        out.append(D("all"))
    return out


def current_user_privilege_set(rights: Rights) -> Element:
    out = element(D("current-user-privilege-set"))
    for name in held(rights):
        sub(sub(out, D("privilege")), name)
    return out


def supported_privilege_set() -> Element:
    """The tree of RFC 3744 5.3: all > read, write > (write-content, bind, unbind, ...)."""
    out = element(D("supported-privilege-set"))
    top = sub(out, D("supported-privilege"))
    sub(sub(top, D("privilege")), D("all"))
    sub(top, D("abstract"))
    for name in (D("read"), D("read-acl"), D("read-current-user-privilege-set"),
                 D("write-acl")):
        child = sub(top, D("supported-privilege"))
        sub(sub(child, D("privilege")), name)
        if name == D("read"):
            free = sub(child, D("supported-privilege"))
            sub(sub(free, D("privilege")), tag(CALDAV, "read-free-busy"))
    write = sub(top, D("supported-privilege"))
    sub(sub(write, D("privilege")), D("write"))
    for name in (D("write-content"), D("bind"), D("unbind"), D("write-properties")):
        child = sub(write, D("supported-privilege"))
        sub(sub(child, D("privilege")), name)
    return out
