"""Calendar objects kept parsed in memory, for the calendar-queries that must read them.

A query tests each candidate it cannot decide from stored times (series, all-day and
floating events) on its iCalendar, and reading iCalendar is most of a query's cost
(about 1-3 ms an object with a time zone). Calendar apps ask for the same windows
again and again, so the parsed objects are kept, least recently used first out, keyed
by store, message id and change number: any change through any protocol gives the
item a new change number, so a stale object is never used, only forgotten later.
Thread-safe: queries test their candidates on worker threads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from icalendar import Calendar

Key = tuple[str, int, int]


class ParsedCalendars:
    """A bounded LRU of parsed calendar objects (each about 17 KB for an event with a time
    zone and a rule)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict[Key, Calendar | None] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: Key, raw: Callable[[], bytes]) -> Calendar | None:
        """The parsed object for ``key`` (``raw()`` gives its bytes when not kept);
        None when the stored bytes are not iCalendar."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
            self.misses += 1
        try:
            cal: Calendar | None = Calendar.from_ical(raw())
        except Exception:  # an unreadable stored item matches nothing
            cal = None
        if self.capacity > 0:
            with self._lock:
                self._items[key] = cal
                while len(self._items) > self.capacity:
                    self._items.popitem(last=False)
        return cal
