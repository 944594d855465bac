#!/usr/bin/env bash
# Load benchmark (issue 7): an open-loop mix of API calls from several tenants at a fixed rate
# (default 500 requests/s for 60 s from 2 tenants, after a 10 s warm-up ramp), with GET /health at
# the same rate as the baseline. Starts its own server (no pool unless --pool-size) on a free
# loopback port with a fresh data directory, lets bench/lib/LoadBench.java (JDK only) create the
# tenants and their keys through the admin API with the admin key the server wrote to DATA/api-key,
# and run the phases; LoadBench's header says what the mix is and how latency is measured (from each
# request's scheduled start: no coordinated omission). Prints Markdown tables on stdout (progress on
# stderr), writes bench/results/load.json (load-quick.json for --quick), and exits 1 when any
# request failed or the server logged an error. Stops the server it started (by its pid), checks
# that no container or mount of its data directory is left, and removes the directory. Run as root.
#
#   bench/load.sh [--quick] [--rate N] [--seconds N] [--tenants N] [--sandboxes N]
#                 [--create-rate N] [--warmup-seconds N] [--baseline-seconds N] [--pool-size N]
#
# --quick: 50 requests/s for 5 s (2 s ramp, 5 s baseline, 2 sandboxes per tenant): a smoke check
# of the harness and of the server under a mixed load, about 25 s in all; what CI can run.
# Options after --quick override it. --create-rate is per tenant (creates/s, as many kills).
# Environment: JAVA_HOME (default Temurin 25); LOAD_SKIP_BUILD=1 (use cli/target as it is);
# LOAD_SERVER_JAVA_OPTS (extra server JVM flags, e.g. -XX:StartFlightRecording=filename=/tmp/x.jfr);
# LOAD_KEEP_LOG=FILE (keep a copy of the server's log).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source "$ROOT/bench/lib/leftovers.sh"
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
JAVA="$JAVA_HOME/bin/java"

RATE=500 SECONDS_=60 TENANTS=2 SANDBOXES=4 CREATE_RATE=1 WARMUP=10 BASELINE="" POOL=0 QUICK=0
while [ $# -gt 0 ]; do
  case "$1" in --quick|-h|--help) ;; *) [ $# -ge 2 ] || { echo "load.sh: $1 needs a value (try --help)" >&2; exit 2; } ;; esac
  case "$1" in
    --quick) QUICK=1 RATE=50 SECONDS_=5 WARMUP=2 SANDBOXES=2 ;;
    --rate) RATE=$2; shift ;;
    --seconds) SECONDS_=$2; shift ;;
    --tenants) TENANTS=$2; shift ;;
    --sandboxes) SANDBOXES=$2; shift ;;
    --create-rate) CREATE_RATE=$2; shift ;;
    --warmup-seconds) WARMUP=$2; shift ;;
    --baseline-seconds) BASELINE=$2; shift ;;
    --pool-size) POOL=$2; shift ;;
    -h|--help) sed -n 2,21p "$0"; exit 0 ;;
    *) echo "load.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
  esac
  shift
done
BASELINE=${BASELINE:-$SECONDS_}
for v in "$RATE" "$SECONDS_" "$TENANTS" "$SANDBOXES" "$CREATE_RATE" "$WARMUP" "$BASELINE" "$POOL"; do
  [[ "$v" =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "load.sh: $v is not a number (try --help)" >&2; exit 2; }
done

log() { echo "[load.sh $(date +%H:%M:%S)] $*" >&2; }
die() { echo "load.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (the server starts sandboxes with runc)"
[ -x "$JAVA" ] || die "no Java at $JAVA: set JAVA_HOME to a JDK 25"
command -v curl >/dev/null || die "curl is missing (scripts/install-deps.sh installs it)"

WORK=$(mktemp -d /tmp/stockade-load.XXXXXX)
chmod 0711 "$WORK"
DATA="$WORK/data"
SERVER_PID=""

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  stop_pid "$SERVER_PID"
  SERVER_PID=""
  remove_leftovers "$WORK"
}
cleanup() {
  local rc=$?
  [ -n "${LOAD_KEEP_LOG:-}" ] && [ -f "$WORK/server.log" ] && cp "$WORK/server.log" "$LOAD_KEEP_LOG"
  stop_server || true
  remove_work "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the server: the launcher's build, run from a private copy ---------------------------------
# ./stockade builds when any source is newer than its last build; other work in this tree may
# rebuild cli/target while the server runs, so the server runs from a copy of that build (the
# same main class and arguments as `./stockade serve ...`).
if [ "${LOAD_SKIP_BUILD:-0}" != 1 ]; then
  log "building through the launcher (./stockade --help builds when stale)"
  ./stockade --help >/dev/null 2>"$WORK/build.log" || { cat "$WORK/build.log" >&2
    die "./stockade could not build the project (a module may be mid-edit: retry later, or LOAD_SKIP_BUILD=1 to use cli/target as it is)"; }
fi
[ -d cli/target/classes ] && [ -d cli/target/lib ] || die "no build in cli/target (run ./stockade --help once)"
mkdir -p "$WORK/cli"
cp -r cli/target/classes "$WORK/cli/classes"
cp -r cli/target/lib "$WORK/cli/lib"

PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
mkdir -m 0711 "$DATA"
SERVE=(serve --port "$PORT" --data-dir "$DATA" --pool-size "$POOL")
# No STOCKADE_API_KEY: the server generates the admin key of the default tenant into DATA/api-key.
# shellcheck disable=SC2086
env -u STOCKADE_API_KEY "$JAVA" --enable-native-access=ALL-UNNAMED ${LOAD_SERVER_JAVA_OPTS:-} \
  -cp "$WORK/cli/classes:$WORK/cli/lib/*" dev.stockade.cli.Main "${SERVE[@]}" >"$WORK/server.log" 2>&1 </dev/null &
SERVER_PID=$!
for _ in $(seq 1 600); do
  curl -fsS -o /dev/null "$URL/health" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; die "the server exited before answering"; }
  sleep 0.2
done
curl -fsS -o /dev/null "$URL/health" || { cat "$WORK/server.log" >&2; die "the server did not answer on $URL within 120 s"; }
[ -s "$DATA/api-key" ] || die "the server wrote no admin key to $DATA/api-key"
log "server up at $URL (pid $SERVER_PID): ./stockade ${SERVE[*]}"

# ---- the run -----------------------------------------------------------------------------------
mkdir -p bench/results
OUT=bench/results/load.json
[ "$QUICK" = 1 ] && OUT=bench/results/load-quick.json
rm -f "$OUT"
cp bench/lib/LoadBench.java "$WORK/LoadBench.java"
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo), kernel $(uname -r), $("$JAVA" -version 2>&1 | head -1 | sed 's/"//g'); commit $(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)$([ -n "$(git status --porcelain 2>/dev/null)" ] && echo ' (uncommitted changes in the tree)'); load average at start $(cut -d' ' -f1-3 /proc/loadavg); $(date -u +%Y-%m-%dT%H:%M:%SZ)."
echo "Server: ./stockade serve --port $PORT --data-dir DIR --pool-size $POOL (pid $SERVER_PID). Command: bench/load.sh $([ "$QUICK" = 1 ] && echo --quick) --rate $RATE --seconds $SECONDS_ --tenants $TENANTS --sandboxes $SANDBOXES --create-rate $CREATE_RATE --warmup-seconds $WARMUP --baseline-seconds $BASELINE"
echo
rc=0
"$JAVA" "$WORK/LoadBench.java" --url "$URL" --admin-key-file "$DATA/api-key" --rate "$RATE" --seconds "$SECONDS_" \
  --tenants "$TENANTS" --sandboxes "$SANDBOXES" --create-rate "$CREATE_RATE" --warmup-seconds "$WARMUP" \
  --baseline-seconds "$BASELINE" --server-pid "$SERVER_PID" --out "$OUT" || rc=$?
if grep -qE 'SEVERE|Exception' "$WORK/server.log"; then
  log "the server logged errors:"
  grep -E -m 20 -A 3 'SEVERE|Exception' "$WORK/server.log" >&2 || true
  [ "$rc" = 0 ] && rc=1
fi
log "server RSS at the end: $(awk '/VmRSS/ {print $2/1024 " MiB"}' "/proc/$SERVER_PID/status" 2>/dev/null || echo '?')"
[ -f "$OUT" ] || OUT="no results file"
if [ "$rc" = 0 ]; then log "done: no errors; wrote $OUT"; else log "done: errors (exit $rc); wrote $OUT"; fi
exit "$rc"
