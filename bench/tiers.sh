#!/usr/bin/env bash
# The price of the hardened tier: runc (standard) and runsc (gVisor) side by side in one invocation,
# interleaved sample by sample, with this machine's bare baselines in the same rounds. Builds the
# project (mvn -o -q install -DskipTests), runs the server from a private copy of cli/target, and
# drives it with bench/lib/TierBench.java (Stockade's Java SDK + raw HTTP) and
# bench/lib/tier_workload.py (the workloads, and the host-side timer):
#   0. raw runtimes, no Stockade: `runc run` / `runsc run` of python3 -c pass (hyperfine, through
#      bench/lib/runc-baseline.sh and bench/lib/sandbox-baselines.sh);
#   1. a server without pools: cold create -> first echo; echo, python3 -c pass, 1 MiB upload +
#      download, 1+1 cell, new context + first pandas describe() cell, a CPU-bound and a
#      syscall-heavy Python workload (self-timed and end to end, bare beside them), process starts
#      timed inside, the agent alone (bench/lib/agent_probe.py on its socket), pause/resume
#      (tiers that list it in GET /runtimes), idle memory and CPU of N idle sandboxes per tier;
#   2. a server with a warm pool per tier (--pool-size P --pool-hardened P --pool-preload none):
#      create -> first echo, each create waiting until both pools are full.
# Markdown tables on stdout, progress on stderr, raw samples and the machine in
# bench/results/tiers-latest.json (--quick: bench/results/tiers-quick.json). See bench/README.md.
#
#   bench/tiers.sh [--quick]
#
# Environment: JAVA_HOME (default Temurin 25); TIERS_SKIP_BUILD=1 (measure cli/target as it is).
# Run as root. Every server it starts is stopped by its pid on exit; what they leave is reported
# and removed (bench/lib/leftovers.sh, and runsc's processes and cgroups of the sandboxes it made).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source "$ROOT/bench/lib/leftovers.sh"
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
JAVA="$JAVA_HOME/bin/java"
CMDLINE="bench/tiers.sh${*:+ $*}"

QUICK=0
COUNTS=(cold=30 echo=100 agent=100 py=30 file=30 cell=100 pandas=5 work=10 spawn=30 pause=30 mem=10)
POOL_COUNTS=(poolcreate=30 pool=3)
N_RAW=30
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1
      COUNTS=(cold=3 echo=10 agent=10 py=5 file=3 cell=10 pandas=1 work=2 spawn=5 pause=3 mem=3)
      POOL_COUNTS=(poolcreate=3 pool=2) N_RAW=5 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "tiers.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done
POOL=${POOL_COUNTS[1]#pool=}

log() { echo "[tiers.sh $(date +%H:%M:%S)] $*" >&2; }
die() { echo "tiers.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (the server starts sandboxes with runc and runsc)"
[ -x "$JAVA" ] || die "no Java at $JAVA: set JAVA_HOME to a JDK 25"
for tool in runc curl jq; do command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"; done
command -v runsc >/dev/null || log "WARNING: no runsc on PATH (apt-get install runsc): the runsc column will say why it is empty"

WORK=$(mktemp -d /tmp/stockade-tiers.XXXXXX)
chmod 0711 "$WORK"
IDS="$WORK/ids"          # "tier id" of every sandbox TierBench created (for the cgroup check)
: >"$IDS"
SERVER_PID=""
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
T_START=$(date +%s)

# Beyond leftovers.sh (runc and runsc containers, mounts under WORK): processes whose command line
# names WORK (runsc's sandbox and gofer processes get their bundle path there), and the cgroups of
# the sandboxes TierBench created. Reported, then removed.
remove_runsc_leftovers() {
  local pid cmd
  for pid in $(ps -eo pid= 2>/dev/null); do
    [ "$pid" = "$$" ] && continue
    cmd=$( { tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null || true)
    case "$cmd" in
      *"$WORK/"*) case "$cmd" in *TierBench.java*|*tier_workload.py*|*dev.stockade.cli.Main*) continue ;; esac
        log "WARNING: process $pid of a stopped server is still running: ${cmd:0:200} (killing it)"
        kill -KILL "$pid" 2>/dev/null || true ;;
    esac
  done
  local tier sid d
  while read -r tier sid; do
    [ -n "$sid" ] || continue
    for d in /sys/fs/cgroup/*/stockade-"$sid"; do
      [ -d "$d" ] || continue
      log "WARNING: the cgroup $d of a $tier sandbox is left (removing it)"
      rmdir "$d" 2>/dev/null || log "WARNING: could not remove $d (still has processes?)"
    done
  done <"$IDS"
}

stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  stop_pid "$SERVER_PID"
  SERVER_PID=""
  sleep 0.5
  remove_leftovers "$WORK"
  remove_runsc_leftovers
}
cleanup() {
  local rc=$?
  stop_server || true
  remove_work "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- build, and a private copy of it ------------------------------------------------------------
BUILD_NOTE="built by mvn -o -q install -DskipTests"
if [ "${TIERS_SKIP_BUILD:-0}" = 1 ]; then
  BUILD_NOTE="build skipped (TIERS_SKIP_BUILD=1): cli/target as it was"
else
  log "building (mvn -o -q install -DskipTests)"
  if ! mvn -o -q install -DskipTests >"$WORK/build.log" 2>&1; then
    tail -30 "$WORK/build.log" >&2
    [ -d cli/target/classes ] && [ -d cli/target/lib ] || die "the build failed and cli/target has no build to measure"
    log "WARNING: the build failed (a module may be mid-edit); measuring the build already in cli/target"
    BUILD_NOTE="the build failed; measured the build already in cli/target"
  fi
fi
[ -d cli/target/classes ] && [ -d cli/target/lib ] || die "no build in cli/target"
mkdir -p "$WORK/cli"
cp -r cli/target/classes "$WORK/cli/classes"
cp -r cli/target/lib "$WORK/cli/lib"
cp bench/lib/TierBench.java bench/lib/tier_workload.py bench/lib/agent_probe.py "$WORK/"
mkdir -p "$WORK/host"

# start_server NAME SERVE_FLAGS...: the same main class and arguments as `./stockade serve ...`.
start_server() {
  local name=$1; shift
  local port; port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  DATA="$WORK/$name-data"
  mkdir -m 0711 "$DATA"
  KEY="e2b_$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')"
  URL="http://127.0.0.1:$port"
  SERVE=(serve --port "$port" --data-dir "$DATA" --end-sandboxes-on-stop "$@")
  echo "./stockade serve --port N --data-dir DIR --end-sandboxes-on-stop $*" >"$WORK/$name.command"
  STOCKADE_API_KEY="$KEY" "$JAVA" --enable-native-access=ALL-UNNAMED -cp "$WORK/cli/classes:$WORK/cli/lib/*" \
    dev.stockade.cli.Main "${SERVE[@]}" >"$WORK/$name-server.log" 2>&1 </dev/null &
  SERVER_PID=$!
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$URL/health" 2>/dev/null && { log "server $name up at $URL (pid $SERVER_PID): $(cat "$WORK/$name.command")"; return; }
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/$name-server.log" >&2; die "the $name server exited before answering"; }
    sleep 0.2
  done
  die "the $name server did not answer within 120 s"
}

bench() {  # bench PHASE OUT COUNTS...
  local phase=$1 out=$2; shift 2
  TIERS_DATA="$DATA" STOCKADE_URL="$URL" STOCKADE_API_KEY="$KEY" "$JAVA" -cp "$WORK/cli/lib/*" "$WORK/TierBench.java" \
    "$phase" "$out" "$IDS" "$WORK/tier_workload.py" "$WORK/host" "$@" || log "WARNING: TierBench $phase exited with $?"
  curl -fsS -H "X-API-Key: $KEY" "$URL/runtimes" >"$WORK/$phase-runtimes.json" 2>/dev/null || true
  if grep -qE 'SEVERE|Exception' "$WORK/$phase-server.log"; then
    log "the $phase server logged errors (first ones):"
    grep -E -m 10 -A 2 'SEVERE|Exception' "$WORK/$phase-server.log" >&2 || true
    grep -E -m 20 -A 2 'SEVERE|Exception' "$WORK/$phase-server.log" >"$WORK/$phase-server-errors.txt" || true
  fi
}

# ---- the runs -----------------------------------------------------------------------------------
# Raw runtimes, no Stockade code: the bundle of bench/lib/runc-baseline.sh (host /usr read-only,
# runc spec's defaults), `runc run` and `runsc run` (its default platform, ptrace) of python3 -c pass.
log "raw runtime baselines: runc run / runsc run python3 -c pass, $N_RAW each (hyperfine)"
mkdir -p "$WORK/raw"
bash bench/lib/runc-baseline.sh "$WORK/rawbundle" "$WORK/raw" "$N_RAW" 3 >/dev/null 2>"$WORK/raw-runc.err" \
  || log "WARNING: runc-baseline.sh failed: $(tail -3 "$WORK/raw-runc.err")"
if command -v runsc >/dev/null && [ -f "$WORK/rawbundle/bundle/config.plain.json" ]; then
  bash bench/lib/sandbox-baselines.sh "$WORK/rawbundle/bundle" "$WORK/raw" "$N_RAW" >/dev/null 2>"$WORK/raw-runsc.err" \
    || log "WARNING: sandbox-baselines.sh failed: $(tail -3 "$WORK/raw-runsc.err")"
fi
hf_times() { [ -f "$1" ] && jq '[.results[0].times[] * 1000]' "$1" || echo null; }
jq -n --argjson runc "$(hf_times "$WORK/raw/runc-run-python.json")" --argjson runc_userns "$(hf_times "$WORK/raw/runc-run-python-userns.json")" \
  --argjson runsc "$(hf_times "$WORK/raw/runsc-run-python.json")" \
  --arg runsc_error "$(cat "$WORK/raw/runsc-run-python.error" 2>/dev/null || true)" \
  --arg runsc_flags "$(jq -r '.flags + " (platform " + .platform + ")"' "$WORK/raw/runsc-info.json" 2>/dev/null || true)" \
  '{samples: {raw_run_python: ({runc: $runc, runsc: $runsc} | with_entries(select(.value != null))),
              raw_run_python_userns: ({runc: $runc_userns} | with_entries(select(.value != null)))},
    runsc_flags: $runsc_flags, errors: (if $runsc_error == "" then [] else [$runsc_error] end)}' >"$WORK/raw.json"

start_server main --pool-size 0
bench main "$WORK/main.json" "${COUNTS[@]}"
stop_server
start_server pool --pool-size "$POOL" --pool-hardened "$POOL" --pool-preload none
bench pool "$WORK/pool.json" "${POOL_COUNTS[@]}"
stop_server

# ---- the report ---------------------------------------------------------------------------------
mkdir -p bench/results
OUT=bench/results/tiers-latest.json
[ "$QUICK" = 1 ] && OUT=bench/results/tiers-quick.json
jq -n \
  --arg command "$CMDLINE" --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg nproc "$(nproc)" --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  --arg mem "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
  --arg kernel "$(uname -r)" --arg runc "$(runc --version 2>&1 | head -1)" \
  --arg runsc "$( (runsc --version 2>&1 || echo 'runsc: not installed') | head -1)" \
  --arg runsc_platform "$(awk '/platform/ {print; exit}' /etc/runsc.toml 2>/dev/null || true)" \
  --arg java "$("$JAVA" -version 2>&1 | head -1)" --arg python "$(/usr/bin/python3 --version 2>&1)" \
  --arg commit "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
  --arg dirty "$([ -n "$(git status --porcelain 2>/dev/null)" ] && echo yes || echo no)" \
  --arg build "$BUILD_NOTE" --arg load_start "$LOAD_START" --arg load_end "$(cut -d' ' -f1-3 /proc/loadavg)" \
  --arg seconds "$(( $(date +%s) - T_START ))" \
  --arg server_main "$(cat "$WORK/main.command")" --arg server_pool "$(cat "$WORK/pool.command")" \
  --arg quick "$QUICK" \
  '{command: $command, date: $date, quick: ($quick == "1"), machine: {nproc: $nproc, cpu: $cpu, memory: $mem,
    kernel: $kernel, runc: $runc, runsc: $runsc, runsc_config: $runsc_platform, java: $java, python: $python},
    commit: $commit, uncommitted_changes: ($dirty == "yes"), build: $build,
    load_average_start: $load_start, load_average_end: $load_end, seconds: ($seconds | tonumber),
    servers: {main: $server_main, pool: $server_pool}}' >"$WORK/meta.json"
for f in main pool; do [ -f "$WORK/$f.json" ] || echo '{"errors": ["the phase wrote no results"]}' >"$WORK/$f.json"; done
for f in main pool; do [ -f "$WORK/$f-server-errors.txt" ] && jq --rawfile e "$WORK/$f-server-errors.txt" '.server_log_errors = $e' "$WORK/$f.json" >"$WORK/$f.tmp" && mv "$WORK/$f.tmp" "$WORK/$f.json"; done
/usr/bin/python3 bench/lib/tiers_report.py "$WORK/meta.json" "$WORK/main.json" "$WORK/pool.json" "$WORK/raw.json" "$OUT"
log "wrote $OUT"
