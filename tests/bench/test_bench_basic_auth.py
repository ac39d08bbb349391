"""Smoke run of the Basic-auth benchmark: it starts, measures and prints (no speed asserted)."""

from __future__ import annotations

from tests.bench import basic_auth


def test_basic_auth_benchmark_runs() -> None:
    figures = basic_auth.run(duration=1, rounds=1, connections=4)
    assert float(figures["open_rps"]) > 0 and float(figures["basic_rps"]) > 0
    assert float(figures["basic_p50_ms"]) > 0 and float(figures["rps_ratio"]) > 0
