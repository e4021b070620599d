"""What a verifier refuses once a revocation is known, and how long revocations are kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from pydantic import ValidationError

from schemas.identity import SessionsRevoked
from services.common.jwks import InvalidToken, TokenVerifier
from services.common.kafka_setup import deployment_topics
from services.common.revocations import Denylist, RevocationsUnavailable
from services.common.security import Principal
from services.common.settings import HOUR_MS, Settings
from tests.support.tokens import ISSUER, KEYSET, mint, person

AT = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def claims(*, sub: str = "u1", sid: str = "s1", iat: datetime = AT) -> dict[str, object]:
    return {"sub": sub, "sid": sid, "iat": int(iat.timestamp())}


def denylist(*events: SessionsRevoked) -> Denylist:
    found = Denylist(horizon=timedelta(hours=13))
    for event in events:
        found.add(event)
    found.caught_up.set()
    return found


@pytest.mark.parametrize(("event", "token", "refused"), [
    pytest.param(SessionsRevoked(sid="s1", revoked_before=AT, reason="signed_out"),
                 claims(), True, id="its-session"),
    pytest.param(SessionsRevoked(sid="s1", revoked_before=AT, reason="signed_out"),
                 claims(sid="s2"), False, id="another-session-of-the-person"),
    pytest.param(SessionsRevoked(subject="u1", revoked_before=AT, reason="user_disabled"),
                 claims(sid="s9", iat=AT - timedelta(hours=1)), True, id="subject-earlier"),
    pytest.param(SessionsRevoked(subject="u1", revoked_before=AT, reason="access_changed"),
                 claims(iat=AT), True, id="subject-same-second"),
    pytest.param(SessionsRevoked(subject="u1", revoked_before=AT, reason="access_changed"),
                 claims(iat=AT + timedelta(seconds=1)), False, id="subject-signed-in-again"),
    pytest.param(SessionsRevoked(subject="u1", revoked_before=AT, reason="user_disabled"),
                 claims(sub="u2"), False, id="someone-else"),
])
def test_what_a_revocation_refuses(event: SessionsRevoked, token: dict[str, object],
                                   refused: bool) -> None:
    assert denylist(event).revoked(token) is refused


def test_a_revocation_names_a_session_or_a_subject_and_no_address() -> None:
    with pytest.raises(ValidationError):
        SessionsRevoked(revoked_before=AT, reason="signed_out")
    with pytest.raises(ValidationError):
        SessionsRevoked.model_validate({"sid": "s1", "revoked_before": AT.isoformat(),
                                        "reason": "signed_out", "email": "a@b.test"})


def test_entries_older_than_any_live_token_are_dropped() -> None:
    found = denylist(SessionsRevoked(sid="old", revoked_before=AT, reason="signed_out"),
                     SessionsRevoked(subject="u1", revoked_before=AT + timedelta(hours=12),
                                     reason="user_disabled"))
    found.prune(AT + timedelta(hours=13, seconds=1))
    assert found.sessions == {} and set(found.subjects) == {"u1"}


async def test_before_the_feed_has_caught_up_tokens_wait_then_are_refused_503() -> None:
    waiting = Denylist(horizon=timedelta(hours=13), wait_s=0.05)
    with pytest.raises(RevocationsUnavailable):
        await waiting.refuses(claims())
    task = asyncio.create_task(Denylist.refuses(waiting, claims()))
    waiting.caught_up.set()
    assert await task is False


async def test_the_verifier_refuses_a_revoked_token_and_admits_the_rest() -> None:
    verifier = TokenVerifier(audience="notifier", issuer=ISSUER, static={
        kid: key.public_key() for kid, key in zip(KEYSET.kids, KEYSET.keys, strict=True)})
    dsl: Principal = person("dsl", schools=["100001"])
    token, other = mint(dsl), mint(dsl)
    verifier.revocations = denylist()
    assert (await verifier.verify(token)).subject == dsl.subject
    sid = str(jwt.decode(token, options={"verify_signature": False})["sid"])
    verifier.revocations = denylist(SessionsRevoked(sid=sid, revoked_before=AT,
                                                    reason="signed_out"))
    with pytest.raises(InvalidToken):
        await verifier.verify(token)
    assert (await verifier.verify(other)).subject == dsl.subject


def test_revocations_outlive_the_longest_token() -> None:
    settings = Settings(env="development", user_token_ttl_seconds=8 * 3600,
                        client_token_ttl_seconds=900)
    [topic] = [t for t in deployment_topics("p.") if t.endswith("identity-revocations.v1")]
    assert settings.topic_layout().configs(topic)["retention.ms"] == str(9 * HOUR_MS)
