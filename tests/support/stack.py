"""A whole Daybreak deployment in throwaway processes, every part killable and restartable.

Its own PostgreSQL cluster (initdb, roles and database as scripts/infra.sh makes them,
migrated to head), its own single-node Kafka broker, an in-process SMTP sink, and the
services as `daybreak serve <name> --port <free port>` processes, all under one temporary
directory (logs in `stack.logs`). Nothing touches the shared broker or database.

    with Stack.up() as stack:                      # or Stack.up(services=("ingest",))
        stack.url("ingest")                        # http://127.0.0.1:<port>
        stack.kill("matcher")                      # SIGKILL; any signal: kill(name, sig)
        stack.start("matcher")                     # same port, waits for /readyz
        stack.restart("kafka", hard=False)         # SIGTERM; hard=True is SIGKILL
        stack.restart("postgres")                  # crash (kill -9 of every backend) + recovery
        stack.pid("audit")                         # e.g. /proc/<pid>/status VmHWM
        stack.mail.messages                        # every e-mail the notifier sent
        stack.settings()                           # Settings for tests.support helpers

Component names: "postgres", "kafka" and the services (the identity service always among them,
started first). The calls block (a broker start takes
seconds): from async code use `await asyncio.to_thread(stack.restart, "kafka")`. `close()`
(or leaving the `with`) kills everything and deletes the directory; it also runs at exit
(a runner killed with SIGKILL leaves its processes and /tmp/daybreak-stack-* behind).
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from aiosmtpd.controller import Controller

from services.audit.tree_head import generate_keypair
from services.common.kafka_access import ADMIN
from services.common.sealing import KEY_HOLDERS
from services.common.settings import Settings
from services.identity.totp_vault import create_key_file
from tests.conftest import REPO
from tests.support.keys import Keystore, make_keystore
from tests.support.ports import free_port
from tests.support.stack_infra import Kafka, Postgres
from tests.support.stack_process import Mail, MailSink, Service
from tests.support.tokens import SIGNING_KEYS, trusting

__all__ = ["SERVICES", "Mail", "MailSink", "Stack"]
SERVICES = ("identity", "ingest", "matcher", "notifier", "audit")  # the issuer starts first


class Stack:
    """PostgreSQL, Kafka, an SMTP sink and the services; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.logs = root / "logs"
        self.postgres: Postgres | None = None
        self.kafka: Kafka | None = None
        self.mail = MailSink()
        self._smtp: Controller | None = None
        self.services: dict[str, Service] = {}
        self.env: dict[str, str] = {}
        self.topic_prefix = ""
        self.keystore: Keystore | None = None
        # the test session's metrics token when there is one (tests/conftest.py), else the
        # stack's own (a bench run on its own)
        self._secrets = {"child_key": secrets.token_hex(32),
                         "metrics": os.environ.get("DAYBREAK_METRICS_TOKEN")
                         or secrets.token_urlsafe(32)}
        self._closed = False

    @classmethod
    def up(cls, services: tuple[str, ...] = SERVICES, *, topic_prefix: str = "",
           env: dict[str, str] | None = None, pg_options: dict[str, str] | None = None,
           serve_args: dict[str, list[str]] | None = None) -> Stack:
        """Create, migrate and start everything; on any failure tear down what started.

        `env` overrides the services' settings, `pg_options` PostgreSQL's (`-c` name=value),
        `serve_args` adds `daybreak serve` options per service (e.g. {"ingest": ["--workers",
        "2"]})."""
        # the issuer always runs: every other service relays sign-ins to it and fetches its keys
        services = ("identity", *(name for name in services if name != "identity"))
        root = Path(tempfile.mkdtemp(prefix="daybreak-stack-"))
        root.chmod(0o711)  # the postgres user must reach its own subdirectory
        stack = cls(root)
        atexit.register(stack.close)
        try:
            stack._up(services, topic_prefix, env or {}, pg_options, serve_args or {})
        except BaseException:
            stack.close(keep_logs=True)
            raise
        return stack

    def _up(self, services: tuple[str, ...], topic_prefix: str, env: dict[str, str],
            pg_options: dict[str, str] | None, serve_args: dict[str, list[str]]) -> None:
        (self.logs / "kafka").mkdir(parents=True)
        (self.root / "audit").mkdir()
        if "DAYBREAK_IDENTITY_TOTP_KEY_FILE" not in os.environ:
            create_key_file(self.root / "identity-totp.key")  # the stack's own (see env)
        self.kafka = Kafka(self.root, free_port(), free_port())
        self.postgres = Postgres(self.root, free_port(), options=pg_options)
        kafka_up = threading.Thread(target=self.kafka.init)  # its JVMs start meanwhile
        kafka_up.start()
        try:
            self.postgres.init()
            self._migrate()
        finally:
            kafka_up.join()
        self.kafka.wait_ready()
        self.topic_prefix = topic_prefix
        self.kafka.setup(prefix=topic_prefix, layout=self.settings().topic_layout())
        self._smtp = Controller(self.mail, hostname="127.0.0.1", port=self.mail.port)
        self._smtp.start()
        ports = {name: free_port() for name in services}
        self.keystore = make_keystore(self.root / "keys")
        self.env = self._service_env(ports) | env
        urls = self.postgres.service_urls()
        self.services = {  # each process: its own database role and its own Kafka principal
            name: Service(name, port, self.logs / f"{name}.log",
                          self.env | self._principal_env(name) | self._keys_env(name)
                          | {f"DAYBREAK_{name.upper()}_DATABASE_URL": urls[f"{name}_database_url"]},
                          serve_args.get(name, []))
            for name, port in ports.items()}
        first = [s for name, s in self.services.items() if name == "identity"]
        for group in (first, [s for s in self.services.values() if s not in first]):
            for service in group:
                service.child.spawn()
            for service in group:
                service.wait_ready()

    def _migrate(self) -> None:
        assert self.postgres is not None
        env = _clean_environ() | {"DAYBREAK_MIGRATIONS_DATABASE_URL": self.postgres.owner_url}
        done = subprocess.run([str(REPO / ".venv" / "bin" / "alembic"), "-c", "alembic.ini",
                               "upgrade", "head"], env=env, cwd=REPO, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"alembic upgrade failed:\n{done.stderr[-3000:]}")

    def _service_env(self, ports: dict[str, int]) -> dict[str, str]:
        assert self.postgres is not None and self.kafka is not None
        notifier, identity = ports.get("notifier", 8003), ports.get("identity", 8005)
        return _clean_environ() | {
            "DAYBREAK_ENV": "test",
            "DAYBREAK_KAFKA_BOOTSTRAP": self.kafka.bootstrap,
            "DAYBREAK_TOPIC_PREFIX": self.topic_prefix,
            # the issuer signs with the test session's keys (tests/support/tokens.py can mint
            # for this stack); the services fetch its JWKS as a deployment would
            "DAYBREAK_IDENTITY_SIGNING_KEYS": SIGNING_KEYS,
            "DAYBREAK_IDENTITY_URL": f"http://127.0.0.1:{identity}",
            "DAYBREAK_JWKS_URL": f"http://127.0.0.1:{identity}/.well-known/jwks.json",
            "DAYBREAK_CHILD_KEY_SECRET": self._secrets["child_key"],
            "DAYBREAK_AUDIT_SIGNING_KEY": generate_keypair().private_key,
            "DAYBREAK_AUDIT_HEADS_FILE": str(self.root / "audit" / "tree-heads.jsonl"),
            "DAYBREAK_SMTP_HOST": "127.0.0.1", "DAYBREAK_SMTP_PORT": str(self.mail.port),
            "DAYBREAK_PORTAL_BASE_URL": f"http://127.0.0.1:{notifier}",
            "DAYBREAK_DISPATCH_INTERVAL_S": "0.2", "DAYBREAK_DELIVERY_BACKOFF_S": "0.5",
            "DAYBREAK_COOKIE_SECURE": "false",
            "DAYBREAK_WEBHOOK_ALLOW_LOOPBACK": "true",  # the chaos run's receiver is local
            # the test session's (tests/conftest.py), so its helpers open what the stack seals;
            # else one of the stack's own, made by identity at its first start
            "DAYBREAK_IDENTITY_TOTP_KEY_FILE": os.environ.get(
                "DAYBREAK_IDENTITY_TOTP_KEY_FILE", str(self.root / "identity-totp.key")),
            "DAYBREAK_METRICS_TOKEN": self._secrets["metrics"],
        }

    @property
    def metrics_auth(self) -> dict[str, str]:
        """The header its services' /metrics answer."""
        return {"Authorization": f"Bearer {self._secrets['metrics']}"}

    def _keys_env(self, name: str) -> dict[str, str]:
        """The child-data keystore, for the services that seal and open child data only."""
        if name not in KEY_HOLDERS or self.keystore is None:
            return {}
        return {"DAYBREAK_KEYSTORE_DIR": str(self.keystore.keystore_dir),
                "DAYBREAK_KEK_FILE": str(self.keystore.kek_file)}

    def _principal_env(self, name: str) -> dict[str, str]:
        assert self.kafka is not None
        return {"DAYBREAK_KAFKA_USERNAME": name,
                "DAYBREAK_KAFKA_PASSWORD": self.kafka.passwords[name]}

    def settings(self) -> Settings:
        """Settings on the stack's database, broker (as admin) and keys (for tests.support
        helpers)."""
        assert self.postgres is not None and self.kafka is not None
        return Settings(env="test", **self.postgres.service_urls(),
                        migrations_database_url=self.postgres.owner_url,
                        kafka_bootstrap=self.kafka.bootstrap, topic_prefix=self.topic_prefix,
                        kafka_username=ADMIN, kafka_password=self.kafka.passwords[ADMIN],
                        child_key_secret=self._secrets["child_key"], cookie_secure=False,
                        **(self.keystore.settings() if self.keystore else {}), **trusting())

    def _part(self, name: str) -> Postgres | Kafka | Service:
        part = {"postgres": self.postgres, "kafka": self.kafka}.get(name) or self.services.get(
            name)
        if part is None:
            raise KeyError(f"no component {name!r} in this stack")
        return part

    def url(self, name: str) -> str:
        """A service's base URL."""
        return self.services[name].url

    def pid(self, name: str) -> int | None:
        """The component's main process id (postmaster, broker JVM, uvicorn) while it runs."""
        return self._part(name).child.pid

    def start(self, name: str) -> None:
        """Start a stopped component on its old port and data, and wait until it is ready."""
        self._part(name).start()

    def wait_ready(self, name: str, timeout_s: float = 90) -> None:
        """Block until the component is ready (or raise with its log's tail)."""
        self._part(name).wait_ready(timeout_s)

    def stop(self, name: str) -> None:
        """Graceful stop: SIGTERM (PostgreSQL: fast shutdown, SIGINT)."""
        self._part(name).stop()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` and wait for the exit; SIGKILL takes every process of the component
        (PostgreSQL: the postmaster and all backends at once, a crash)."""
        self._part(name).kill(sig)

    def restart(self, name: str, *, hard: bool = True) -> None:
        """kill -9 (hard) or stop gracefully, then start and wait until ready."""
        if hard:
            self.kill(name)
        else:
            self.stop(name)
        self.start(name)

    def close(self, *, keep_logs: bool = False) -> Path | None:
        """Kill every process, stop the sink, delete the directory (or all but the logs)."""
        if self._closed:
            return None
        self._closed = True
        for part in [*self.services.values(), self.kafka, self.postgres]:
            if part is not None:
                part.kill(signal.SIGKILL)
        if self._smtp is not None:
            self._smtp.stop()
        for entry in self.root.iterdir() if self.root.exists() else ():
            if not (keep_logs and entry == self.logs):
                shutil.rmtree(entry, ignore_errors=True)
        if keep_logs:
            return self.logs
        shutil.rmtree(self.root, ignore_errors=True)
        return None

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _clean_environ() -> dict[str, str]:
    """This process's environment without DAYBREAK_* (the shared deployment's settings)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DAYBREAK_")}

