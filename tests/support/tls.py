"""A certificate authority of the test's own and a server certificate it signs for some names."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# certificates are checked against the real clock by OpenSSL, so they span it widely
_VALID = timedelta(days=2)


@dataclass(frozen=True)
class ServerCert:
    """Files a TLS server loads, and the authority a client must trust to accept them."""

    certfile: Path
    keyfile: Path
    ca_pem: str

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this authority alone."""
        return ssl.create_default_context(cadata=self.ca_pem)


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, *, issuer: x509.Name,
                 signer: ec.EllipticCurvePrivateKey, ca: bool,
                 names: tuple[str, ...] = ()) -> x509.Certificate:
    now = datetime.now(UTC)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - _VALID).not_valid_after(now + _VALID)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def issue_server_cert(directory: Path, *names: str) -> ServerCert:
    """A new authority and a certificate from it for `names`, written under `directory`."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("Daybreak test CA", ca_key, signer=ca_key, ca=True,
                      issuer=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                           "Daybreak test CA")]))
    leaf = _certificate(names[0], key, issuer=ca.subject, signer=ca_key, ca=False, names=names)
    certfile, keyfile = directory / "server.pem", directory / "server.key"
    certfile.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    keyfile.chmod(0o600)
    return ServerCert(certfile, keyfile, ca.public_bytes(serialization.Encoding.PEM).decode())
