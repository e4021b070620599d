"""The database connection: verified TLS to any host but loopback, plaintext only if said."""

import os
import ssl

import pytest

from services.common.db import InsecureDatabaseURL, make_engine, service_engine, tls_connect
from services.common.settings import Settings

REMOTE = "postgresql+asyncpg://daybreak_matcher:pw@db.internal:5432/daybreak"
LOCAL = "postgresql+asyncpg://daybreak_matcher:pw@127.0.0.1:5432/daybreak"


def _verifying(tls: dict[str, object]) -> ssl.SSLContext:
    context = tls["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    return context


@pytest.mark.parametrize("query", ["", "?ssl=require", "?sslmode=verify-ca", "?sslmode=require"])
def test_another_host_is_reached_over_verified_tls_whatever_weaker_mode_is_named(
        query: str) -> None:
    url, tls = tls_connect(REMOTE + query)
    _verifying(tls)
    assert url.host == "db.internal" and "ssl" not in url.query and "sslmode" not in url.query


@pytest.mark.parametrize("query", ["?sslmode=disable", "?ssl=disable", "?sslmode=prefer",
                                   "?ssl=allow"])
def test_another_host_asking_for_no_tls_is_refused_unless_loudly_allowed(query: str) -> None:
    with pytest.raises(InsecureDatabaseURL) as refused:
        tls_connect(REMOTE + query)
    assert "pw" not in str(refused.value) and "DAYBREAK_DB_INSECURE_ALLOW_PLAINTEXT" in str(
        refused.value)
    _, tls = tls_connect(REMOTE + query, allow_plaintext=True)
    assert tls == {"ssl": False}


def test_the_opt_out_alone_does_not_turn_tls_off() -> None:
    _verifying(tls_connect(REMOTE, allow_plaintext=True)[1])


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_needs_no_tls_unless_the_url_asks(host: str) -> None:
    assert tls_connect(f"postgresql+asyncpg://u:pw@{host}:5432/d")[1] == {"ssl": False}
    _verifying(tls_connect(f"postgresql+asyncpg://u:pw@{host}:5432/d?sslmode=verify-full")[1])


def test_the_ca_comes_from_the_setting() -> None:
    paths = ssl.get_default_verify_paths()
    ca = next((f for f in (paths.cafile, paths.openssl_cafile) if f and os.path.exists(f)), None)
    if ca is None:
        pytest.skip("no CA bundle on this machine")
    context = _verifying(tls_connect(REMOTE, ca_file=ca)[1])
    assert context.get_ca_certs()


def test_a_service_engine_takes_tls_from_the_settings() -> None:
    missing_ca = Settings(env="development", matcher_database_url=REMOTE,
                          db_ca_file="/nonexistent/ca.pem")
    with pytest.raises(FileNotFoundError):  # the CA setting reaches the engine's context
        service_engine(missing_ca, "matcher", pool_size=1)
    trusted = Settings(env="development", matcher_database_url=REMOTE + "?sslmode=disable",
                       db_insecure_allow_plaintext=True)
    assert service_engine(trusted, "matcher", pool_size=1).url.query == {}
    with pytest.raises(InsecureDatabaseURL):
        service_engine(Settings(env="development",
                                matcher_database_url=REMOTE + "?sslmode=disable"), "matcher")
    assert make_engine(LOCAL).url.host == "127.0.0.1"
