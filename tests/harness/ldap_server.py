"""The ``ldap_server`` fixture: a throwaway OpenLDAP ``slapd`` for the session.

The server has its own ``slapd.conf`` and an mdb database in a temporary
directory, the schemas core, cosine and inetorgperson from /etc/ldap/schema,
the suffix ``dc=example,dc=org`` with root DN ``cn=admin,dc=example,dc=org``,
and listens on ``ldap://127.0.0.1:PORT/`` only. It starts with
``ou=people`` holding one inetOrgPerson, ``uid=alice`` (mail
alice@example.org, salted SHA password ``user_password``), so tests can bind
as a user. Needs the Debian packages ``slapd`` and ``ldap-utils``.

``ldap_server_tls`` is a second, separate slapd with TLS: a throwaway CA
(``ca_file`` on the object, PEM) signs a server certificate for 127.0.0.1,
::1 and localhost, so clients can use StartTLS on its ``ldap://`` URI. The
plain ``ldap_server`` has no certificate (StartTLS to it fails).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
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
    """A running slapd; ``bind_dn``/``bind_password`` are its root DN and password.

    ``ca_file`` is the PEM file of the CA that signed its certificate ("" when
    it has no TLS)."""

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
    ca_file: str = ""

    def _tool(self, name: str, *args: str, input_text: str | None = None) -> str:
        binary = find_binary(name, "ldap-utils")
        result = subprocess.run(
            [binary, "-x", "-H", self.uri, *(["-ZZ"] if self.ca_file else []),
             "-D", self.bind_dn, "-w", self.bind_password, *args],
            input=input_text,
            env={**os.environ, "LDAPTLS_CACERT": self.ca_file} if self.ca_file else None,
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


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A new CA and a server certificate it signs for 127.0.0.1, ::1 and localhost.

    Returns the paths of the CA certificate, the server certificate and the
    server's (unencrypted) key, all PEM, written into ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway test LDAP CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                     False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in (LOCALHOST, "::1")]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "server.pem", "server.key"))
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return ca_path, cert_path, key_path


def _slapd_conf(workdir: Path, module_dir: str,
                tls: tuple[Path, Path, Path] | None = None) -> str:
    includes = "".join(f"include {SCHEMA_DIR / name}.schema\n" for name in SCHEMAS)
    tls_lines = ""
    if tls is not None:
        ca_path, cert_path, key_path = tls
        tls_lines = (f"TLSCACertificateFile {ca_path}\n"
                     f"TLSCertificateFile {cert_path}\n"
                     f"TLSCertificateKeyFile {key_path}\n")
    return (
        f"{includes}"
        f"{tls_lines}"
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
def running_slapd(workdir: Path, tls: bool = False) -> Iterator[LdapServer]:
    """Configure and start slapd in ``workdir``, load the initial entries; stop on exit.

    With ``tls``, slapd gets a certificate signed by a new CA (see ``make_tls_files``)."""
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
    tls_files = make_tls_files(workdir / "tls") if tls else None
    conf.write_text(_slapd_conf(workdir, module_dir, tls_files))

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
            ca_file=str(tls_files[0]) if tls_files else "",
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


@pytest.fixture(scope="session")
def ldap_server_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LdapServer]:
    """A second private slapd like ``ldap_server``, with a CA-signed certificate
    (``ca_file``) for StartTLS."""
    with running_slapd(tmp_path_factory.mktemp("slapd-tls"), tls=True) as server:
        yield server
