"""The per-address connection rate: a sliding 60-second window, bounded memory."""

from __future__ import annotations

from plugins.smtp import ratelimit
from plugins.smtp.ratelimit import ConnectionRate


def test_window_slides() -> None:
    rate = ConnectionRate(3)
    assert [rate.admit("192.0.2.1", now=t) for t in (0, 1, 2, 3)] == [True, True, True, False]
    assert rate.admit("192.0.2.2", now=3)  # another address has its own window
    assert not rate.admit("192.0.2.1", now=59.9)
    assert rate.admit("192.0.2.1", now=60.0)  # the first connection left the window
    assert not rate.admit("192.0.2.1", now=60.5)


def test_zero_is_unlimited() -> None:
    rate = ConnectionRate(0)
    assert all(rate.admit("192.0.2.1", now=0) for _ in range(1000))


def test_memory_is_bounded(monkeypatch) -> None:
    monkeypatch.setattr(ratelimit, "MAX_ADDRESSES", 10)
    rate = ConnectionRate(5)
    for n in range(100):
        assert rate.admit(f"10.0.0.{n}", now=n * 0.01)
    assert len(rate._seen) <= 10
