"""The imap plugin: IMAP4rev1 and IMAP4rev2 (RFC 3501, RFC 9051) over the shared store.

How the package is laid out, from the wire inwards:

- ``plugin``, ``settings``, ``limits`` - the hooks, the ``[imap]`` section, and the
  per-address / per-user connection counts;
- ``parser`` (commands and literals into tokens), ``responses`` (encoding),
  ``utf7`` (modified UTF-7 mailbox names), ``args`` (typed reading of tokens);
- ``session`` - the state machine, output buffering, polling before each OK;
  ``commands`` - the table of commands, states and handlers;
- ``cmd_*`` - one module per group of commands (any state, authentication,
  mailboxes, LIST, SELECT and friends, FETCH, STORE/COPY/MOVE, SEARCH/SORT,
  APPEND, IDLE), with ``attributes`` (FETCH items) and ``sets`` (sequence sets);
- ``mailboxes`` (``MailboxTree``), ``selected`` (``SelectedMailbox``), ``append``
  - the store side of mailboxes and messages;
- ``fetch_data``, ``mime_*`` - FETCH data (envelopes, structures, sections) from
  the cached MIME structure of each message;
- ``seqset``, ``search``, ``sort`` - sequence sets, SEARCH and SORT over the
  store's restriction engine.
"""
