"""Settings, hashing and token verification, without any service."""

from __future__ import annotations

import jwt
import pytest
from pydantic import ValidationError

from services.common.problems import field_path
from services.common.security import InvalidToken, Principal, decode_token
from services.common.settings import DEV_SECRET, Settings
from services.identity.passwords import DEFAULT_HASHER, hash_secret
from tests.support.tokens import JWKS, KEYSET, police

KEY = "k" * 64


def settings(**kw) -> Settings:
    return Settings(**{"env": "test", "child_key_secret": KEY,
                       "kafka_username": "ingest", "kafka_password": KEY, **kw})


def test_default_or_short_secrets_are_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="CHILD_KEY_SECRET"):
        Settings(env="production", child_key_secret=DEV_SECRET)
    with pytest.raises(ValidationError, match="CHILD_KEY_SECRET"):
        Settings(env="test", child_key_secret="short")
    assert Settings(env="development").env == "development"


def test_a_static_jwks_must_hold_a_signing_key() -> None:
    assert settings(jwks=JWKS).jwks == JWKS
    for garbled in ("not json", '{"keys": []}', '{"keys": [{"kty": "RSA", "kid": "a"}]}'):
        with pytest.raises(ValidationError, match="DAYBREAK_JWKS"):
            settings(jwks=garbled)


def test_a_kafka_principal_is_required_outside_development() -> None:
    with pytest.raises(ValidationError, match="DAYBREAK_KAFKA_PASSWORD"):
        settings(kafka_password=None)
    with pytest.raises(ValidationError, match="DAYBREAK_KAFKA_USERNAME"):
        settings(kafka_username="")
    with pytest.raises(ValidationError, match="PLAINTEXT"):
        settings(kafka_security_protocol="PLAINTEXT")
    with pytest.raises(ValidationError, match="MIN_INSYNC"):
        settings(kafka_replication_factor=1, kafka_min_insync_replicas=2)


def test_the_kafka_connection_carries_the_principal_but_never_shows_its_password() -> None:
    connection = settings(kafka_bootstrap="kafka:9092",
                          kafka_insecure_allow_plaintext=True).kafka()
    assert connection.client_options() == {
        "bootstrap_servers": "kafka:9092", "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "ingest",
        "sasl_plain_password": KEY}
    assert KEY not in repr(connection) and KEY not in str(connection)


def test_topics_keep_records_a_week_unless_configured() -> None:
    layout = settings(kafka_dlq_retention_ms=1_209_600_000).topic_layout()
    assert layout.configs("incidents.v1") == {"min.insync.replicas": "1",
                                              "retention.ms": "604800000"}
    assert layout.configs("incidents.v1.dlq")["retention.ms"] == "1209600000"


async def test_secrets_hash_with_argon2_and_verify() -> None:
    stored = await hash_secret("s3cret-value")
    assert stored.startswith("$argon2id$")
    assert await DEFAULT_HASHER.verify(stored, "s3cret-value")
    assert not await DEFAULT_HASHER.verify(stored, "other")
    assert not await DEFAULT_HASHER.verify(None, "anything")
    assert not await DEFAULT_HASHER.verify("not-a-hash", "anything")


def test_principal_keeps_force_and_scope_through_a_token() -> None:
    from tests.support.tokens import mint

    keys = {KEYSET.active_kid: KEYSET.active.public_key()}
    back = decode_token(mint(police("WMP")), keys=keys, audience="ingest", issuer="daybreak")
    assert back == Principal(subject=back.subject, kind="client", role="police",
                             scopes=frozenset({"incidents:write"}), force_code="WMP")


def test_unsigned_tokens_are_refused_before_any_key_is_sought() -> None:
    unsigned = jwt.encode({"sub": "x", "kind": "client", "iss": "daybreak", "aud": "ingest",
                           "iat": 1, "exp": 4102444800}, None, algorithm="none",
                          headers={"kid": KEYSET.active_kid})
    keys = {KEYSET.active_kid: KEYSET.active.public_key()}
    with pytest.raises(InvalidToken, match="header"):
        decode_token(unsigned, keys=keys, audience="ingest", issuer="daybreak")
    with pytest.raises(InvalidToken):
        decode_token("garbage", keys=keys, audience="ingest", issuer="daybreak")


def test_field_paths_read_like_the_body() -> None:
    assert field_path(("body", "children", 0, "date_of_birth")) == "children[0].date_of_birth"
    assert field_path(("body",)) == "body"
