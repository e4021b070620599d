"""A local CA and a broker certificate for the dev and test brokers' SASL_SSL listener.

    python -m services.common.dev_tls <directory> [--host kafka ...]

writes, mode 0600 in a 0700 directory: `ca.pem` (what clients trust: DAYBREAK_KAFKA_CA_FILE),
`broker.pem` (the broker's PKCS#8 key and its certificate, Kafka's `ssl.keystore.type=PEM`),
and `ca.key`. Run again, it keeps what is still good and makes again what is missing, expired
(or about to be), or no longer names every host; a new CA means a new broker certificate.
Prints "renewed" or "kept". Made for the local and test brokers (scripts/infra.sh,
tests/support/stack_infra.py) and a one-host compose deployment's private CA
(docker-compose.yml); brokers across hosts carry certificates from the deployment's own PKI.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_HOSTS = ("localhost", "127.0.0.1")
CA_DAYS = 3650
BROKER_DAYS = 397
RENEW_BEFORE = dt.timedelta(days=30)  # a certificate this close to its end is made again


@dataclass(frozen=True)
class BrokerTLS:
    """Where the files are: the CA clients trust and the broker's key with its certificate."""

    ca_file: Path
    keystore_file: Path  # the broker's private key (PKCS#8) followed by its certificate
    ca_key_file: Path


def paths(directory: Path) -> BrokerTLS:
    """The files `ensure_broker_tls` writes under `directory`."""
    return BrokerTLS(directory / "ca.pem", directory / "broker.pem", directory / "ca.key")


def ensure_broker_tls(directory: Path, hosts: tuple[str, ...] = LOCAL_HOSTS, *,
                      now: dt.datetime | None = None) -> tuple[BrokerTLS, bool]:
    """The CA and the broker certificate for `hosts` under `directory`, made when missing or
    stale; also whether anything was made (a running broker must then restart to load it)."""
    now = now or dt.datetime.now(dt.UTC)
    files = paths(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    renewed = False
    ca = _load_ca(files, now)
    if ca is None:
        ca = _make_ca(now)
        _write(files.ca_key_file, _key_pem(ca[0]))
        _write(files.ca_file, ca[1].public_bytes(serialization.Encoding.PEM))
        renewed = True
    if renewed or not _broker_still_good(files, ca[1], hosts, now):
        key, cert = _make_broker(ca, hosts, now)
        _write(files.keystore_file, _key_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
        renewed = True
    return files, renewed


def _fresh(cert: x509.Certificate, now: dt.datetime) -> bool:
    return cert.not_valid_before_utc <= now and now + RENEW_BEFORE < cert.not_valid_after_utc


def _load_ca(files: BrokerTLS, now: dt.datetime
             ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None:
    try:
        cert = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
        key = serialization.load_pem_private_key(files.ca_key_file.read_bytes(), password=None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _fresh(cert, now):
        return None
    if key.public_key() != cert.public_key():
        return None
    return key, cert


def _broker_still_good(files: BrokerTLS, ca: x509.Certificate, hosts: tuple[str, ...],
                       now: dt.datetime) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.keystore_file.read_bytes())
    except (OSError, ValueError):
        return False
    try:
        cert.verify_directly_issued_by(ca)
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    return _fresh(cert, now) and set(_names(hosts)) <= set(names)


def _names(hosts: tuple[str, ...]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hosts):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _make_ca(now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Daybreak development Kafka CA")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _make_broker(ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate],
                 hosts: tuple[str, ...], now: dt.datetime
                 ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=BROKER_DAYS),
                                 ca_cert.not_valid_after_utc))
            .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _write(path: Path, data: bytes) -> None:
    """Atomically, mode 0600 from the first byte."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    """The command line: make or keep the files, print whether they were renewed."""
    parser = argparse.ArgumentParser(prog="python -m services.common.dev_tls",
                                     description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--host", action="append", default=[],
                        help="another name or address the broker is reached by")
    args = parser.parse_args(argv)
    _, renewed = ensure_broker_tls(args.directory, (*LOCAL_HOSTS, *args.host))
    print("renewed" if renewed else "kept")


if __name__ == "__main__":
    main()
