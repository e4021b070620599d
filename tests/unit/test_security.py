"""Settings, hashing and tokens, without any service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import ValidationError

from services.common.problems import field_path
from services.common.security import (
    InvalidToken,
    Principal,
    decode_token,
    hash_secret,
    issue_token,
    verify_secret,
)
from services.common.settings import DEV_SECRET, Settings

KEY = "k" * 64
NOW = datetime(2026, 11, 22, 8, 0, tzinfo=UTC)
POLICE = Principal(subject="wmp-1", kind="client", role="police",
                   scopes=frozenset({"incidents:write"}), force_code="WMP")


def settings(**kw) -> Settings:
    return Settings(**{"env": "test", "jwt_secret": KEY, "child_key_secret": KEY,
                       "kafka_username": "ingest", "kafka_password": KEY, **kw})


def test_default_or_short_secrets_are_refused_outside_development() -> None:
    with pytest.raises(ValidationError, match="JWT_SECRET"):
        Settings(env="production", jwt_secret=DEV_SECRET, child_key_secret=KEY)
    with pytest.raises(ValidationError, match="CHILD_KEY_SECRET"):
        Settings(env="test", jwt_secret=KEY, child_key_secret="short")
    assert Settings(env="development").env == "development"


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
    connection = settings(kafka_bootstrap="kafka:9092").kafka()
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


def test_secrets_hash_with_argon2_and_verify() -> None:
    stored = hash_secret("s3cret-value")
    assert stored.startswith("$argon2id$")
    assert verify_secret(stored, "s3cret-value")
    assert not verify_secret(stored, "other")
    assert not verify_secret(None, "anything")
    assert not verify_secret("not-a-hash", "anything")


def test_token_round_trip_keeps_force_and_scope() -> None:
    token, ttl = issue_token(settings(), POLICE, now=datetime.now(UTC))
    back = decode_token(settings(), token)
    assert back.force_code == "WMP" and back.scopes == {"incidents:write"}
    assert ttl == 900


@pytest.mark.parametrize("make", [
    lambda: issue_token(settings(), POLICE, now=NOW - timedelta(days=1))[0],
    lambda: issue_token(settings(jwt_secret="x" * 64), POLICE, now=datetime.now(UTC))[0],
    lambda: issue_token(settings(jwt_audience="other"), POLICE, now=datetime.now(UTC))[0],
    lambda: issue_token(settings(jwt_issuer="other"), POLICE, now=datetime.now(UTC))[0],
    lambda: jwt.encode({"sub": "x", "kind": "client", "iss": "daybreak", "aud": "daybreak",
                        "iat": 1, "exp": 4102444800}, None, algorithm="none"),
    lambda: jwt.encode({"sub": "x", "kind": "client", "iss": "daybreak", "aud": "daybreak",
                        "iat": 1}, KEY, algorithm="HS256"),
    lambda: jwt.encode({"sub": "x", "kind": "robot", "iss": "daybreak", "aud": "daybreak",
                        "iat": 1, "exp": 4102444800}, KEY, algorithm="HS256"),
    lambda: "garbage",
])
def test_bad_tokens_are_refused(make) -> None:
    with pytest.raises(InvalidToken):
        decode_token(settings(), make())


def test_field_paths_read_like_the_body() -> None:
    assert field_path(("body", "children", 0, "date_of_birth")) == "children[0].date_of_birth"
    assert field_path(("body",)) == "body"
