"""Certificates made in the test (with `cryptography`), and TLS servers on 127.0.0.1 that use them."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class Issued:
    cert: Path
    key: Path
    not_after: datetime  # aware UTC, whole seconds (as a certificate holds it)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context


def issue(folder: Path, name: str, days: float, issuer: Issued | None = None, is_ca: bool = False) -> Issued:
    """A certificate for 127.0.0.1 valid for `days` from now, signed by `issuer` (else self-signed)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"test {name}")])
    now = datetime.now(timezone.utc).replace(microsecond=0)
    not_after = now + timedelta(days=days)
    if issuer is not None:
        issuer_cert = x509.load_pem_x509_certificate(issuer.cert.read_bytes())
        issuer_key = serialization.load_pem_private_key(issuer.key.read_bytes(), None)
        issuer_name = issuer_cert.subject
    else:
        issuer_key, issuer_name = key, subject
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(minutes=5)).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=is_ca or issuer is None, path_length=None), critical=True))
    if not is_ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Issued(cert_path, key_path, not_after)


def serve_tls(server, issued: Issued):
    """Wrap a LoopbackServer's socket in TLS with `issued`, and make its url https."""
    server.socket = issued.server_context().wrap_socket(server.socket, server_side=True)
    server.url = server.url.replace("http://", "https://")
    return server
