"""Kafka TLS settings: SASL_SSL clients verify the broker, plaintext to another host is
refused, and the development CA and broker certificate are made once and renewed in time."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from pydantic import ValidationError

from services.common import dev_tls
from services.common.settings import Settings, bootstrap_hosts

KEY = "k" * 64
NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)


def settings(**kw: object) -> Settings:
    return Settings(**{"env": "production", "child_key_secret": KEY,  # type: ignore[arg-type]
                       "kafka_username": "ingest", "kafka_password": KEY, **kw})


@pytest.fixture
def ca_file(tmp_path: Path) -> Path:
    return dev_tls.ensure_broker_tls(tmp_path / "tls", now=NOW)[0].ca_file


def test_sasl_ssl_clients_get_a_context_that_verifies_the_broker(ca_file: Path) -> None:
    connection = settings(kafka_bootstrap="k1:9094,k2:9094", kafka_security_protocol="SASL_SSL",
                          kafka_ca_file=str(ca_file)).kafka()
    for options in (connection.client_options(), connection.producer_options()):
        context = options["ssl_context"]
        assert isinstance(context, ssl.SSLContext)
        assert options["security_protocol"] == "SASL_SSL"
        assert options["sasl_mechanism"] == "SCRAM-SHA-512"
        assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
        assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
        subjects = [dict(field[0] for field in ca["subject"]) for ca in context.get_ca_certs()]
        assert {"commonName": "Daybreak development Kafka CA"} in subjects


def test_sasl_plaintext_clients_get_no_tls_context(ca_file: Path) -> None:
    # the local env file names the CA whatever the protocol: it is used only with SASL_SSL
    options = settings(kafka_ca_file=str(ca_file)).kafka().client_options()
    assert "ssl_context" not in options
    assert options["security_protocol"] == "SASL_PLAINTEXT"


@pytest.mark.parametrize("bootstrap", [
    "kafka:9092", "10.0.0.5:9092", "127.0.0.1:9092,k2:9092", "[2001:db8::1]:9092",
    "127.0.0.1.example.org:9092", "kafka"])
def test_plaintext_to_a_broker_on_another_host_is_refused_outside_development(
    bootstrap: str,
) -> None:
    for env in ("production", "test"):
        with pytest.raises(ValidationError, match="TLS only"):
            settings(env=env, kafka_bootstrap=bootstrap)
    assert settings(env="development", kafka_bootstrap=bootstrap).kafka_bootstrap == bootstrap
    # the loud opt-out, for a network trusted as a whole
    assert settings(kafka_bootstrap=bootstrap, kafka_insecure_allow_plaintext=True)


@pytest.mark.parametrize("bootstrap", [
    "127.0.0.1:9092", "localhost:9092", "[::1]:9092", "127.0.0.2:9092,localhost:9093",
    "broker.localhost:9092", "[::ffff:127.0.0.1]:9092"])
def test_plaintext_on_loopback_is_accepted(bootstrap: str) -> None:
    assert settings(kafka_bootstrap=bootstrap).kafka().plaintext_hosts() == []


def test_sasl_ssl_to_another_host_is_accepted(ca_file: Path) -> None:
    assert settings(kafka_bootstrap="kafka:9094", kafka_security_protocol="SASL_SSL",
                    kafka_ca_file=str(ca_file)).kafka().plaintext_hosts() == []


def test_an_unreadable_ca_file_fails_at_start_up(tmp_path: Path) -> None:
    garbage = tmp_path / "ca.pem"
    garbage.write_text("not a certificate\n")
    for path in (garbage, tmp_path / "missing.pem"):
        for env in ("production", "development"):
            with pytest.raises(ValidationError, match="DAYBREAK_KAFKA_CA_FILE"):
                settings(env=env, kafka_security_protocol="SASL_SSL", kafka_ca_file=str(path))


def test_bootstrap_hosts_are_read_from_every_server() -> None:
    assert bootstrap_hosts(" k1:9092, [::1]:9093,10.0.0.1:9094,k4,::1 ") == [
        "k1", "::1", "10.0.0.1", "k4", "::1"]


def test_the_development_broker_certificate_is_made_once_and_mode_0600(tmp_path: Path) -> None:
    files, renewed = dev_tls.ensure_broker_tls(tmp_path / "tls", now=NOW)
    assert renewed
    for path in (files.ca_file, files.keystore_file, files.ca_key_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(files.ca_file.parent.stat().st_mode) == 0o700
    pem = files.keystore_file.read_bytes()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8: Kafka's PEM keystore
    cert = x509.load_pem_x509_certificate(pem)
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca_file.read_bytes()))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    before = {p: p.read_bytes() for p in (files.ca_file, files.keystore_file)}
    assert dev_tls.ensure_broker_tls(files.ca_file.parent, now=NOW + dt.timedelta(days=300)) \
        == (files, False)
    assert {p: p.read_bytes() for p in before} == before


def test_the_broker_certificate_is_renewed_before_it_expires_or_for_a_new_host(
    tmp_path: Path,
) -> None:
    files, _ = dev_tls.ensure_broker_tls(tmp_path, now=NOW)
    ca = files.ca_file.read_bytes()
    first = files.keystore_file.read_bytes()
    late = NOW + dt.timedelta(days=dev_tls.BROKER_DAYS) - dev_tls.RENEW_BEFORE
    assert dev_tls.ensure_broker_tls(tmp_path, now=late)[1]
    assert files.keystore_file.read_bytes() != first and files.ca_file.read_bytes() == ca
    renewed = files.keystore_file.read_bytes()
    assert dev_tls.ensure_broker_tls(tmp_path, (*dev_tls.LOCAL_HOSTS, "kafka"), now=late)[1]
    assert files.keystore_file.read_bytes() != renewed
    files.keystore_file.write_bytes(b"garbage")  # a damaged file is made again
    assert dev_tls.ensure_broker_tls(tmp_path, now=late)[1]
    x509.load_pem_x509_certificate(files.keystore_file.read_bytes())
    # an expiring CA: a new CA, and a new broker certificate under it
    much_later = NOW + dt.timedelta(days=dev_tls.CA_DAYS)
    assert dev_tls.ensure_broker_tls(tmp_path, now=much_later)[1]
    assert files.ca_file.read_bytes() != ca
    cert = x509.load_pem_x509_certificate(files.keystore_file.read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca_file.read_bytes()))


async def test_the_context_checks_the_brokers_name_not_only_its_ca(tmp_path: Path) -> None:
    # a certificate from the trusted CA, but for another name than the one dialled
    files, _ = dev_tls.ensure_broker_tls(tmp_path, ("broker.example",))
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(files.keystore_file)
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_side)
    port = server.sockets[0].getsockname()[1]
    context = settings(kafka_bootstrap=f"127.0.0.1:{port}", kafka_security_protocol="SASL_SSL",
                       kafka_ca_file=str(files.ca_file)).kafka().ssl_context()
    try:
        with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
            await asyncio.open_connection("127.0.0.1", port, ssl=context)
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                  server_hostname="broker.example")
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
