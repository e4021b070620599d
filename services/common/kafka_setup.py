"""One setup path for a deployment's broker: SCRAM users, topics and ACLs, run as `admin`.

    python -m services.common.kafka_setup apply       # users, topics, configs, ACLs (idempotent)
    python -m services.common.kafka_setup scram-args  # `kafka-storage format` arguments

Used by scripts/infra.sh, tests/support/stack_infra.py and docker-compose.yml. Passwords come
from `DAYBREAK_<PRINCIPAL>_KAFKA_PASSWORD`; they never appear on a command line: the broker's
own two users are bootstrapped at format time as salted SCRAM credentials, the services' users
through the Admin API (AlterUserScramCredentials), which also carries only salted forms.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import os
import secrets
import sys
from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import for_code
from aiokafka.protocol.admin import CreateAclsRequest, DeleteAclsRequest

from schemas import topics
from services.common.kafka import ensure_topics
from services.common.kafka_access import ADMIN, BROKER, SERVICES, Grant, all_grants
from services.common.kafka_configs import set_topic_configs
from services.common.kafka_scram import AlterScramCredentials
from services.common.settings import KafkaConnection, Settings, TopicLayout

log = logging.getLogger(__name__)
SCRAM_ITERATIONS = 8192
_ALLOW, _ANY_HOST, _ANY = 3, "*", 1


def password_variable(principal: str) -> str:
    """The environment variable holding a principal's password."""
    return f"DAYBREAK_{principal.upper()}_KAFKA_PASSWORD"


def salted_password(password: str, salt: bytes, *, iterations: int = SCRAM_ITERATIONS) -> bytes:
    """RFC 5802 SaltedPassword for SCRAM-SHA-512: PBKDF2-HMAC-SHA512."""
    return hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)


def scram_format_argument(principal: str, password: str) -> str:
    """A `kafka-storage format --add-scram` value holding only the salted credential."""
    salt = secrets.token_bytes(32)
    salted = salted_password(password, salt)
    return (f'SCRAM-SHA-512=[name={principal},iterations={SCRAM_ITERATIONS},'
            f'salt="{base64.b64encode(salt).decode()}",'
            f'saltedpassword="{base64.b64encode(salted).decode()}"]')


def deployment_topics(prefix: str) -> list[str]:
    """Every topic a deployment uses, under its prefix."""
    return [prefix + t for t in (*topics.all_topics_with_dlq(), *topics.AUDIT_EVIDENCE,
                                 topics.REVOCATIONS)]


async def apply(
    kafka: KafkaConnection, *, prefix: str, layout: TopicLayout,
    passwords: Mapping[str, str],
) -> None:
    """Create or update the services' SCRAM users, the topics, their configs and the ACLs
    (idempotent)."""
    names = deployment_topics(prefix)
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=10000)
    await admin.start()
    try:
        await upsert_users(admin, passwords)
        await ensure_topics(kafka, names, layout=layout)
        # a topic made by an older release keeps its old configs unless they are set again
        await set_topic_configs(admin, {t: layout.configs(t) for t in names})
        await create_acls(admin, all_grants(prefix))
    finally:
        await admin.close()
    log.info("kafka setup: %d users, %d topics and %d ACLs under prefix %r", len(passwords),
             len(names), len(all_grants(prefix)), prefix)


async def upsert_users(admin: AIOKafkaAdminClient, passwords: Mapping[str, str]) -> None:
    """Set each principal's SCRAM-SHA-512 password (a fresh salt each time)."""
    if not passwords:
        return
    upserts = []
    for principal, password in passwords.items():
        salt = secrets.token_bytes(32)
        upserts.append((principal, salt, salted_password(password, salt)))
    response = await admin._send_request(  # aiokafka has no helper for this request
        AlterScramCredentials(upserts, iterations=SCRAM_ITERATIONS))
    for user, code, message, _tags in response.results:
        if code:
            raise for_code(code)(f"SCRAM credentials for {user}: {message}")


async def create_acls(admin: AIOKafkaAdminClient, grants: list[Grant]) -> None:
    """Add each ALLOW ACL (adding an existing one is a no-op)."""
    for grant in grants:
        response = await admin._send_request(CreateAclsRequest(
            grant.resource, grant.name, grant.pattern, f"User:{grant.principal}", _ANY_HOST,
            grant.operation, _ALLOW))
        for code, message in response.creation_responses:
            if code:
                raise for_code(code)(f"ACL for {grant.principal} on {grant.name}: {message}")


async def delete_acls_of(kafka: KafkaConnection, principal: str, *, prefix: str) -> None:
    """Remove a principal's ACLs on resources under a prefix (tests' own prefixes)."""
    admin = AIOKafkaAdminClient(**kafka.client_options(), request_timeout_ms=10000)
    await admin.start()
    try:
        for grant in (g for g in all_grants(prefix) if g.principal == principal):
            await admin._send_request(DeleteAclsRequest(
                grant.resource, grant.name, grant.pattern, f"User:{principal}", _ANY_HOST,
                _ANY, _ANY))
    finally:
        await admin.close()


def passwords_from_environment() -> dict[str, str]:
    """Each service principal whose password variable is set."""
    return {s.name: os.environ[password_variable(s.name)]
            for s in SERVICES if os.environ.get(password_variable(s.name))}


def _scram_args() -> None:
    for principal in (ADMIN, BROKER):
        password = os.environ.get(password_variable(principal))
        if not password:
            raise SystemExit(f"{password_variable(principal)} is not set")
        print("--add-scram")
        print(scram_format_argument(principal, password))


def main(argv: list[str]) -> None:
    """`apply` (as the admin of DAYBREAK_KAFKA_USERNAME/PASSWORD) or `scram-args`."""
    logging.basicConfig(level=logging.INFO, format="kafka-setup: %(message)s")
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    if argv == ["scram-args"]:
        _scram_args()
    elif argv == ["apply"]:
        settings = Settings()
        if settings.kafka_username != ADMIN:
            raise SystemExit("kafka setup runs as admin: set DAYBREAK_KAFKA_USERNAME=admin")
        asyncio.run(apply(settings.kafka(), prefix=settings.topic_prefix,
                          layout=settings.topic_layout(), passwords=passwords_from_environment()))
    else:
        raise SystemExit("usage: python -m services.common.kafka_setup apply|scram-args")


if __name__ == "__main__":
    main(sys.argv[1:])
