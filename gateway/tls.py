"""TLS material: the configured certificate, or a self-signed pair made once.

When ``[tls] certificate`` is empty, a self-signed certificate for this host's
names is generated into ``data_dir/tls/`` on first start and reused after.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateway.config import Config, ConfigError

log = logging.getLogger("gateway.tls")


def certificate_paths(config: Config) -> tuple[Path, Path]:
    """The certificate and key to serve, generating a self-signed pair when none is set."""
    tls = config.tls
    if tls.certificate or tls.private_key:
        cert, key = Path(tls.certificate), Path(tls.private_key)
        for name, path in (("certificate", cert), ("private_key", key)):
            if not path.is_file():
                raise ConfigError(f"[tls] {name}: {str(path)!r} is not a readable file")
        return cert, key
    directory = Path(config.gateway.data_dir) / "tls"
    cert, key = directory / "selfsigned.crt", directory / "selfsigned.key"
    if not (cert.is_file() and key.is_file()):
        generate_self_signed(cert, key)
        log.warning("generated a self-signed TLS certificate: %s (set [tls] certificate and "
                    "private_key to use your own)", cert)
    return cert, key


def generate_self_signed(cert_path: Path, key_path: Path, names: list[str] | None = None) -> None:
    """Write a new RSA-2048 key and a 10-year self-signed certificate for ``names``."""
    names = names or sorted({"localhost", socket.gethostname(), socket.getfqdn()})
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_bytes = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key_bytes)
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context for the TCP services (TLS 1.2 or newer)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"[tls] cannot load {cert} with {key}: {exc}") from None
    return context
