"""Smoke run of the POX AutoDiscover benchmark: it starts, measures and prints
(no speed asserted)."""

from __future__ import annotations

import pytest

from tests.bench import autodiscover_pox


@pytest.mark.bench
def test_autodiscover_pox_benchmark_runs() -> None:
    figures = autodiscover_pox.run(duration=1, rounds=1, connections=4)
    print(figures)
    assert figures["trivial"] > 0 and figures["pox"] > 0 and figures["ratio"] > 0
