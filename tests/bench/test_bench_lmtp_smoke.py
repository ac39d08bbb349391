"""Smoke run of the LMTP benchmark: both servers start, deliver ~20 messages per row and
the counts check out (no speed asserted)."""

from __future__ import annotations

import pytest

from tests.bench import lmtp_dovecot
from tests.harness.dovecot import DovecotMissing, dovecot_binary

pytestmark = pytest.mark.bench


def test_lmtp_benchmark_runs() -> None:
    try:
        dovecot_binary()
    except DovecotMissing as exc:
        pytest.skip(str(exc))
    figures = lmtp_dovecot.run(messages=20, connections=2, rounds=1)
    for row in lmtp_dovecot.ROWS:
        assert figures[f"{row} ours"] > 0 and figures[f"{row} dovecot"] > 0
        assert figures[f"{row} ratio"] > 0
