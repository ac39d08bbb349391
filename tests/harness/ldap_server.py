"""The ``ldap_server`` fixture: a throwaway OpenLDAP ``slapd`` for the session.

The server has its own ``slapd.conf`` and an mdb database in a temporary
directory, the schemas core, cosine and inetorgperson from /etc/ldap/schema,
the suffix ``dc=example,dc=org`` with root DN ``cn=admin,dc=example,dc=org``,
and listens on ``ldap://127.0.0.1:PORT/`` only. It starts with
``ou=people`` holding one inetOrgPerson, ``uid=alice`` (mail
alice@example.org, salted SHA password ``user_password``), so tests can bind
as a user. Needs the Debian packages ``slapd`` and ``ldap-utils``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.harness.daemons import (
    find_binary,
    start_daemon,
    start_with_port_retry,
    stop_daemon,
)
from tests.harness.ports import LOCALHOST, free_port, port_open

SCHEMA_DIR = Path("/etc/ldap/schema")
SCHEMAS = ("core", "cosine", "inetorgperson")
MODULE_DIRS = ("/usr/lib/ldap", "/usr/lib/x86_64-linux-gnu/ldap", "/usr/lib/openldap")
BASE_DN = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{BASE_DN}"
ROOT_PASSWORD = "admin-ldap-secret"
PEOPLE_DN = f"ou=people,{BASE_DN}"
USER = "alice"
USER_DN = f"uid={USER},{PEOPLE_DN}"
USER_MAIL = "alice@example.org"
USER_PASSWORD = "alice-ldap-secret"
START_TIMEOUT = 20.0
TOOL_TIMEOUT = 30.0


def ssha(password: str) -> str:
    """An RFC 2307 ``{SSHA}`` value for ``userPassword``."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


@dataclass(frozen=True)
class LdapServer:
    """A running slapd; ``bind_dn``/``bind_password`` are its root DN and password."""

    uri: str
    host: str
    port: int
    base_dn: str
    bind_dn: str
    bind_password: str
    people_dn: str
    user: str
    user_dn: str
    user_mail: str
    user_password: str
    workdir: Path

    def _tool(self, name: str, *args: str, input_text: str | None = None) -> str:
        binary = find_binary(name, "ldap-utils")
        result = subprocess.run(
            [binary, "-x", "-H", self.uri, "-D", self.bind_dn, "-w", self.bind_password, *args],
            input=input_text,
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{name} failed ({result.returncode}): {result.stderr.strip()}"
                f"\n{result.stdout.strip()}"
            )
        return result.stdout

    def add_ldif(self, text: str) -> None:
        """Add the entries of ``text`` (LDIF) as the root DN; raises on any error."""
        self._tool("ldapadd", input_text=text)

    def modify_ldif(self, text: str) -> None:
        """Apply ``text`` (LDIF with ``changetype``s) as the root DN; raises on any error."""
        self._tool("ldapmodify", input_text=text)

    def search(self, filter_: str = "(objectClass=*)", *attrs: str, base: str | None = None) -> str:
        """``ldapsearch`` below ``base`` (the suffix by default) as the root DN; LDIF text."""
        return self._tool("ldapsearch", "-LLL", "-b", base or self.base_dn, filter_, *attrs)


def _slapd_conf(workdir: Path, module_dir: str) -> str:
    includes = "".join(f"include {SCHEMA_DIR / name}.schema\n" for name in SCHEMAS)
    return (
        f"{includes}"
        f"pidfile {workdir / 'slapd.pid'}\n"
        f"argsfile {workdir / 'slapd.args'}\n"
        f"modulepath {module_dir}\n"
        "moduleload back_mdb\n"
        "\n"
        "database mdb\n"
        "maxsize 104857600\n"
        f'suffix "{BASE_DN}"\n'
        f'rootdn "{ROOT_DN}"\n'
        f"rootpw {ROOT_PASSWORD}\n"
        f"directory {workdir / 'db'}\n"
        "index objectClass eq\n"
        "index uid,mail eq\n"
        "access to attrs=userPassword by self write by anonymous auth by * none\n"
        "access to * by * read\n"
    )


def _initial_ldif() -> str:
    return (
        f"dn: {BASE_DN}\n"
        "objectClass: dcObject\n"
        "objectClass: organization\n"
        "dc: example\n"
        "o: Example\n"
        "\n"
        f"dn: {PEOPLE_DN}\n"
        "objectClass: organizationalUnit\n"
        "ou: people\n"
        "\n"
        f"dn: {USER_DN}\n"
        "objectClass: inetOrgPerson\n"
        f"uid: {USER}\n"
        "cn: Alice Example\n"
        "sn: Example\n"
        "givenName: Alice\n"
        f"mail: {USER_MAIL}\n"
        f"userPassword: {ssha(USER_PASSWORD)}\n"
    )


@contextmanager
def running_slapd(workdir: Path) -> Iterator[LdapServer]:
    """Configure and start slapd in ``workdir``, load the initial entries; stop on exit."""
    slapd = find_binary("slapd", "slapd")
    find_binary("ldapadd", "ldap-utils")
    module_dir = next((d for d in MODULE_DIRS if any(Path(d).glob("back_mdb.*"))), None)
    if module_dir is None:
        pytest.skip("back_mdb module not found: install the Debian package slapd")
    for name in SCHEMAS:
        if not (SCHEMA_DIR / f"{name}.schema").exists():
            pytest.skip(f"{SCHEMA_DIR / name}.schema not found: install the Debian package slapd")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "db").mkdir(exist_ok=True)
    conf = workdir / "slapd.conf"
    conf.write_text(_slapd_conf(workdir, module_dir))

    def start(port: int) -> subprocess.Popen[bytes]:
        # "-d 0" keeps slapd in the foreground without debug output.
        return start_daemon(
            [slapd, "-f", str(conf), "-h", f"ldap://{LOCALHOST}:{port}/", "-d", "0"],
            name="slapd",
            log_path=workdir / "slapd.log",
            ready=lambda: port_open(LOCALHOST, port),
            timeout=START_TIMEOUT,
        )

    proc, port = start_with_port_retry(start, free_port)
    try:
        server = LdapServer(
            uri=f"ldap://{LOCALHOST}:{port}/",
            host=LOCALHOST,
            port=port,
            base_dn=BASE_DN,
            bind_dn=ROOT_DN,
            bind_password=ROOT_PASSWORD,
            people_dn=PEOPLE_DN,
            user=USER,
            user_dn=USER_DN,
            user_mail=USER_MAIL,
            user_password=USER_PASSWORD,
            workdir=workdir,
        )
        server.add_ldif(_initial_ldif())
        yield server
    finally:
        stop_daemon(proc)


@pytest.fixture(scope="session")
def ldap_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    """A private slapd with alice in ou=people, for the whole session."""
    with running_slapd(tmp_path_factory.mktemp("slapd")) as server:
        yield server
