#!/usr/bin/env bash
# Start or stop the Daybreak services in the background (logs in .daybreak/logs).
#   scripts/services.sh start|stop|status
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$REPO/.daybreak/run"
LOGS="$REPO/.daybreak/logs"
SERVICES=(identity ingest matcher notifier audit)
declare -A PORTS=([identity]=8005 [ingest]=8001 [matcher]=8002 [notifier]=8003 [audit]=8004)
SMTP_PORT=8025
mkdir -p "$RUN" "$LOGS"

alive() { [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start_smtp() {
  # a local SMTP server for the demo: every message lands as a file in .daybreak/mail/new/
  mkdir -p "$REPO/.daybreak/mail/"{tmp,new,cur}  # a Maildir
  if alive smtp; then return; fi
  nohup "$REPO/.venv/bin/python" -m aiosmtpd -n -l "127.0.0.1:$SMTP_PORT" \
    -c aiosmtpd.handlers.Mailbox "$REPO/.daybreak/mail" >>"$LOGS/smtp.log" 2>&1 </dev/null &
  echo $! >"$RUN/smtp.pid"
  echo "services: SMTP on 127.0.0.1:$SMTP_PORT, mail lands in .daybreak/mail/new/"
}

# The environment one service runs with: the settings everyone shares, and its own database
# role, Kafka principal and keys, never another service's (an RCE in one gets that one only).
service_env() {
  local svc="$1" up="${1^^}" name
  SERVICE_ENV=("PATH=$PATH" "HOME=${HOME:-/root}" "LANG=${LANG:-C.UTF-8}")
  for name in $(compgen -v DAYBREAK_); do
    case "$name" in
      *DATABASE_URL | *KAFKA_PASSWORD | DAYBREAK_KAFKA_USERNAME | *SECRET* | *SIGNING_KEY* \
        | DAYBREAK_KEYSTORE_DIR | DAYBREAK_KEK_FILE) ;;
      *) SERVICE_ENV+=("$name=${!name}") ;;
    esac
  done
  name="DAYBREAK_${up}_DATABASE_URL"
  SERVICE_ENV+=("$name=${!name}" "DAYBREAK_KAFKA_USERNAME=$svc")
  name="DAYBREAK_${up}_KAFKA_PASSWORD"
  SERVICE_ENV+=("DAYBREAK_KAFKA_PASSWORD=${!name}")
  case "$svc" in  # who turns a child's name and birth date into the audit log's pseudonym
    matcher | notifier | audit) SERVICE_ENV+=("DAYBREAK_CHILD_KEY_SECRET=$DAYBREAK_CHILD_KEY_SECRET") ;;
  esac
  case "$svc" in  # who seals and opens child data (audit and identity never hold the keys)
    ingest | matcher | notifier)
      for name in DAYBREAK_KEYSTORE_DIR DAYBREAK_KEK_FILE; do
        if [[ -n ${!name:-} ]]; then SERVICE_ENV+=("$name=${!name}"); fi
      done ;;
  esac
  case "$svc" in
    audit) SERVICE_ENV+=("DAYBREAK_AUDIT_SIGNING_KEY=$DAYBREAK_AUDIT_SIGNING_KEY") ;;
    identity) SERVICE_ENV+=("DAYBREAK_IDENTITY_SIGNING_KEYS=$DAYBREAK_IDENTITY_SIGNING_KEYS") ;;
  esac
}

start() {
  # shellcheck disable=SC1091
  set -a; . "$REPO/.daybreak/env"; set +a
  export DAYBREAK_SMTP_HOST="${DAYBREAK_SMTP_HOST:-127.0.0.1}" DAYBREAK_SMTP_PORT="${DAYBREAK_SMTP_PORT:-$SMTP_PORT}"
  start_smtp
  for svc in "${SERVICES[@]}"; do
    if alive "$svc"; then echo "services: $svc already running"; continue; fi
    service_env "$svc"
    env -i "${SERVICE_ENV[@]}" nohup "$REPO/.venv/bin/daybreak" serve "$svc" \
      --workers "${DAYBREAK_WORKERS:-1}" >>"$LOGS/$svc.log" 2>&1 </dev/null &
    echo $! >"$RUN/$svc.pid"
  done
  for svc in "${SERVICES[@]}"; do
    local port=${PORTS[$svc]} ready=0
    for _ in $(seq 1 150); do
      if "$REPO/.venv/bin/python" - "$port" <<'PY' 2>/dev/null; then ready=1; break; fi
import sys, urllib.request
urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=1)
PY
      alive "$svc" || { echo "services: $svc exited; see $LOGS/$svc.log" >&2; tail -5 "$LOGS/$svc.log" >&2; exit 1; }
      sleep 0.2
    done
    [[ $ready -eq 1 ]] || { echo "services: $svc not ready after 30 s; see $LOGS/$svc.log" >&2; exit 1; }
    echo "services: $svc ready on http://127.0.0.1:$port (API: /openapi.json, log: .daybreak/logs/$svc.log)"
  done
}

stop() {
  for svc in "${SERVICES[@]}" smtp; do
    if alive "$svc"; then
      kill "$(cat "$RUN/$svc.pid")" && echo "services: stopped $svc"
    fi
    rm -f "$RUN/$svc.pid"
  done
}

status() {
  for svc in "${SERVICES[@]}"; do
    if alive "$svc"; then echo "services: $svc running"; else echo "services: $svc stopped"; fi
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: scripts/services.sh start|stop|status" >&2; exit 2 ;;
esac
