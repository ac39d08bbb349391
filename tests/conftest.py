"""Shared pytest configuration: the harness fixtures every test may use."""

pytest_plugins = [
    "tests.harness.services",
    "tests.harness.gateway",
    "tests.harness.store",
    "tests.harness.imap",
    "tests.harness.dovecot",
    "tests.harness.postfix",
    "tests.harness.dav_peers",
]

# Property tests: the same examples on every run (CI must not turn red on a case a
# developer never saw), no per-example deadline (CI machines are slower);
# HYPOTHESIS_PROFILE=explore draws fresh examples for a local hunt.
import os  # noqa: E402

from hypothesis import settings  # noqa: E402

settings.register_profile("repeatable", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("explore", deadline=None, max_examples=1000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))
