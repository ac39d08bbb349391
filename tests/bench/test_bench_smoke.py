"""Smoke runs of the benchmarks: they start, measure and print (no speed asserted)."""

from __future__ import annotations

from tests.bench import http_overhead, idle_connections


def test_http_overhead_benchmark_runs() -> None:
    figures = http_overhead.run(duration=1, rounds=1, connections=4)
    assert figures["host"] > 0 and figures["bare"] > 0 and figures["ratio"] > 0


def test_idle_connections_benchmark_runs() -> None:
    figures = idle_connections.run(200)
    assert figures["gateway"] > 0 and figures["raw"] > 0


def test_crypt_rate_benchmark_runs() -> None:
    from tests.bench import crypt_rate

    figures = crypt_rate.run(duration=0.3)
    assert figures["verifications"] > 0 and figures["per_second"] > 0


def test_store_benchmark_runs() -> None:
    from tests.bench import store_ops

    figures = store_ops.run_in(1200)
    assert figures["import_per_s"] > 0 and figures["listing_ms"] > 0
    assert figures["sync_100_ms"] > 0 and figures["flags_1000_single_s"] > 0


def test_calendar_benchmark_runs() -> None:
    from tests.bench import convert_ical

    figures = convert_ical.run(events=50, rounds=1)
    assert figures["instances"] > 0


def test_mail_conversion_benchmark_runs() -> None:
    from tests.bench import convert_mail

    figures = convert_mail.run(copies=2)
    assert figures["mime_to_mapi_per_s"] > 0 and figures["mapi_to_mime_per_s"] > 0
    assert figures["stdlib_per_s"] > 0
