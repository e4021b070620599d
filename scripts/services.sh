#!/usr/bin/env bash
# Start or stop the Daybreak services in the background (logs in .daybreak/logs).
#   scripts/services.sh start|stop|status
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$REPO/.daybreak/run"
LOGS="$REPO/.daybreak/logs"
SERVICES=(ingest matcher audit)
declare -A PORTS=([ingest]=8001 [matcher]=8002 [notifier]=8003 [audit]=8004)
mkdir -p "$RUN" "$LOGS"

alive() { [[ -f "$RUN/$1.pid" ]] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

start() {
  # shellcheck disable=SC1091
  set -a; . "$REPO/.daybreak/env"; set +a
  for svc in "${SERVICES[@]}"; do
    if alive "$svc"; then echo "services: $svc already running"; continue; fi
    nohup "$REPO/.venv/bin/daybreak" serve "$svc" --workers "${DAYBREAK_WORKERS:-1}" >>"$LOGS/$svc.log" 2>&1 </dev/null &
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
    echo "services: $svc ready on http://127.0.0.1:$port (docs: /docs, log: .daybreak/logs/$svc.log)"
  done
}

stop() {
  for svc in "${SERVICES[@]}"; do
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
