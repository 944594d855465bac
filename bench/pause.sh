#!/usr/bin/env bash
# Pause/resume latency (issue 6): starts a server (no pool) on a free loopback port with a fresh data
# directory, runs bench/lib/pause_bench.py against it (3 sandboxes x 30 pause/connect cycles, each
# sandbox running a busy process whose counter must go on across every pause; GET /sandboxes/{id}
# in the same run as the baseline), stops the server by its pid, checks that nothing of its data
# directory is left, removes it. Run as root. Options are passed to pause_bench.py
# (--cycles N, --sandboxes N).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source "$ROOT/bench/lib/leftovers.sh"
log() { echo "[pause.sh $(date +%H:%M:%S)] $*" >&2; }
[ "$(id -u)" = 0 ] || { echo "pause.sh: run as root" >&2; exit 1; }
WORK=$(mktemp -d /tmp/stockade-pause.XXXXXX)
chmod 0711 "$WORK"
PID=""
finish() {
  if [ -n "$PID" ]; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$PID" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$PID" 2>/dev/null && { log "server $PID did not stop in 60 s; killing it"; kill -KILL "$PID"; }
  fi
  remove_leftovers "$WORK"
  rm -rf "$WORK"
}
trap finish EXIT
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env -u STOCKADE_API_KEY ./stockade serve --port "$PORT" --data-dir "$WORK/data" --pool-size 0 >"$WORK/server.log" 2>&1 </dev/null &
PID=$!
wait_listening "$PORT" "$PID" || { cat "$WORK/server.log" >&2; exit 1; }
echo "Machine: $(nproc) cores, $(uname -r), runc $(runc --version | head -1 | awk '{print $3}'); commit $(git rev-parse --short=12 HEAD); $(date -u +%Y-%m-%dT%H:%M:%SZ). Command: bench/pause.sh $*"
echo
/usr/bin/python3 bench/lib/pause_bench.py "http://127.0.0.1:$PORT" "$WORK/data/api-key" "$@"
