"""The ``[store]`` config section: where stores live and what one object may hold."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import option


def _check_language(value: str) -> None:
    from gateway.store.folder_names import LANGUAGES

    if value not in LANGUAGES:
        raise ValueError(f"folder names exist for {', '.join(sorted(LANGUAGES))}, "
                         f"not {value!r}")


@dataclass
class StoreSection:
    language: str = option("en", "Language of the default folder names of new mailboxes when "
                           "the user has none set (en, de, fr, es, it).", check=_check_language)
    open_stores: int = option(256, "Stores kept open (least recently used ones are closed).")
    reader_threads: int = option(8, "Threads serving reads for all stores of a worker.")
    max_value_bytes: int = option(64 * 1024 * 1024, "Largest single property value "
                                  "(an attachment's content, a body).")
    max_message_bytes: int = option(128 * 1024 * 1024, "Largest message, attachments included.")
    max_properties: int = option(4096, "Most properties on one object.")
    max_restriction_depth: int = option(32, "Deepest restriction (search) tree accepted.")
    value_inline_bytes: int = option(16384, "Strings and binaries larger than this go to "
                                     "compressed blob files.")
    tombstone_days: int = option(90, "Days deletions are remembered for clients that sync "
                                 "rarely; a client whose state is older starts over.")
