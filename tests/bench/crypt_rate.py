"""Cold SHA-512-crypt verifications per second on one core (``python -m tests.bench.crypt_rate``).

"Cold": every verification runs crypt in full (no credential cache), the
way the password mechanism checks a login it has not seen within
``[auth] cache_ttl``. The hash is the one ``gateway user add`` stores
(``$6$``, 16-character salt, 5000 rounds); the loop runs in this one thread,
so the figure is per core. A wrong password costs the same as a right one.
"""

from __future__ import annotations

import argparse
import time

from gateway.directory.passwords import hash_password, verify_password


def run(duration: float = 3.0, password: str = "correct horse battery") -> dict[str, float]:
    """Verify against one stored hash for ``duration`` seconds; return the figures."""
    stored = hash_password(password)
    assert verify_password(password, stored)
    count = 0
    started = time.perf_counter()
    cpu_started = time.process_time()
    deadline = started + duration
    while time.perf_counter() < deadline:
        verify_password(password if count % 2 else "wrong password", stored)
        count += 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    return {"verifications": count, "seconds": elapsed, "per_second": count / elapsed,
            "ms_each": 1000 * elapsed / count, "cpu_per_second": count / cpu if cpu else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3.0)
    args = parser.parse_args()
    figures = run(args.duration)
    print(f"SHA-512-crypt (5000 rounds) cold verifications on one core: "
          f"{figures['per_second']:.0f}/s ({figures['ms_each']:.2f} ms each; "
          f"{figures['verifications']:.0f} in {figures['seconds']:.1f} s; "
          f"{figures['cpu_per_second']:.0f}/s of CPU time)")


if __name__ == "__main__":
    main()
