"""Conversions between Internet formats and MAPI objects, shared by every protocol.

Internet mail (MIME) ⇄ messages, iCalendar ⇄ appointments, meeting requests
and tasks, vCard ⇄ contacts and contact groups, plus the MAPI-specific
encodings behind them (compressed RTF, TNEF, recurrence and time-zone blobs,
global object ids). Converters work on plain data —
:class:`gateway.store.NewMessage` with its recipients and attachments — and
know nothing of plugins or protocols; :mod:`gateway.convert.load` reads such
a message out of a store.
"""
