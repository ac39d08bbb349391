"""Shared pytest configuration: the harness fixtures every test may use."""

pytest_plugins = [
    "tests.harness.services",
    "tests.harness.gateway",
    "tests.harness.store",
]
