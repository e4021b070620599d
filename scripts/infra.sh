#!/usr/bin/env bash
# Local PostgreSQL and single-node Kafka (KRaft) for development, tests and CI.
#
#   scripts/infra.sh up | down | status | reset
#   scripts/infra.sh kafka-start | kafka-stop | pg-start | pg-stop
#
# All state lives in $REPO/.daybreak (git-ignored); `. .daybreak/env` gives the
# DAYBREAK_* settings the services and tests read. Safe to run again at any time.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$REPO/.daybreak"
ENV_FILE="$STATE/env"
KAFKA_HOME="$STATE/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs"
KAFKA_DATA="$KAFKA_HOME/data"
KAFKA_LOGS="$KAFKA_HOME/logs"
KAFKA_PROPS="$KAFKA_HOME/server.properties"
KAFKA_PID="$STATE/kafka.pid"
KAFKA_POM="$REPO/infra/kafka/pom.xml"
KAFKA_LOG4J="$REPO/infra/kafka/log4j2.yaml"
KAFKA_TEMPLATE="$REPO/infra/kafka/server.properties"
# the SASL_SSL listener's key and certificate, and the CA clients trust (DAYBREAK_KAFKA_CA_FILE)
KAFKA_TLS_DIR="$KAFKA_HOME/tls"
# Newest first; the first that Maven resolves is used (kafka-tools 4.4.0 is not needed).
KAFKA_VERSIONS="${DAYBREAK_KAFKA_VERSION:-4.4.0 4.3.1}"
# Overridable (or set in .daybreak/env) so a second checkout can run its own broker.
KAFKA_PORT="${DAYBREAK_KAFKA_PORT:-}"
CONTROLLER_PORT="${DAYBREAK_KAFKA_CONTROLLER_PORT:-}"
KAFKA_TLS_PORT="${DAYBREAK_KAFKA_TLS_PORT:-}"
KAFKA_SASL_MARK="$KAFKA_DATA/.daybreak-sasl"  # formatted with the SCRAM users: not PLAINTEXT
# One SCRAM principal each (services/common/kafka_access.py); broker is the broker itself.
KAFKA_PRINCIPALS="ADMIN BROKER INGEST MATCHER NOTIFIER AUDIT IDENTITY WITNESS"
KAFKA_START_TIMEOUT=90
KAFKA_STOP_TIMEOUT=30
PG_PORT=5432
PG_DB=daybreak
PG_OWNER=daybreak_owner
PG_LEGACY=daybreak_app         # the shared role of old revisions: kept, NOLOGIN, granted nothing
DB_SERVICES=(ingest matcher notifier audit identity)  # each connects as daybreak_<service>
PG_MARK="$STATE/pg.started"      # "<version> <cluster>": we started it, so `down` stops it
PG_FOREIGN="$STATE/pg.foreign"   # pg-stop stopped a cluster we did not start
APT_UPDATED=0

log() { printf 'infra: %s\n' "$*"; }
die() { printf 'infra: error: %s\n' "$*" >&2; exit 1; }

usage() {
  cat >&2 <<'EOF'
usage: scripts/infra.sh up|down|status|reset|kafka-start|kafka-stop|pg-start|pg-stop
EOF
  exit 2
}

# ---------------------------------------------------------------- helpers

apt_install() {
  [[ $(id -u) -eq 0 ]] || die "need root to install $*"
  if [[ $APT_UPDATED -eq 0 ]]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null
    APT_UPDATED=1
  fi
  log "installing $*"
  # 9>&-: a daemon the package starts must not inherit (and hold) our lock.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    </dev/null >/dev/null 9>&-
}

random_hex() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

env_get() {  # a value from the env file, empty when it (or the file, on a fresh checkout) is missing
  [[ -f $ENV_FILE ]] || return 0
  sed -n "s/^export $1=//p" "$ENV_FILE" | tail -n 1 | tr -d "'\""
}

resolve_ports() {
  [[ -n $KAFKA_PORT ]] || KAFKA_PORT="$(env_get DAYBREAK_KAFKA_PORT)"
  [[ -n $CONTROLLER_PORT ]] || CONTROLLER_PORT="$(env_get DAYBREAK_KAFKA_CONTROLLER_PORT)"
  [[ -n $KAFKA_TLS_PORT ]] || KAFKA_TLS_PORT="$(env_get DAYBREAK_KAFKA_TLS_PORT)"
  KAFKA_PORT="${KAFKA_PORT:-9092}"
  CONTROLLER_PORT="${CONTROLLER_PORT:-9093}"
  KAFKA_TLS_PORT="${KAFKA_TLS_PORT:-9094}"
}

# Run a command with .daybreak/env loaded (as the admin principal), in the repo.
with_env() {
  (
    cd "$REPO"
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    "$@"
  )
}

venv_python() {
  [[ -x $REPO/.venv/bin/python ]] || die "no .venv: run make venv first"
  printf '%s' "$REPO/.venv/bin/python"
}

url_password() {
  local url="$1"
  [[ $url =~ ^[^:]+://[^:]+:([A-Za-z0-9._~-]+)@ ]] \
    || die "cannot read a plain [A-Za-z0-9._~-] password from a URL in $ENV_FILE"
  printf '%s' "${BASH_REMATCH[1]}"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Alive and not a zombie (nothing may reap a broker whose parent shell has exited).
pid_alive() {
  [[ -n ${1:-} && -r /proc/$1/stat ]] || return 1
  [[ $(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) != Z ]]
}

# ---------------------------------------------------------------- secrets

# The KEK as `daybreak keys init` makes it: 32 random bytes, 0600, never regenerated (a new
# one would leave every sealed value unreadable).
ensure_kek() {
  local kek store
  kek="$(env_get DAYBREAK_KEK_FILE)" store="$(env_get DAYBREAK_KEYSTORE_DIR)"
  [[ -n $kek && -n $store ]] || return 0
  mkdir -p "$store" "$(dirname "$kek")"
  chmod 700 "$store" "$(dirname "$kek")"
  if [[ ! -f $kek ]]; then
    (umask 077 && head -c 32 /dev/urandom >"$kek")
    log "wrote the child-data key-encryption key to ${kek#"$REPO"/}"
  fi
}

ensure_env_file() {
  mkdir -p "$STATE"
  chmod 700 "$STATE"
  local line added=0 owner_pw svc upper
  touch "$ENV_FILE"
  chmod 600 "$ENV_FILE"
  # Add only what is missing: secrets already written are never regenerated.
  add_env() {
    if ! grep -q "^export $1=" "$ENV_FILE"; then
      printf 'export %s=%s\n' "$1" "$2" >>"$ENV_FILE"
      added=1
    fi
  }
  owner_pw="$(random_hex)"
  add_env DAYBREAK_ENV development
  # a local stack may post webhooks to receivers on this machine (never set in production)
  add_env DAYBREAK_WEBHOOK_ALLOW_LOOPBACK true
  add_env DAYBREAK_KAFKA_BOOTSTRAP "127.0.0.1:$KAFKA_PORT"
  # the broker's SASL_SSL listener: DAYBREAK_KAFKA_BOOTSTRAP=127.0.0.1:<this port> with
  # DAYBREAK_KAFKA_SECURITY_PROTOCOL=SASL_SSL reaches it; the CA is used only then
  add_env DAYBREAK_KAFKA_TLS_PORT "$KAFKA_TLS_PORT"
  add_env DAYBREAK_KAFKA_CA_FILE "$KAFKA_TLS_DIR/ca.pem"
  for svc in "${DB_SERVICES[@]}"; do
    upper="${svc^^}"
    add_env "DAYBREAK_${upper}_DATABASE_URL" \
      "postgresql+asyncpg://daybreak_$svc:$(random_hex)@127.0.0.1:$PG_PORT/$PG_DB"
  done
  add_env DAYBREAK_MIGRATIONS_DATABASE_URL \
    "postgresql+asyncpg://$PG_OWNER:$owner_pw@127.0.0.1:$PG_PORT/$PG_DB"
  # the identity service's token signing keys, active first (`daybreak keys rotate`)
  add_env DAYBREAK_IDENTITY_SIGNING_KEYS "'[\"$(head -c 32 /dev/urandom | base64)\"]'"
  add_env DAYBREAK_CHILD_KEY_SECRET "$(random_hex)"
  add_env DAYBREAK_AUDIT_SIGNING_KEY "$(head -c 32 /dev/urandom | base64)"
  # child data's envelope encryption: the wrapped data keys and the key-encryption key, both
  # outside the database (scripts/services.sh gives them to ingest, matcher, notifier only)
  add_env DAYBREAK_KEYSTORE_DIR "$STATE/keys/store"
  add_env DAYBREAK_KEK_FILE "$STATE/keys/kek"
  # the AES-GCM key that seals TOTP secrets in identity.users: a file, never the database
  # (as `daybreak keys totp-init` makes it: 32 random bytes in base64, mode 0600)
  local totp_key="$STATE/identity-totp.key"
  if [[ ! -e $totp_key ]]; then
    (umask 077 && head -c 32 /dev/urandom | base64 >"$totp_key")
    added=1
  fi
  chmod 600 "$totp_key"
  add_env DAYBREAK_IDENTITY_TOTP_KEY_FILE "$totp_key"
  # Prometheus sends it as a bearer token: /metrics answers nobody else
  add_env DAYBREAK_METRICS_TOKEN "$(random_hex)"
  local principal
  for principal in $KAFKA_PRINCIPALS; do
    add_env "DAYBREAK_${principal}_KAFKA_PASSWORD" "$(random_hex)"
  done
  # tests and CLIs connect as admin; each service gets its own (scripts/services.sh)
  add_env DAYBREAK_KAFKA_USERNAME admin
  add_env DAYBREAK_KAFKA_PASSWORD "$(env_get DAYBREAK_ADMIN_KAFKA_PASSWORD)"
  [[ $added -eq 1 ]] && log "wrote secrets to ${ENV_FILE#"$REPO"/}"
  ensure_kek
  url_password "$(env_get DAYBREAK_MIGRATIONS_DATABASE_URL)" >/dev/null
  for svc in "${DB_SERVICES[@]}"; do
    url_password "$(env_get "DAYBREAK_${svc^^}_DATABASE_URL")" >/dev/null
  done
}

# ---------------------------------------------------------------- PostgreSQL

PG_VER=""
PG_CLUSTER=""

pg_binaries_present() {
  command -v pg_ctlcluster >/dev/null && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

pg_status() { pg_lsclusters -h | awk -v v="$PG_VER" -v c="$PG_CLUSTER" '$1==v && $2==c {print $4}'; }

pg_select_cluster() {
  local installed_now=0 ver
  if ! pg_binaries_present; then
    apt_install postgresql
    installed_now=1
  fi
  # Prefer a cluster already on our port (running first), else any cluster called main.
  read -r PG_VER PG_CLUSTER < <(pg_lsclusters -h | sort -k4,4r -k1,1nr \
    | awk -v p="$PG_PORT" '$3==p {print $1, $2; exit}') || true
  if [[ -z $PG_VER ]]; then
    read -r PG_VER PG_CLUSTER < <(pg_lsclusters -h | sort -k1,1nr \
      | awk '$2=="main" {print $1, $2; exit}') || true
  fi
  if [[ -z $PG_VER ]]; then
    ver="$(printf '%s\n' /usr/lib/postgresql/*/bin/postgres | cut -d/ -f5 | sort -V | tail -n 1)"
    log "creating PostgreSQL $ver cluster main"
    pg_createcluster --port "$PG_PORT" "$ver" main >/dev/null
    PG_VER="$ver"
    PG_CLUSTER=main
  fi
  local port
  port="$(pg_lsclusters -h | awk -v v="$PG_VER" -v c="$PG_CLUSTER" '$1==v && $2==c {print $3}')"
  if [[ $port != "$PG_PORT" ]]; then
    [[ $(pg_status) == down ]] \
      || die "PostgreSQL $PG_VER/$PG_CLUSTER runs on port $port, not $PG_PORT; stop it first"
    log "moving PostgreSQL $PG_VER/$PG_CLUSTER to port $PG_PORT"
    pg_conftool "$PG_VER" "$PG_CLUSTER" set port "$PG_PORT"
  fi
  # A fresh install that the package already started counts as ours to stop.
  if [[ $installed_now -eq 1 && $(pg_status) == online ]]; then
    printf '%s %s\n' "$PG_VER" "$PG_CLUSTER" >"$PG_MARK"
  fi
}

pg_ensure_hba() {
  local hba
  hba="$(pg_conftool -s "$PG_VER" "$PG_CLUSTER" show hba_file 2>/dev/null \
    || echo "/etc/postgresql/$PG_VER/$PG_CLUSTER/pg_hba.conf")"
  hba="${hba//\'/}"
  if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+(scram-sha-256|md5)' "$hba"; then
    log "allowing password logins from 127.0.0.1 in $hba"
    # First match wins in pg_hba.conf, so the rule goes before every other line.
    sed -i '1i host    all    all    127.0.0.1/32    scram-sha-256' "$hba"
    if [[ $(pg_status) == online ]]; then
      pg_ctlcluster "$PG_VER" "$PG_CLUSTER" reload
    fi
  fi
}

pg_start() {
  pg_select_cluster
  pg_ensure_hba
  if [[ $(pg_status) == online ]]; then
    log "PostgreSQL $PG_VER/$PG_CLUSTER already running on 127.0.0.1:$PG_PORT"
  else
    log "starting PostgreSQL $PG_VER/$PG_CLUSTER"
    pg_ctlcluster "$PG_VER" "$PG_CLUSTER" start 9>&-
    if [[ -f $PG_FOREIGN ]]; then
      rm -f "$PG_FOREIGN"
    else
      printf '%s %s\n' "$PG_VER" "$PG_CLUSTER" >"$PG_MARK"
    fi
  fi
  local _
  for _ in $(seq 1 30); do
    pg_psql postgres -Atc 'SELECT 1' >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "PostgreSQL did not accept connections; see /var/log/postgresql/postgresql-$PG_VER-$PG_CLUSTER.log"
}

pg_stop() {
  local only_ours="$1"
  if ! command -v pg_lsclusters >/dev/null; then return 0; fi
  if [[ -f $PG_MARK ]]; then
    read -r PG_VER PG_CLUSTER <"$PG_MARK"
  elif [[ $only_ours == yes ]]; then
    log "PostgreSQL was not started by this script; leaving it running"
    return 0
  else
    pg_select_cluster
  fi
  if [[ $(pg_status) == online ]]; then
    log "stopping PostgreSQL $PG_VER/$PG_CLUSTER"
    pg_ctlcluster "$PG_VER" "$PG_CLUSTER" stop
    [[ -f $PG_MARK ]] || touch "$PG_FOREIGN"
  fi
  rm -f "$PG_MARK"
}

pg_psql() {
  local db="$1"
  shift
  (cd / && runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d "$db" "$@")
}

pg_ensure_objects() {
  local owner_pw svc pw roles_sql="" logins=()
  owner_pw="$(url_password "$(env_get DAYBREAK_MIGRATIONS_DATABASE_URL)")"
  logins+=("$PG_OWNER:$owner_pw")
  for svc in "${DB_SERVICES[@]}"; do
    pw="$(url_password "$(env_get "DAYBREAK_${svc^^}_DATABASE_URL")")"
    logins+=("daybreak_$svc:$pw")
    roles_sql+="\\set pw '$pw'
SELECT 'CREATE ROLE daybreak_$svc' WHERE NOT EXISTS
  (SELECT FROM pg_roles WHERE rolname = 'daybreak_$svc') \\gexec
ALTER ROLE daybreak_$svc WITH LOGIN NOCREATEDB NOSUPERUSER NOCREATEROLE PASSWORD :'pw';
GRANT CONNECT, TEMPORARY ON DATABASE $PG_DB TO daybreak_$svc;
-- lets the owner end the role's leftover sessions when tests drop their databases
GRANT daybreak_$svc TO $PG_OWNER;
"
  done
  # Passwords travel on stdin, not argv, so `ps` never shows them.
  pg_psql postgres <<SQL
\set owner_pw '$owner_pw'
SELECT 'CREATE ROLE $PG_OWNER' WHERE NOT EXISTS
  (SELECT FROM pg_roles WHERE rolname = '$PG_OWNER') \gexec
SELECT 'CREATE ROLE $PG_LEGACY' WHERE NOT EXISTS
  (SELECT FROM pg_roles WHERE rolname = '$PG_LEGACY') \gexec
SET password_encryption = 'scram-sha-256';
SET client_min_messages = warning;
ALTER ROLE $PG_OWNER WITH LOGIN CREATEDB NOSUPERUSER NOCREATEROLE PASSWORD :'owner_pw';
-- revisions 0001-0005 granted to the shared role; 0006 revokes it all; it may not log in
ALTER ROLE $PG_LEGACY WITH NOLOGIN NOCREATEDB NOSUPERUSER NOCREATEROLE PASSWORD NULL;
SELECT 'CREATE DATABASE $PG_DB OWNER $PG_OWNER' WHERE NOT EXISTS
  (SELECT FROM pg_database WHERE datname = '$PG_DB') \gexec
ALTER DATABASE $PG_DB OWNER TO $PG_OWNER;
REVOKE ALL ON DATABASE $PG_DB FROM PUBLIC;
REVOKE ALL ON DATABASE $PG_DB FROM $PG_LEGACY;
GRANT $PG_LEGACY TO $PG_OWNER;
$roles_sql
SQL
  local login
  for login in "${logins[@]}"; do
    pw="${login#*:}"
    PGPASSWORD="$pw" psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U "${login%%:*}" -d "$PG_DB" \
      -Atc 'SELECT 1' >/dev/null </dev/null \
      || die "cannot log in as ${login%%:*} over 127.0.0.1:$PG_PORT (pg_hba.conf, listen_addresses?)"
  done
  log "PostgreSQL ready: database $PG_DB, roles $PG_OWNER (owner, CREATEDB) and one per service (${DB_SERVICES[*]/#/daybreak_})"
}

pg_drop_database() {
  log "dropping database $PG_DB"
  pg_psql postgres -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)"
}

# ---------------------------------------------------------------- Kafka

# The recorded broker pid, only while it still names our broker (pids get reused).
kafka_pid() {
  local pid
  pid="$(cat "$KAFKA_PID" 2>/dev/null || true)"
  if [[ -n $pid ]] && tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka'; then
    echo "$pid"
  fi
}

kafka_java() {
  java -Dkafka.logs.dir="$KAFKA_LOGS" -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
    -cp "$KAFKA_LIBS/*" "$@"
}

kafka_ensure_tools() {
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
}

kafka_ensure_jars() {
  local stamp ver want
  want="$(sha256sum "$KAFKA_POM" | cut -c1-16)"
  if [[ -f $KAFKA_LIBS/.stamp ]]; then
    read -r ver stamp <"$KAFKA_LIBS/.stamp"
    if [[ $stamp == "$want" && " $KAFKA_VERSIONS " == *" $ver "* ]]; then
      KAFKA_VERSION="$ver"
      return 0
    fi
  fi
  mkdir -p "$KAFKA_HOME"
  for ver in $KAFKA_VERSIONS; do
    log "fetching Kafka $ver jars with Maven (one-off, cached in ${KAFKA_LIBS#"$REPO"/})"
    rm -rf "$KAFKA_LIBS.tmp"
    if mvn -q -B -Dstyle.color=never -f "$KAFKA_POM" -Dkafka.version="$ver" \
      dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS.tmp" \
      >"$KAFKA_HOME/mvn.log" 2>&1 </dev/null; then
      printf '%s %s\n' "$ver" "$want" >"$KAFKA_LIBS.tmp/.stamp"
      rm -rf "$KAFKA_LIBS"
      mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
      KAFKA_VERSION="$ver"
      return 0
    fi
    log "Kafka $ver did not resolve (see ${KAFKA_HOME#"$REPO"/}/mvn.log)"
  done
  tail -n 20 "$KAFKA_HOME/mvn.log" >&2
  die "could not fetch any Kafka version of: $KAFKA_VERSIONS"
}

kafka_write_config() {
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  local text broker_pw
  broker_pw="$(env_get DAYBREAK_BROKER_KAFKA_PASSWORD)"
  [[ -n $broker_pw ]] || die "no DAYBREAK_BROKER_KAFKA_PASSWORD in $ENV_FILE"
  # in bash, not sed: the broker's password must not show up in `ps`
  text="$(<"$KAFKA_TEMPLATE")"
  text="${text//@KAFKA_PORT@/$KAFKA_PORT}"
  text="${text//@CONTROLLER_PORT@/$CONTROLLER_PORT}"
  text="${text//@KAFKA_TLS_PORT@/$KAFKA_TLS_PORT}"
  text="${text//@KAFKA_TLS_KEYSTORE@/$KAFKA_TLS_DIR/broker.pem}"
  text="${text//@KAFKA_DATA@/$KAFKA_DATA}"
  text="${text//@BROKER_PASSWORD@/$broker_pw}"
  (umask 077 && printf '%s\n' "$text" >"$KAFKA_PROPS.tmp")
  mv "$KAFKA_PROPS.tmp" "$KAFKA_PROPS"
}

kafka_ensure_formatted() {
  if [[ -f $KAFKA_DATA/meta.properties && ! -f $KAFKA_SASL_MARK ]]; then
    # a PLAINTEXT broker's data has no SCRAM users, and none can be added without one
    log "Kafka data predates SASL/SCRAM; wiping it (local data only) and formatting again"
    rm -rf "$KAFKA_DATA"
    mkdir -p "$KAFKA_DATA"
  fi
  [[ -f $KAFKA_DATA/meta.properties ]] && return 0
  local cluster_id py
  local -a scram
  py="$(venv_python)"
  # admin and broker as salted SCRAM credentials; the services' users come with setup
  mapfile -t scram < <(with_env "$py" -m services.common.kafka_setup scram-args)
  [[ ${#scram[@]} -eq 4 ]] || die "could not derive the SCRAM credentials (see above)"
  if [[ ! -s $KAFKA_HOME/cluster-id ]]; then
    kafka_java kafka.tools.StorageTool random-uuid >"$KAFKA_HOME/cluster-id"
  fi
  cluster_id="$(cat "$KAFKA_HOME/cluster-id")"
  log "formatting Kafka storage (cluster $cluster_id)"
  kafka_java kafka.tools.StorageTool format --standalone -t "$cluster_id" -c "$KAFKA_PROPS" \
    "${scram[@]}" >"$KAFKA_LOGS/format.log" 2>&1 \
    || { cat "$KAFKA_LOGS/format.log" >&2; die "kafka storage format failed"; }
  touch "$KAFKA_SASL_MARK"
}

# The SASL_SSL listener's key and certificate (127.0.0.1, localhost) and the CA that signs it
# (services/common/dev_tls.py, mode 0600 under .daybreak/kafka/tls): made once, made again
# when missing, within 30 days of expiry or naming other hosts. Prints "renewed" or "kept".
kafka_ensure_tls() {
  local py="$REPO/.venv/bin/python"
  [[ -x $py ]] || py="$(command -v python3 || true)"
  [[ -n $py ]] && "$py" -c 'import cryptography' 2>/dev/null \
    || die "no Python with the cryptography package to make the Kafka TLS certificate: run make venv first"
  (cd "$REPO" && "$py" -m services.common.dev_tls "$KAFKA_TLS_DIR") \
    || die "could not make the Kafka TLS certificate in ${KAFKA_TLS_DIR#"$REPO"/}"
}

# Users, topics and ACLs (services/common/kafka_setup.py), as admin; safe to repeat.
kafka_setup() {
  local py
  py="$(venv_python)"
  with_env "$py" -m services.common.kafka_setup apply \
    || die "kafka setup (SCRAM users, topics, ACLs) failed"
}

# A java process on our ports that another checkout's infra.sh started.
kafka_foreign_pid() {
  local port pid
  for port in "$KAFKA_PORT" "$CONTROLLER_PORT" "$KAFKA_TLS_PORT"; do
    pid="$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)"
    [[ -n $pid ]] || continue
    if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'daybreak.infra=yes'; then
      echo "$pid"
      return 0
    fi
    die "127.0.0.1:$port is taken by pid $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-80))"
  done
}

# Exit 0 once the broker serves metadata; exit 1 if the process dies; 2 on timeout.
kafka_wait_ready() {
  local pid="$1" py
  py="$REPO/.venv/bin/python"
  [[ -x $py ]] && "$py" -c 'import aiokafka' 2>/dev/null || py="$(command -v python3 || true)"
  if [[ -z $py ]]; then
    local _
    for _ in $(seq 1 "$KAFKA_START_TIMEOUT"); do
      pid_alive "$pid" || return 1
      port_open "$KAFKA_PORT" && return 0
      sleep 1
    done
    return 2
  fi
  # the admin's password in the environment, not in argv
  DAYBREAK_KAFKA_PASSWORD="$(env_get DAYBREAK_ADMIN_KAFKA_PASSWORD)" \
    "$py" - "127.0.0.1:$KAFKA_PORT" "$pid" "$KAFKA_START_TIMEOUT" <<'PY'
import asyncio, logging, os, socket, struct, sys, time

bootstrap, pid, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])

def alive() -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False

async def aiokafka_ready() -> bool:
    from aiokafka.admin import AIOKafkaAdminClient
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=3000,
        security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-512",
        sasl_plain_username="admin", sasl_plain_password=os.environ["DAYBREAK_KAFKA_PASSWORD"])
    try:
        await admin.start()
        cluster = await admin.describe_cluster()
        return bool(cluster.get("brokers"))
    finally:
        await admin.close()

def raw_ready() -> bool:
    # ApiVersions v0: answered only once the broker handles requests.
    host, port = bootstrap.split(":")
    with socket.create_connection((host, int(port)), timeout=3) as sock:
        client = b"infra"
        body = struct.pack(">hhih", 18, 0, 1, len(client)) + client
        sock.sendall(struct.pack(">i", len(body)) + body)
        head = sock.recv(10)
        return len(head) >= 10 and struct.unpack(">h", head[8:10])[0] == 0

def port_open() -> bool:
    host, port = bootstrap.split(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except OSError:
        return False

try:
    import aiokafka  # noqa: F401
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    check = lambda: port_open() and asyncio.run(aiokafka_ready())
except ImportError:
    check = raw_ready

deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    if not alive():
        sys.exit(1)
    try:
        if check():
            sys.exit(0)
    except Exception:
        pass
    time.sleep(1)
sys.exit(2)
PY
}

kafka_start() {
  local pid foreign rc=0 tls
  mkdir -p "$STATE"
  tls="$(kafka_ensure_tls)"
  pid="$(kafka_pid)"
  if pid_alive "$pid" && ! grep -q '^sasl.enabled.mechanisms=' "$KAFKA_PROPS" 2>/dev/null; then
    log "Kafka (pid $pid) runs the old PLAINTEXT configuration; restarting it with SASL"
    kafka_terminate "$pid"
    pid=""
  fi
  # a broker keeps the certificate it started with; one without the listener never has one
  if pid_alive "$pid" && { [[ $tls == renewed ]] \
    || ! grep -q "^listeners=.*TLS://127.0.0.1:$KAFKA_TLS_PORT," "$KAFKA_PROPS" 2>/dev/null; }; then
    log "Kafka (pid $pid) lacks the SASL_SSL listener or its new certificate; restarting it"
    kafka_terminate "$pid"
    pid=""
  fi
  if pid_alive "$pid" && port_open "$KAFKA_PORT"; then
    log "Kafka already running (pid $pid) on 127.0.0.1:$KAFKA_PORT"
    return 0
  fi
  if pid_alive "$pid"; then
    log "Kafka (pid $pid) is still starting; waiting"
  else
    foreign="$(kafka_foreign_pid)"
    if [[ -n $foreign ]]; then
      log "stopping Kafka pid $foreign started from another checkout"
      kafka_terminate "$foreign"
    fi
    kafka_ensure_tools
    kafka_ensure_jars
    kafka_write_config
    kafka_ensure_formatted
    log "starting Kafka $KAFKA_VERSION (KRaft, single node) on 127.0.0.1:$KAFKA_PORT (SASL_SSL on $KAFKA_TLS_PORT)"
    # setsid: the broker outlives the shell (and CI step) that started it.
    # shellcheck disable=SC2016  # $$ and $@ belong to the inner bash
    setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$KAFKA_PID" \
      java -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true -Ddaybreak.infra=yes \
      -Dkafka.logs.dir="$KAFKA_LOGS" -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_PROPS" \
      </dev/null >>"$KAFKA_LOGS/stdout.log" 2>&1 9>&- &
    local _
    for _ in $(seq 1 50); do
      pid="$(kafka_pid)"
      [[ -n $pid ]] && break
      sleep 0.1
    done
    [[ -n $pid ]] || pid=-1
  fi
  kafka_wait_ready "$pid" || rc=$?
  if [[ $rc -ne 0 ]]; then
    # stdout.log holds the broker's warnings and errors only: the useful part.
    printf -- '--- %s (tail; full log: server.log)\n' "${KAFKA_LOGS#"$REPO"/}/stdout.log" >&2
    tail -n 40 "$KAFKA_LOGS/stdout.log" >&2 2>/dev/null || true
    [[ $rc -eq 1 ]] && die "Kafka exited during start-up"
    die "Kafka did not answer on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT}s"
  fi
  port_open "$KAFKA_TLS_PORT" \
    || die "Kafka answers on $KAFKA_PORT but its SASL_SSL listener is not on $KAFKA_TLS_PORT"
  log "Kafka ready (pid $pid); SASL_SSL on 127.0.0.1:$KAFKA_TLS_PORT, CA ${KAFKA_TLS_DIR#"$REPO"/}/ca.pem"
}

kafka_terminate() {
  local pid="$1" _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 $((KAFKA_STOP_TIMEOUT * 2))); do
    pid_alive "$pid" || return 0
    sleep 0.5
  done
  log "Kafka pid $pid ignored SIGTERM for ${KAFKA_STOP_TIMEOUT}s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
  sleep 0.5
}

kafka_stop() {
  local pid
  pid="$(kafka_pid)"
  if pid_alive "$pid"; then
    log "stopping Kafka (pid $pid)"
    kafka_terminate "$pid"
  else
    log "Kafka not running"
  fi
  rm -f "$KAFKA_PID"
}

# ---------------------------------------------------------------- commands

run_migrations() {
  [[ -x $REPO/.venv/bin/alembic && -f $REPO/alembic.ini ]] || return 0
  log "alembic upgrade head"
  (
    cd "$REPO"
    # shellcheck disable=SC1090
    . "$ENV_FILE"
    .venv/bin/alembic -c alembic.ini upgrade head
  )
}

cmd_up() {
  ensure_env_file
  pg_start
  pg_ensure_objects
  kafka_start
  kafka_setup
  run_migrations
  log "up; load the settings with: . ${ENV_FILE#"$REPO"/}"
}

cmd_down() {
  kafka_stop
  pg_stop yes
}

cmd_status() {
  local pid state
  pid="$(kafka_pid)"
  if pid_alive "$pid" && port_open "$KAFKA_PORT"; then
    state="running (pid $pid) on 127.0.0.1:$KAFKA_PORT, SASL_SSL on $KAFKA_TLS_PORT"
  elif pid_alive "$pid"; then
    state="starting (pid $pid)"
  else
    state="stopped"
  fi
  [[ -f $KAFKA_LIBS/.stamp ]] && state="$state, jars $(cut -d' ' -f1 "$KAFKA_LIBS/.stamp")"
  log "kafka: $state"
  if command -v pg_lsclusters >/dev/null && pg_binaries_present; then
    pg_lsclusters -h | while read -r ver name port status _; do
      local ours=""
      [[ -f $PG_MARK && $(cat "$PG_MARK") == "$ver $name" ]] && ours=", started by infra.sh"
      log "postgresql: $ver/$name port $port $status$ours"
    done
  else
    log "postgresql: not installed"
  fi
  if [[ -f $ENV_FILE ]]; then
    log "env: ${ENV_FILE#"$REPO"/}"
  else
    log "env: missing (run: scripts/infra.sh up)"
  fi
}

cmd_reset() {
  kafka_stop
  log "wiping Kafka data (jars kept)"
  rm -rf "$KAFKA_DATA" "$KAFKA_HOME/cluster-id"
  ensure_env_file
  pg_start
  pg_drop_database
  cmd_up
}

main() {
  [[ $# -eq 1 ]] || usage
  mkdir -p "$STATE"
  # One infra.sh at a time per checkout: parallel test runners may all call `up`.
  exec 9>"$STATE/lock"
  flock -w 300 9 || die "another scripts/infra.sh is still running"
  resolve_ports
  case "$1" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    reset) cmd_reset ;;
    kafka-start) ensure_env_file; kafka_start ;;
    kafka-stop) kafka_stop ;;
    pg-start) ensure_env_file; pg_start; pg_ensure_objects ;;
    pg-stop) pg_stop no ;;
    *) usage ;;
  esac
}

main "$@"
