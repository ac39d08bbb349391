"""Smoke run of the IMAP-beside-Dovecot benchmark: it starts both, measures every row, prints."""

from __future__ import annotations

import shutil

import pytest

from tests.bench import imap_dovecot

pytestmark = pytest.mark.bench


def test_imap_dovecot_benchmark_runs() -> None:
    if shutil.which("dovecot", path="/usr/sbin:/usr/bin:/usr/local/sbin") is None:
        pytest.skip("dovecot not found: install the Debian packages dovecot-imapd")
    results = imap_dovecot.run(messages=50, bodies=20, appends=20, idle=20, idle_seconds=60)
    print(imap_dovecot.report(results, 50, 20))
    for name in ("dovecot", "gateway"):
        assert "error" not in results[name], f"{name}: {results[name]['error']}"
        figures = results[name]
        assert figures["select_ms"] > 0 and figures["fetch_all_ms"] > 0
        assert figures["fetch_bodies_ms"] > 0 and figures["append_per_s"] > 0
        assert figures["search_header_ms"] > 0 and figures["idle_connections"] == 20
