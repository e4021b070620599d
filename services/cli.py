"""The `daybreak` command: serve services, manage accounts, run batch jobs."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Coroutine
from datetime import date, datetime
from typing import Any, BinaryIO

from services.common.cli_errors import CliError
from services.common.security import ROLES
from services.common.settings import MissingSetting, ServiceName, Settings

PORTS = {"ingest": 8001, "matcher": 8002, "notifier": 8003, "audit": 8004, "identity": 8005}
APPS = {
    "identity": "services.identity.main:build_app",
    "ingest": "services.ingest.main:build_app",
    "matcher": "services.matcher.main:build_app",
    "notifier": "services.notifier.main:build_app",
    "audit": "services.audit.main:build_app",
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `daybreak` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        result: int = args.run(args)
    except (CliError, MissingSetting) as exc:
        print(f"daybreak: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="daybreak", description=__doc__)
    sub = parser.add_subparsers(metavar="COMMAND")

    serve = sub.add_parser("serve", help="run a service's HTTP API")
    serve.add_argument("service", choices=sorted(APPS))
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=_serve)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", help="apply migrations (owner role)")
    upgrade.set_defaults(run=_db_upgrade)

    clients = sub.add_parser("clients", help="police API clients")
    clients_sub = clients.add_subparsers(metavar="ACTION")
    create_client = clients_sub.add_parser("create", help="create a client for a force")
    create_client.add_argument("--force", required=True)
    create_client.set_defaults(run=_clients_create)

    users = sub.add_parser("users", help="people: DSLs, LA officers, auditors, admins, "
                                         "partnerships")
    users_sub = users.add_subparsers(metavar="ACTION")
    create_user = users_sub.add_parser("create", help="create a user; password on stdin")
    create_user.add_argument("--email", required=True)
    create_user.add_argument(
        "--role", required=True, choices=list(ROLES),
        help="partnership: read-only figures of the LAs named with --la")
    create_user.add_argument("--school", action="append", default=[], metavar="URN")
    create_user.add_argument("--la", action="append", default=[], metavar="CODE")
    create_user.add_argument("--qr", metavar="FILE.png",
                             help="also write the TOTP enrolment QR code to this PNG file")
    create_user.set_defaults(run=_users_create)

    schools = sub.add_parser("schools", help="the school registry")
    schools_sub = schools.add_subparsers(metavar="ACTION")
    schools_import = schools_sub.add_parser(
        "import", help="create or update schools from a GIAS establishments CSV"
    )
    schools_import.add_argument("file", metavar="FILE.csv")
    schools_import.set_defaults(run=_schools_import)

    roster = sub.add_parser("roster", help="school rolls")
    roster_sub = roster.add_subparsers(metavar="ACTION")
    roster_import = roster_sub.add_parser(
        "import", help="replace the rolls of the schools a roster CSV names, or the roll of a "
        "school MIS's Common Transfer File (FILE.xml), all or nothing"
    )
    roster_import.add_argument("file", metavar="FILE.csv|FILE.xml")
    roster_import.set_defaults(run=_roster_import)

    calendar = sub.add_parser("calendar", help="school calendars and LA term dates")
    calendar_sub = calendar.add_subparsers(metavar="ACTION")
    calendar_import = calendar_sub.add_parser(
        "import", help="replace the calendar overrides of the schools a CSV names, an LA's "
                       "term dates (--la) or a school's own (--school), all or nothing")
    whose = calendar_import.add_mutually_exclusive_group()
    whose.add_argument("--la", metavar="CODE",
                       help="the LA's term dates, for its schools without their own "
                            "(FILE .ics, or a date,kind CSV)")
    whose.add_argument("--school", metavar="URN",
                       help="the school's own term dates (FILE .ics; a urn,date,kind CSV sets "
                            "its overrides)")
    calendar_import.add_argument("file", metavar="FILE")
    calendar_import.set_defaults(run=_calendar_import)

    registry = sub.add_parser("registry", help="the registry's events (registry.v1)")
    registry_sub = registry.add_subparsers(metavar="ACTION")
    republish = registry_sub.add_parser(
        "republish", help="announce every school, LA and calendar again (after an upgrade)")
    republish.set_defaults(run=_registry_republish)
    rebuild = registry_sub.add_parser(
        "rebuild", help="rebuild the notifier's copy of the registry from registry.v1")
    rebuild.set_defaults(run=_registry_rebuild)

    match = sub.add_parser("match", help="match a children file against a roster file")
    match.add_argument("--roster", required=True, metavar="ROSTER.csv")
    match.add_argument("--children", required=True, metavar="CHILDREN.csv")
    match.add_argument("--out", required=True, metavar="RESULTS.csv")
    match.add_argument("--on-date", type=_iso_date, metavar="YYYY-MM-DD",
                       help="match as at this date (default today)")
    match.add_argument("--workers", type=_positive_int, metavar="N",
                       help="processes to match on (default one per CPU)")
    match.set_defaults(run=_match)

    audit = sub.add_parser("audit", help="the disclosure log")
    audit_sub = audit.add_subparsers(metavar="ACTION")
    verify = audit_sub.add_parser("verify", help="check chain, tree and signed heads")
    verify.set_defaults(run=lambda a: _audit("verify"))
    keygen = audit_sub.add_parser("keygen", help="print a new tree-head signing keypair")
    keygen.set_defaults(run=lambda a: _audit("keygen"))
    ack = audit_sub.add_parser(
        "acknowledge-break", help="record (in the log) that the bad row verification stops at "
        "is known, so head signing resumes over the log as it stands; the row stays reported")
    ack.add_argument("--seq", type=_positive_int, required=True, metavar="N",
                     help="the seq of the row `audit verify` names as the open break")
    ack.add_argument("--reason", required=True, metavar="TEXT",
                     help="why (10-500 characters, one line, no child data)")
    ack.add_argument("--actor", default=None, metavar="NAME",
                     help="who acknowledges (default operator:<login name>)")
    ack.set_defaults(run=lambda a: _audit("acknowledge-break", a))
    witness = audit_sub.add_parser(
        "witness", help="run the independent witness: cosign each consistent signed head")
    witness.set_defaults(run=lambda a: _audit("witness"))
    wkeygen = audit_sub.add_parser("witness-keygen",
                                   help="print a new witness signing key and its verifier key")
    wkeygen.add_argument("--name", default="daybreak-witness", metavar="NAME")
    wkeygen.set_defaults(run=lambda a: _audit("witness-keygen", a))

    keys = sub.add_parser("keys", help="the identity service's token signing keys; the "
                          "child-data key-encryption key")
    keys_sub = keys.add_subparsers(metavar="ACTION")
    init = keys_sub.add_parser(
        "init", help="create the child-data key-encryption key (32 random bytes, 0600) and "
        "the keystore directory, unless they exist")
    init.add_argument("--kek-file", metavar="PATH",
                      help="where (default DAYBREAK_KEK_FILE)")
    init.set_defaults(run=_keys_init)
    rotate = keys_sub.add_parser(
        "rotate", help="print DAYBREAK_IDENTITY_SIGNING_KEYS with a new active key in front")
    rotate.add_argument("--keep", type=int, default=2, metavar="N",
                        help="keys to keep listed, the new one included (default 2)")
    rotate.set_defaults(run=_keys_rotate)
    jwks = keys_sub.add_parser("jwks", help="print the public JWKS of the configured keys")
    jwks.set_defaults(run=_keys_jwks)
    totp_init = keys_sub.add_parser(
        "totp-init", help="create the key file DAYBREAK_IDENTITY_TOTP_KEY_FILE names (mode "
        "0600) unless it exists: the key that seals TOTP secrets at rest")
    totp_init.set_defaults(run=_keys_totp_init)

    pseudonym = sub.add_parser("pseudonym", help="the secrets child keys are made with")
    pseudonym_sub = pseudonym.add_subparsers(metavar="ACTION")
    rotate_key = pseudonym_sub.add_parser(
        "rotate", help="print DAYBREAK_CHILD_KEY_SECRETS with a new current secret in front")
    rotate_key.set_defaults(run=_pseudonym_rotate)

    reseal = sub.add_parser("reseal", help="seal the child data the matcher and notifier "
                                           "stored clear before sealing (once, after upgrading)"
                                           ", and the school rolls under this year's roll key")
    reseal.set_defaults(run=_reseal)

    retention = sub.add_parser("retention", help="data retention")
    retention_sub = retention.add_subparsers(metavar="ACTION")
    run = retention_sub.add_parser("run", help="apply the retention periods now")
    run.set_defaults(run=lambda a: _audit("retention"))

    demo = sub.add_parser("demo", help="report a demo incident to the running services")
    demo.set_defaults(run=_demo)
    sandbox = sub.add_parser(
        "sandbox", help="a police supplier's sandbox on the running services: a force, a "
        "client, test schools and children (prints its secrets once, as JSON)")
    sandbox.set_defaults(run=_sandbox)

    doctor = sub.add_parser(
        "doctor", help="list each configuration problem that would leave a child with nobody "
        "told (exit 1 when there is any)")
    doctor.set_defaults(run=_doctor)
    return parser


def _audit(action: str, args: argparse.Namespace | None = None) -> int:
    from services.audit import cli as audit_cli

    if action == "keygen":
        return audit_cli.keygen()
    if action == "witness-keygen":
        assert args is not None
        return audit_cli.witness_keygen(args.name)
    settings = _settings()
    try:
        if action == "verify":
            return audit_cli.verify(settings)
        if action == "acknowledge-break":
            assert args is not None
            import getpass

            actor = args.actor or f"operator:{getpass.getuser()}"
            return audit_cli.acknowledge_break(settings, seq=args.seq, reason=args.reason,
                                               actor=actor)
        if action == "witness":
            return audit_cli.witness(settings)
        return retention_run(settings)
    except Exception as exc:
        from services.common.errors import is_transient

        if is_transient(exc):
            raise CliError(f"database unavailable ({type(exc).__name__})") from None
        raise


def retention_run(settings: Settings) -> int:
    """Each service's purge as its own role (each announced to the audit log), then the audit
    log's own count; prints a one-line summary."""
    from services.audit.cli import record_retention_run
    from services.audit.settings import audit_settings
    from services.common.context import utc_now
    from services.common.db import service_engine
    from services.common.retention import content_cutoff
    from services.matcher.retention import run_retention as purge_reviews
    from services.notifier.retention import run_retention as purge_notifications

    async def purge_as(service: ServiceName, purge: Any, now: datetime) -> int:
        engine = service_engine(settings, service, pool_size=1)
        try:
            count: int = await purge(engine, topic_prefix=settings.topic_prefix,
                                     days=settings.retention_content_days, now=now,
                                     trigger="cli")
            return count
        finally:
            await engine.dispose()

    async def work() -> dict[str, Any]:
        now = utc_now()
        notifications = await purge_as("notifier", purge_notifications, now)
        reviews = await purge_as("matcher", purge_reviews, now)
        audit = await record_retention_run(audit_settings(settings), now=now)
        return {"notifications_purged": notifications, "reviews_purged": reviews,
                "cutoff": content_cutoff(now, settings.retention_content_days).isoformat(),
                "audit": audit}

    print(json.dumps(asyncio.run(work())))
    return 0


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from services.common.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        APPS[args.service], factory=True, host=args.host,
        port=args.port or PORTS[args.service], log_config=None, access_log=False,
        workers=args.workers,
        # identity takes a sign-in's address from its trusted relays' own header alone, never
        # from X-Forwarded-For (the others keep uvicorn's: believed from 127.0.0.1 only)
        proxy_headers=args.service != "identity",
    )
    return 0


def _db_upgrade(args: argparse.Namespace) -> int:
    from alembic import command
    from alembic.config import Config

    command.upgrade(Config("alembic.ini"), "head")
    return 0


def _clients_create(args: argparse.Namespace) -> int:
    from services.common.db import standalone_uow
    from services.identity.accounts import AccountError, create_client

    async def work(settings: Settings) -> dict[str, str]:
        async with standalone_uow(settings, "identity") as uow:
            try:
                new = await create_client(uow.conn, force_code=args.force)
            except AccountError as exc:
                raise CliError(str(exc)) from None
            await uow.commit()
        return {"client_id": new.client_id, "client_secret": new.client_secret}

    print(json.dumps(_run_async(work)))
    return 0


def _users_create(args: argparse.Namespace) -> int:
    from services.common.db import standalone_uow
    from services.identity.accounts import AccountError, create_user
    from services.identity.totp_vault import TotpKeyError, totp_vault

    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("give the password on standard input")
    try:
        vault = totp_vault(_settings())
    except TotpKeyError as exc:
        raise CliError(str(exc)) from None

    async def work(settings: Settings) -> dict[str, str]:
        async with standalone_uow(settings, "identity") as uow:
            try:
                new = await create_user(
                    uow.conn, vault=vault, email=args.email, password=password, role=args.role,
                    school_urns=args.school, la_codes=[c.upper() for c in args.la],
                )
            except AccountError as exc:
                raise CliError(str(exc)) from None
            await uow.commit()
        return {"user_id": str(new.user_id), "totp_uri": new.totp_uri}

    qr = _private_file(args.qr) if args.qr else None  # before the account: fail first
    try:
        created = _run_async(work)
    except BaseException:
        if qr is not None:
            qr.close()
            os.unlink(args.qr)
        raise
    if qr is not None:
        _write_qr(created["totp_uri"], qr)
    print(json.dumps(created))
    return 0


def _private_file(path: str) -> BinaryIO:
    """A new file only its owner may read (0600): never over an existing file, never through
    a symlink."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror}") from None
    return os.fdopen(fd, "wb")


def _write_qr(uri: str, out: BinaryIO) -> None:
    """The enrolment QR code for an authenticator app: a PNG (it holds the TOTP secret, so
    `out` is a private file), and on a terminal as text."""
    import qrcode
    from qrcode.image.pure import PyPNGImage

    code = qrcode.QRCode(border=2, image_factory=PyPNGImage)
    code.add_data(uri)
    with out:
        code.make_image().save(out)
    if sys.stderr.isatty():
        code.print_ascii(out=sys.stderr, invert=True)


def _keys_init(args: argparse.Namespace) -> int:
    from pathlib import Path

    from services.common.crypto import create_kek_file

    store: Path | None = None
    if args.kek_file:  # a deployer's machine: no service settings needed
        kek: Path | None = Path(args.kek_file)
    else:
        settings = _settings()
        kek, store = settings.kek_file, settings.keystore_dir
    if kek is None:
        raise MissingSetting("DAYBREAK_KEK_FILE is not set (or give --kek-file)")
    created = create_kek_file(kek)
    if store is not None:
        store.mkdir(parents=True, exist_ok=True, mode=0o700)
    print(f"{'created' if created else 'kept the existing'} key-encryption key {kek}")
    return 0


def _keys_rotate(args: argparse.Namespace) -> int:
    from services.identity.keys import rotated

    if args.keep < 2:
        raise CliError("keep at least 2 keys: tokens signed by the previous one must verify")
    print(rotated(os.environ.get("DAYBREAK_IDENTITY_SIGNING_KEYS", "[]"), keep=args.keep))
    return 0


def _reseal(args: argparse.Namespace) -> int:
    """Each service's clear rows sealed as its own role; prints how many of each."""
    print(json.dumps(_run_async(reseal_all)))
    return 0


async def reseal_all(settings: Settings) -> dict[str, int]:
    """Seal the rows the notifier and the matcher stored before sealing, each as its role, and
    the school rolls under this year's roll key."""
    from services.common.context import utc_now
    from services.common.db import service_engine
    from services.matcher.content import reseal as reseal_reviews
    from services.matcher.roll import reseal_roll
    from services.notifier.content import reseal as reseal_notifications

    done: dict[str, int] = {}
    passes: tuple[tuple[str, ServiceName, Any], ...] = (
        ("notifier", "notifier", reseal_notifications), ("matcher", "matcher", reseal_reviews),
        ("roll", "matcher", reseal_roll))  # the roll: clear rows and older roll keys
    for name, service, reseal in passes:
        engine = service_engine(settings, service, pool_size=1)
        try:
            done[name] = await reseal(engine, now=utc_now())
        finally:
            await engine.dispose()
    return done


def _pseudonym_rotate(args: argparse.Namespace) -> int:
    """Every secret kept (entries logged under each stay findable), a new one current: set
    the printed value on every service, and the notifier re-keys stored children to it."""
    print(_settings().child_keys().rotate().rotated_setting())
    return 0


def _keys_totp_init(args: argparse.Namespace) -> int:
    from services.identity.totp_vault import create_key_file, key_file_of

    path = key_file_of(_settings())
    try:
        made = create_key_file(path)
    except OSError as exc:
        raise CliError(f"cannot create {path}: {exc.strerror}") from None
    print(json.dumps({"key_file": str(path), "created": made}))
    return 0


def _keys_jwks(args: argparse.Namespace) -> int:
    from services.identity.keys import BadSigningKey, Keyset

    try:
        keyset = Keyset.from_setting(os.environ.get("DAYBREAK_IDENTITY_SIGNING_KEYS", ""))
    except BadSigningKey as exc:
        raise CliError(str(exc)) from None
    print(json.dumps(keyset.jwks()))
    return 0


def _schools_import(args: argparse.Namespace) -> int:
    from services.matcher.registry_cli import schools_import

    return schools_import(args.file, _settings())


def _roster_import(args: argparse.Namespace) -> int:
    from services.matcher.registry_cli import roster_import

    return roster_import(args.file, _settings())


def _calendar_import(args: argparse.Namespace) -> int:
    from services.matcher.registry_cli import calendar_import

    return calendar_import(args.file, _settings(), la_code=args.la, urn=args.school)


def _registry_republish(args: argparse.Namespace) -> int:
    from services.matcher.registry_cli import registry_republish

    return registry_republish(_settings())


def _registry_rebuild(args: argparse.Namespace) -> int:
    from schemas import topics
    from services.common.db import service_engine
    from services.notifier.directory import rebuild

    async def work(settings: Settings) -> dict[str, int]:
        engine = service_engine(settings, "notifier", pool_size=1)
        try:
            return {"applied": await rebuild(engine, kafka=settings.kafka(),
                                             topic=settings.topic(topics.REGISTRY))}
        finally:
            await engine.dispose()

    print(json.dumps(_run_async(work)))
    return 0


def _match(args: argparse.Namespace) -> int:
    from services.matcher.batch import main_match

    return main_match(args.roster, args.children, args.out, on_date=args.on_date,
                      workers=args.workers)


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a date as YYYY-MM-DD") from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number, 1 or more")
    return int(text)


def _demo(args: argparse.Namespace) -> int:
    import httpx

    from services.demo import DemoTimeout
    from services.demo import main as demo_main

    try:
        return demo_main(_settings())
    except DemoTimeout as exc:
        raise CliError(f"demo failed: {exc}") from None
    except (OSError, KeyError, TimeoutError, httpx.HTTPError) as exc:
        raise CliError(f"demo failed ({type(exc).__name__}); is `make up` running?") from None


def _sandbox(args: argparse.Namespace) -> int:
    import httpx

    from services.sandbox import main as sandbox_main

    try:
        return sandbox_main(_settings())
    except (OSError, KeyError, httpx.HTTPError) as exc:
        raise CliError(f"sandbox failed ({type(exc).__name__}); is `make up` running?") from None


def _doctor(args: argparse.Namespace) -> int:
    from services.common.context import utc_now
    from services.doctor import configuration_problems
    from services.matcher.readiness import registry_problems as registry

    problems = _run_async(lambda settings: configuration_problems(
        settings, now=utc_now(), registry_problems=registry))
    for problem in problems:
        print(problem.line())
    if problems:
        print(f"daybreak: {len(problems)} configuration problem(s) would leave a child with "
              "nobody told", file=sys.stderr)
        return 1
    print("ready: no configuration problem would leave a child with nobody told")
    return 0


def _settings() -> Settings:
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CliError(f"settings: {first.get('msg', 'invalid')}") from None


def _run_async(work: Callable[[Settings], Coroutine[Any, Any, Any]]) -> Any:
    settings = _settings()
    try:
        return asyncio.run(work(settings))
    except CliError:
        raise
    except MissingSetting as exc:
        raise CliError(str(exc)) from None
    except Exception as exc:
        # the class name only: driver messages can carry values from the data
        cause: BaseException = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise CliError(f"database or broker error ({type(cause).__name__})") from None


if __name__ == "__main__":
    sys.exit(main())
