"""Throwaway PostgreSQL and Kafka processes for `tests.support.stack`, each one restartable.

Both keep their data directory and ports across restarts, so a crash followed by `start()`
is the real recovery path: WAL replay for PostgreSQL, log recovery for the broker.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

from pydantic import SecretStr

from services.common import dev_tls, kafka_setup
from services.common.kafka import broker_answers
from services.common.kafka_access import ADMIN, BROKER, SERVICES
from services.common.settings import SERVICES as DB_SERVICES
from services.common.settings import KafkaConnection, TopicLayout
from tests.conftest import REPO
from tests.support.ports import free_port
from tests.support.stack_process import Child, children_of, run_in_thread, wait_until

KAFKA_LIBS = REPO / ".daybreak" / "kafka" / "libs"
KAFKA_LOG4J = REPO / "infra" / "kafka" / "log4j2.yaml"
KAFKA_TEMPLATE = REPO / "infra" / "kafka" / "server.properties"
PG_OWNER, PG_LEGACY, PG_DB = "daybreak_owner", "daybreak_app", "daybreak"


class Postgres:
    """A private cluster (initdb) run as the postgres user on 127.0.0.1:`port`."""

    def __init__(self, root: Path, port: int, *, options: dict[str, str] | None = None) -> None:
        self.dir = root / "pg"
        self.port = port
        self.bin = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                               key=lambda p: int(Path(p).parts[-3]))[-1]).parent
        self.owner_password = secrets.token_hex(16)
        self.passwords = {svc: secrets.token_hex(16) for svc in DB_SERVICES}
        opts = {"listen_addresses": "127.0.0.1", "max_connections": "300",
                "unix_socket_permissions": "0700"} | (options or {})
        argv = [str(self.bin / "postgres"), "-D", str(self.dir / "data"), "-p", str(port),
                "-k", str(self.dir)]
        for key, value in opts.items():
            argv += ["-c", f"{key}={value}"]
        self.child = Child("postgres", argv, root / "logs" / "postgres.log",
                           env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"},
                           cwd=self.dir, user="postgres")

    def url(self, role: str, password: str) -> str:
        """A SQLAlchemy asyncpg URL for a role on the stack's database."""
        return f"postgresql+asyncpg://{role}:{password}@127.0.0.1:{self.port}/{PG_DB}"

    @property
    def owner_url(self) -> str:
        """The owner role (migrations, test bookkeeping)."""
        return self.url(PG_OWNER, self.owner_password)

    def service_urls(self) -> dict[str, str]:
        """Each service's own role, as the `<service>_database_url` settings."""
        return {f"{svc}_database_url": self.url(f"daybreak_{svc}", pw)
                for svc, pw in self.passwords.items()}

    def init(self) -> None:
        """initdb into a fresh directory owned by postgres, start, create roles and database."""
        self.dir.mkdir(mode=0o700)
        shutil.chown(self.dir, "postgres", "postgres")
        subprocess.run([str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
                        "--auth-local=peer", "--auth-host=scram-sha-256", "--no-locale",
                        "-E", "UTF8", "--no-sync"], check=True, capture_output=True,
                       cwd=self.dir, user="postgres", group="postgres", extra_groups=[])
        self.start()
        self.psql(self._objects_sql())

    def _objects_sql(self) -> str:
        # as scripts/infra.sh pg_ensure_objects: the passwords travel on stdin, not argv
        return f"""
\\set owner_pw '{self.owner_password}'
SET password_encryption = 'scram-sha-256';
CREATE ROLE {PG_OWNER} WITH LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD :'owner_pw';
CREATE ROLE {PG_LEGACY} WITH NOLOGIN;
CREATE DATABASE {PG_DB} OWNER {PG_OWNER};
REVOKE ALL ON DATABASE {PG_DB} FROM PUBLIC;
GRANT {PG_LEGACY} TO {PG_OWNER};
""" + "".join(f"""\\set pw '{pw}'
CREATE ROLE daybreak_{svc} WITH LOGIN NOCREATEDB NOSUPERUSER NOCREATEROLE PASSWORD :'pw';
GRANT CONNECT, TEMPORARY ON DATABASE {PG_DB} TO daybreak_{svc};
GRANT daybreak_{svc} TO {PG_OWNER};
""" for svc, pw in self.passwords.items())

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the private socket; returns psql's output."""
        done = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.dir), "-p", str(self.port), "-d", database],
            input=sql.encode(), capture_output=True, cwd=self.dir, user="postgres",
            group="postgres", extra_groups=[], check=False)
        if done.returncode != 0:
            raise RuntimeError(f"psql failed: {done.stderr.decode(errors='replace')}")
        return done.stdout.decode()

    def start(self, *, timeout_s: float = 90) -> None:
        """Start on the same port and data (crash recovery after `kill`); wait until ready."""
        for attempt in range(5):
            self.child.spawn()
            try:
                self.wait_ready(timeout_s)
                return
            except RuntimeError:
                # a backend of the killed postmaster may still hold the shared memory
                if attempt == 4 or "shared memory" not in self.child.tail(5):
                    raise
                time.sleep(1)

    def wait_ready(self, timeout_s: float = 90) -> None:
        """Until pg_isready says it accepts connections (recovery finished)."""
        isready = [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port)]
        wait_until(lambda: subprocess.run(isready, check=False).returncode == 0, self.child,
                   timeout_s=timeout_s, what="accepting connections")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions ended, checkpoint written."""
        self.child.halt(signal.SIGINT, timeout_s=60)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """SIGKILL crashes the whole server: the postmaster and every backend at once (each
        backend is its own process group); other signals go to the postmaster alone
        (SIGQUIT: immediate shutdown; either way the next start runs crash recovery)."""
        backends = children_of(self.child.pid) if sig == signal.SIGKILL else []
        self.child.signal(sig)
        for pid in backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.child.halt(sig, timeout_s=60)


class Kafka:
    """A single-node KRaft broker (combined mode) as scripts/infra.sh runs it, on free ports,
    with SASL/SCRAM, the ACLs and a password per principal (`connection(name)`), and the
    SASL_SSL listener on `tls_port` with a CA of its own (`connection(name, tls=True)`)."""

    def __init__(self, root: Path, port: int, controller_port: int,
                 tls_port: int | None = None) -> None:
        if not (KAFKA_LIBS / ".stamp").exists():
            raise RuntimeError(f"no Kafka jars in {KAFKA_LIBS}: run scripts/infra.sh up once")
        self.dir = root / "kafka"
        self.port = port
        self.controller_port = controller_port
        self.tls_port = tls_port or free_port()
        self.tls = dev_tls.paths(self.dir / "tls")
        self.props = self.dir / "server.properties"
        self.passwords = {name: secrets.token_hex(16)
                          for name in (ADMIN, BROKER, *(s.name for s in SERVICES))}
        logs = root / "logs"
        self.java = ["java", f"-Dkafka.logs.dir={logs / 'kafka'}",
                     f"-Dlog4j2.configurationFile={KAFKA_LOG4J}", "-cp", f"{KAFKA_LIBS}/*"]
        argv = ["java", "-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
                "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                f"-Ddaybreak.stack={root}", *self.java[1:], "kafka.Kafka", str(self.props)]
        self.child = Child("kafka", argv, logs / "kafka.log", env=dict(os.environ))

    @property
    def bootstrap(self) -> str:
        """host:port for clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def tls_bootstrap(self) -> str:
        """host:port of the SASL_SSL listener."""
        return f"127.0.0.1:{self.tls_port}"

    def connection(self, principal: str = ADMIN, *, tls: bool = False) -> KafkaConnection:
        """The broker as one principal (admin by default), over TLS if `tls`."""
        if tls:
            return KafkaConnection(self.tls_bootstrap, security_protocol="SASL_SSL",
                                   ca_file=str(self.tls.ca_file), username=principal,
                                   password=SecretStr(self.passwords[principal]))
        return KafkaConnection(self.bootstrap, username=principal,
                               password=SecretStr(self.passwords[principal]))

    def init(self) -> None:
        """Write server.properties, format the storage with admin and broker, start."""
        (self.dir / "data").mkdir(parents=True)
        dev_tls.ensure_broker_tls(self.tls.ca_file.parent)
        self.props.touch(mode=0o600)  # it holds the broker's password
        self.props.write_text(_server_properties(
            self.dir / "data", self.port, self.controller_port, self.passwords[BROKER],
            tls_port=self.tls_port, keystore=self.tls.keystore_file))
        scram = [arg for name in (ADMIN, BROKER) for arg in
                 ("--add-scram", kafka_setup.scram_format_argument(name, self.passwords[name]))]
        subprocess.run([*self.java, "kafka.tools.StorageTool", "format", "--standalone",
                        "-t", _cluster_id(), "-c", str(self.props), *scram],
                       check=True, capture_output=True, env=self.child.env)
        self.start()

    def setup(self, *, prefix: str, layout: TopicLayout, tls: bool = False) -> None:
        """The services' users, the topics and the ACLs, as scripts/infra.sh sets them up."""
        services = {s.name: self.passwords[s.name] for s in SERVICES}
        run_in_thread(lambda: kafka_setup.apply(self.connection(tls=tls), prefix=prefix,
                                                layout=layout, passwords=services))

    def start(self, *, timeout_s: float = 120) -> None:
        """Start on the same ports and data; wait until it answers metadata requests."""
        self.child.spawn()
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 120) -> None:
        """Until a metadata request is answered (the services' own readiness check)."""
        def answers() -> bool:
            # the port first: aiokafka logs every refused connection
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            run_in_thread(lambda: broker_answers(self.connection()))
            return True
        wait_until(answers, self.child, timeout_s=timeout_s, what="answering")

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM): controlled shutdown, clean logs."""
        self.child.halt(signal.SIGTERM, timeout_s=60)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the broker and wait for it to exit (SIGKILL: log recovery on the next start)."""
        self.child.halt(sig, timeout_s=60)


def _cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64, as `kafka-storage random-uuid`."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def _server_properties(data: Path, port: int, controller_port: int, broker_password: str, *,
                       tls_port: int, keystore: Path) -> str:
    # the same broker settings as scripts/infra.sh, on this stack's ports and data directory
    return (KAFKA_TEMPLATE.read_text().replace("@KAFKA_PORT@", str(port))
            .replace("@CONTROLLER_PORT@", str(controller_port))
            .replace("@KAFKA_TLS_PORT@", str(tls_port))
            .replace("@KAFKA_TLS_KEYSTORE@", str(keystore))
            .replace("@KAFKA_DATA@", str(data))
            .replace("@BROKER_PASSWORD@", broker_password))
