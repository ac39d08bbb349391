"""Errors that end a DAV request with a status and, where the RFCs define one, a precondition.

``DavError(403, "{urn:ietf:params:xml:ns:caldav}valid-calendar-data", "why")`` is answered
as ``403`` with ``<D:error><C:valid-calendar-data/></D:error>`` (RFC 4918 section 16); the
message goes into a ``<D:responsedescription>``-like comment for people reading traces.
"""

from __future__ import annotations


class DavError(Exception):
    """A request that fails with ``status``; ``condition`` is a Clark-named precondition."""

    def __init__(self, status: int, condition: str | None = None, message: str = ""):
        super().__init__(message or condition or str(status))
        self.status = status
        self.condition = condition
        self.message = message
