"""The ``krb5_realm`` fixture: a throwaway MIT Kerberos realm built with ``k5test``.

The realm ``EXAMPLE.ORG`` has a KDC on a free 127.0.0.1 port, a user principal
``alice`` with a known password and the service principal
``HTTP/localhost@EXAMPLE.ORG`` whose keys are in ``keytab``. Host names are
taken literally (``rdns = false``, ``dns_canonicalize_hostname = false``), so
``HTTP@localhost`` names that service on any machine. ``env`` holds the
``KRB5_*`` variables a subprocess (``kinit``, a gateway) needs to use the realm.

Needs the Debian packages ``krb5-kdc`` (krb5kdc, kdb5_util),
``krb5-admin-server`` (kadmin.local) and ``krb5-user`` (kinit, klist).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness.daemons import find_binary, start_daemon, stop_daemon
from tests.harness.ports import LOCALHOST, free_tcp_udp_port, port_open

REALM = "EXAMPLE.ORG"
USER = "alice"
USER_PASSWORD = "alice-krb5-secret"
SERVICE = "HTTP/localhost"
START_TIMEOUT = 20.0
TOOL_TIMEOUT = 60.0

# Merged into k5test's krb5.conf: the KDC by address, no DNS for host names or realms.
_KRB5_CONF = {
    "libdefaults": {
        "rdns": "false",
        "dns_canonicalize_hostname": "false",
        "dns_lookup_realm": "false",
        "dns_lookup_kdc": "false",
        "udp_preference_limit": "1",
    },
    "realms": {
        "$realm": {
            "kdc": f"{LOCALHOST}:$port0",
            "admin_server": f"{LOCALHOST}:$port1",
            "kpasswd_server": f"{LOCALHOST}:$port2",
        }
    },
    "domain_realm": {"localhost": "$realm", ".localhost": "$realm"},
}
# Merged into k5test's kdc.conf: listen on the loopback address only.
_KDC_CONF = {
    "realms": {
        "$realm": {
            "kdc_listen": f"{LOCALHOST}:$port0",
            "kdc_tcp_listen": f"{LOCALHOST}:$port0",
        }
    },
}


@dataclass
class Krb5Realm:
    """A running test realm; ``env`` is for subprocesses (merge it into ``os.environ``)."""

    realm: str
    kdc_port: int
    tmpdir: Path
    krb5_config: Path
    kdc_profile: Path
    user: str
    user_principal: str
    user_password: str
    service_principal: str
    keytab: Path
    ccache: Path
    env: dict[str, str]
    _k5: Any = field(repr=False)

    def principal(self, name: str) -> str:
        """``name@REALM``."""
        return f"{name}@{self.realm}"

    def add_principal(self, name: str, password: str | None = None) -> str:
        """Create ``name@REALM`` (random key without ``password``); returns the principal."""
        principal = self.principal(name)
        self._k5.addprinc(principal, password)
        return principal

    def extract_keytab(self, name: str, keytab: Path) -> Path:
        """Write the keys of ``name@REALM`` to ``keytab`` (keys unchanged)."""
        self._k5.extract_keytab(self.principal(name), str(keytab))
        return keytab

    def kinit(
        self, principal: str | None = None, password: str | None = None,
        ccache: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``kinit`` (alice by default) into ``ccache`` (the realm's by default);
        returns the finished process, whatever its status."""
        kinit = find_binary("kinit", "krb5-user")
        env = {**os.environ, **self.env, "KRB5CCNAME": f"FILE:{ccache or self.ccache}"}
        return subprocess.run(
            [kinit, principal or self.user_principal],
            input=(self.user_password if password is None else password) + "\n",
            env=env,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )


def _realm_class() -> type:
    from k5test.realm import MITRealm

    class LocalhostRealm(MITRealm):
        """k5test's MIT realm, with ``localhost`` as the host name everywhere."""

        @property
        def hostname(self) -> str:
            return "localhost"

    return LocalhostRealm


@contextmanager
def running_realm() -> Iterator[Krb5Realm]:
    """Create the realm, start its KDC, yield it; stop the KDC and delete it on exit."""
    for binary, package in (
        ("krb5kdc", "krb5-kdc"),
        ("kdb5_util", "krb5-kdc"),
        ("kadmin.local", "krb5-admin-server"),
        ("kinit", "krb5-user"),
    ):
        find_binary(binary, package)
    pytest.importorskip("k5test", reason="the PyPI package k5test is not installed")

    portbase = free_tcp_udp_port()
    k5 = _realm_class()(
        realm=REALM,
        portbase=portbase,
        krb5_conf=_KRB5_CONF,
        kdc_conf=_KDC_CONF,
        create_user=False,
        create_host=False,
        get_creds=False,
        start_kdc=False,
        start_kadmind=False,
    )
    tmpdir = Path(k5.tmpdir)
    proc: subprocess.Popen[bytes] | None = None
    try:
        user_principal = f"{USER}@{REALM}"
        service_principal = f"{SERVICE}@{REALM}"
        keytab = tmpdir / "http.keytab"
        k5.addprinc(user_principal, USER_PASSWORD)
        k5.addprinc(service_principal)
        k5.extract_keytab(service_principal, str(keytab))
        env = {key: str(value) for key, value in k5.env.items()}
        env["KRB5_KTNAME"] = f"FILE:{keytab}"
        env["KRB5CCNAME"] = f"FILE:{k5.ccache}"
        # k5test's own start_kdc waits for a log line without a time limit.
        proc = start_daemon(
            [k5.krb5kdc, "-n"],
            name="krb5kdc",
            log_path=tmpdir / "krb5kdc.out",
            ready=lambda: port_open(LOCALHOST, portbase),
            timeout=START_TIMEOUT,
            env={**os.environ, **k5.env},
        )
        yield Krb5Realm(
            realm=REALM,
            kdc_port=portbase,
            tmpdir=tmpdir,
            krb5_config=Path(env["KRB5_CONFIG"]),
            kdc_profile=Path(env["KRB5_KDC_PROFILE"]),
            user=USER,
            user_principal=user_principal,
            user_password=USER_PASSWORD,
            service_principal=service_principal,
            keytab=keytab,
            ccache=Path(k5.ccache),
            env=env,
            _k5=k5,
        )
    finally:
        if proc is not None:
            stop_daemon(proc)
        shutil.rmtree(tmpdir, ignore_errors=True)


@pytest.fixture(scope="session")
def krb5_realm() -> Iterator[Krb5Realm]:
    """A throwaway Kerberos realm with alice and HTTP/localhost for the whole session."""
    with running_realm() as realm:
        yield realm
