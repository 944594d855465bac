#!/usr/bin/env bash
# Stockade benchmark harness: one invocation measures the baselines (bare /bin/true and python,
# raw runc, gVisor's runsc, bubblewrap), Stockade through the official E2B JS SDK (and Stockade's
# Java SDK when it builds), and its code interpreter through @e2b/code-interpreter next to a Jupyter
# kernel driven by jupyter_client on the host (the peer), so that ratios hold on a noisy machine;
# then warm pools (issue 5): create → first echo with and without a pool, sequential and
# concurrent, both SDKs; the pooled code interpreter's preloaded first cell; sustained creates per
# second; density (idle sandboxes this host holds); then the load benchmark of issue 7 (bench/load.sh:
# an open-loop mix of API calls from two tenants at 500 requests/s, its own server; tables printed
# after the others, kept in bench/results/raw/load.md). Writes bench/results/latest.json
# (+ latest-samples.json) and a plot, and prints Markdown tables on stdout; progress goes to
# stderr. See bench/README.md.
#
#   bench/run.sh [--quick] [--no-java-sdk] [--no-code-interpreter] [--diagnostics]
#                [--no-pool] [--no-density] [--no-sustained] [--no-load] [--no-seccomp] [--baselines-only]
#
# Environment: JAVA_HOME (default Temurin 25), BENCH_SERVER=launcher|java (default: the ./stockade
# launcher when it exists, else the fallback bench/lib/BenchServer.java), BENCH_SKIP_BUILD=1.
# Run as root (runc, mounts). Everything it starts is stopped and removed on exit.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source "$ROOT/bench/lib/leftovers.sh"
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
JAVA="$JAVA_HOME/bin/java"

N_TRUE=50 N_PY=50 N_RUNC=30 N_EXEC=30 N_SECCOMP=20
N_CREATE=100 N_ECHO=200 N_SBX_PY=50 N_FILE=50 N_AGENT=100
N_SDK_CREATE=50 N_SDK_ECHO=200
N_DIAG_CREATE=30 N_DIAG_ECHO=100 N_DIAG_PY=30 N_DIAG_FILE=20
N_CI_CELL=200 N_CI_IMPORT=10 N_CI_NOTEBOOK=10
# Issue 5. Pool sizes: POOL_SEQ for the sequential and sustained runs, POOL_CONC for the concurrent
# bursts (as many as the bursts, so a burst can be served entirely from the pool).
N_P_SEQ=100 N_P_CONC=50 N_P_BURSTS=2 N_P_CI=10 POOL_SEQ=8 POOL_CONC=50 SUSTAIN_S=60
DENSITY_STEP=25 DENSITY_MAX=400 DENSITY_PROBES=20
POOL_PRELOAD=${BENCH_POOL_PRELOAD:-numpy,pandas,matplotlib.pyplot}      # the pool server of the sequential runs
POOL_CONC_PRELOAD=${BENCH_POOL_CONC_PRELOAD:-none}                      # the 50-sandbox pool of the bursts
POOLS=1 DENSITY=1 SUSTAINED=1 LOAD=1 LOAD_ARGS=() SECCOMP=1 BASELINES_ONLY=0
PLOT_OUT=docs/bench-create.png
JAVA_SDK=1 CODE_INTERPRETER=1 DIAG=0   # the TCP_NODELAY what-if became the product default (Server.start); --diagnostics re-runs it
for a in "$@"; do
  case "$a" in
    --quick)
      N_TRUE=10 N_PY=10 N_RUNC=5 N_EXEC=5 N_SECCOMP=3 N_CREATE=5 N_ECHO=20 N_SBX_PY=5 N_FILE=5 N_AGENT=20
      N_SDK_CREATE=3 N_SDK_ECHO=20 N_DIAG_CREATE=3 N_DIAG_ECHO=20 N_DIAG_PY=5 N_DIAG_FILE=5
      N_CI_CELL=20 N_CI_IMPORT=2 N_CI_NOTEBOOK=1
      N_P_SEQ=5 N_P_CONC=4 N_P_BURSTS=1 N_P_CI=1 POOL_SEQ=2 POOL_CONC=4 SUSTAIN_S=4
      DENSITY_STEP=3 DENSITY_MAX=6 DENSITY_PROBES=5
      LOAD_ARGS=(--quick)
      PLOT_OUT=bench/results/bench-create-quick.png ;;   # a smoke run never replaces the published plot
    --no-pool) POOLS=0 ;;
    --no-density) DENSITY=0 ;;
    --no-sustained) SUSTAINED=0 ;;
    --no-load) LOAD=0 ;;
    --no-seccomp) SECCOMP=0 ;;
    --baselines-only) BASELINES_ONLY=1 PLOT_OUT=bench/results/bench-create-baselines.png ;;   # section 1 only (no server), e.g. the seccomp comparison; never replaces the published plot
    --no-java-sdk) JAVA_SDK=0 ;;
    --no-code-interpreter) CODE_INTERPRETER=0 ;;
    --no-diagnostics) DIAG=0 ;;
    --diagnostics) DIAG=1 ;;
    -h|--help) sed -n 2,19p "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $a (try --help)" >&2; exit 2 ;;
  esac
done

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }
die() { echo "run.sh: $*" >&2; exit 1; }

# ---- prerequisites ---------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "run as root (runc, mounts, user namespaces)"
[ -x "$JAVA" ] || die "no Java at $JAVA: set JAVA_HOME to a JDK 25"
for tool in runc jq node curl; do
  command -v "$tool" >/dev/null || die "$tool is missing (scripts/install-deps.sh installs it)"
done
if ! command -v hyperfine >/dev/null; then
  log "installing hyperfine (apt-get install -y hyperfine)"
  apt-get install -y hyperfine >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y hyperfine >/dev/null; }
fi
# The other sandboxes of the baselines: gVisor (Debian's runsc) and bubblewrap.
for pkg in runsc:runsc bwrap:bubblewrap; do
  if ! command -v "${pkg%%:*}" >/dev/null; then
    log "installing ${pkg#*:} (apt-get install -y ${pkg#*:})"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkg#*:}" >/dev/null 2>&1 \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkg#*:}" >/dev/null; } \
      || log "WARNING: could not install ${pkg#*:}; its baseline will record the error"
  fi
done
/usr/bin/python3 -c 'import matplotlib' 2>/dev/null || log "WARNING: no matplotlib in /usr/bin/python3: no plot"
E2B_MODULES="$ROOT/tests/e2b-js/node_modules"
if [ ! -f "$E2B_MODULES/e2b/package.json" ] || [ ! -f "$E2B_MODULES/@e2b/code-interpreter/package.json" ]; then
  log "installing the e2b and @e2b/code-interpreter npm packages (npm ci in tests/e2b-js)"
  (cd "$ROOT/tests/e2b-js" && npm ci --no-audit --no-fund >/dev/null)
fi
if [ "$CODE_INTERPRETER" = 1 ]; then
  # The peer: a Jupyter kernel from Debian's packages, driven by jupyter_client (bench/lib/jupyter_peer.py).
  if ! /usr/bin/python3 -c 'import ipykernel, jupyter_client' 2>/dev/null; then
    log "installing the Jupyter peer (apt-get install -y python3-ipykernel python3-jupyter-client)"
    pkgs="python3-ipykernel python3-jupyter-client"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs >/dev/null 2>&1 \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $pkgs >/dev/null; }
  fi
  # The sandboxes' default template is the host's Python: the notebook needs its data-science packages.
  /usr/bin/python3 -c 'import IPython, numpy, pandas, matplotlib' 2>/dev/null \
    || die "the code interpreter bench needs IPython, numpy, pandas and matplotlib in /usr/bin/python3 (scripts/install-deps.sh installs them), or pass --no-code-interpreter"
fi

WORK=$(mktemp -d /tmp/stockade-bench.XXXXXX)
chmod 0711 "$WORK"
RAW="$WORK/raw"
mkdir -p "$RAW"
SERVER_PGID=""
SERVER_DATA=""

# ---- server lifecycle ------------------------------------------------------------------------
MODE=${BENCH_SERVER:-}
if [ -z "$MODE" ]; then
  if [ -x "$ROOT/stockade" ]; then MODE=launcher; else MODE=java; fi
fi
M2=${M2_REPO:-$HOME/.m2/repository}
JACKSON="$M2/com/fasterxml/jackson/core"
JACKSON_CP="$JACKSON/jackson-databind/2.22.3/jackson-databind-2.22.3.jar:$JACKSON/jackson-core/2.22.3/jackson-core-2.22.3.jar:$JACKSON/jackson-annotations/2.22/jackson-annotations-2.22.jar"

build() {
  [ "${BENCH_SKIP_BUILD:-0}" = 1 ] && { log "build skipped (BENCH_SKIP_BUILD=1)"; return; }
  if [ "$MODE" = launcher ]; then
    log "building through the launcher (./stockade --help builds when stale)"
    "$ROOT/stockade" --help >/dev/null 2>"$WORK/build.log" || { cat "$WORK/build.log" >&2
      die "./stockade could not build the project (a module may be mid-edit: retry later, or measure the jars already built with BENCH_SERVER=java BENCH_SKIP_BUILD=1)"; }
    return
  fi
  log "building server and sdk (mvn package, tests skipped)"
  if ! mvn -q -o -B -pl server,sdk -am package -Dmaven.test.skip=true >"$WORK/build.log" 2>&1 \
     && ! mvn -q -B -pl server,sdk -am package -Dmaven.test.skip=true >"$WORK/build.log" 2>&1; then
    if ls server/target/stockade-server-*.jar >/dev/null 2>&1; then
      log "WARNING: the build failed (see below); measuring the jars already in */target"
      tail -20 "$WORK/build.log" >&2
      BUILD_NOTE="build failed; measured the existing jars"
    else
      tail -40 "$WORK/build.log" >&2
      die "the build failed and there are no jars to measure"
    fi
  fi
}

# Private copies, so that a concurrent rebuild of */target cannot pull classes from under the server.
copy_jars() {
  mkdir -p "$WORK/jars"
  for mod in protocol agent runtime-spi runtime-oci server sdk; do
    j=$(ls "$mod"/target/stockade-"$mod"-*.jar 2>/dev/null | grep -v -e sources -e javadoc | head -1 || true)
    [ -n "$j" ] && cp "$j" "$WORK/jars/$mod.jar"
  done
  SERVER_CP="$WORK/jars/protocol.jar:$WORK/jars/agent.jar:$WORK/jars/runtime-spi.jar:$WORK/jars/runtime-oci.jar:$WORK/jars/server.jar:$JACKSON_CP"
  # The launcher's build keeps every runtime dependency in cli/target/lib (BouncyCastle too): when
  # it exists, BenchServer runs against a private copy of it.
  if ls cli/target/lib/stockade-server-*.jar >/dev/null 2>&1; then
    mkdir -p "$WORK/lib"
    cp cli/target/lib/*.jar "$WORK/lib/"
    SERVER_CP="$WORK/lib/*"
  fi
  cp bench/lib/BenchServer.java bench/lib/SdkBench.java bench/lib/SdkCreateBench.java "$WORK/"
}

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_server NAME [JVM_OPTION...]: sets URL, KEY, SERVER_DATA, SERVER_PGID. Server flags come from
# the array SERVE_FLAGS (launcher mode; the pool flags); SERVER_VIA=java forces BenchServer, with
# BENCH_MAX_SANDBOXES as its sandbox cap.
SERVE_FLAGS=()
SERVER_VIA=""
start_server() {
  local name=$1; shift
  local mode=${SERVER_VIA:-$MODE}
  local port; port=$(free_port)
  SERVER_DATA="$WORK/$name-data"
  mkdir -m 0711 "$SERVER_DATA"
  KEY="e2b_$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')"
  URL="http://127.0.0.1:$port"
  local logf="$WORK/$name-server.log"
  if [ "$mode" = launcher ]; then
    local jopts="$*"
    echo "./stockade serve --port $port --data-dir $SERVER_DATA ${SERVE_FLAGS[*]}" >"$RAW/server-$name.command"
    STOCKADE_API_KEY="$KEY" STOCKADE_JAVA_OPTS="$jopts" setsid "$ROOT/stockade" serve --port "$port" \
      --data-dir "$SERVER_DATA" "${SERVE_FLAGS[@]}" >"$logf" 2>&1 </dev/null &
  else
    echo "java bench/lib/BenchServer.java $SERVER_DATA $port KEY ${BENCH_MAX_SANDBOXES:-}" >"$RAW/server-$name.command"
    # shellcheck disable=SC2086
    setsid "$JAVA" "$@" --enable-native-access=ALL-UNNAMED -cp "$SERVER_CP" "$WORK/BenchServer.java" \
      "$SERVER_DATA" "$port" "$KEY" ${BENCH_MAX_SANDBOXES:-} >"$logf" 2>&1 </dev/null &
  fi
  SERVER_PGID=$!
  sleep 0.1
  # setsid made it the leader of its own process group, so stopping the group reaches whatever
  # the launcher started (a JVM) and nothing else.
  [ "$(ps -o pgid= -p "$SERVER_PGID" 2>/dev/null | tr -d ' ')" = "$SERVER_PGID" ] \
    || log "WARNING: server $SERVER_PGID is not a process-group leader"
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$URL/health" 2>/dev/null && { export E2B_API_URL="$URL" E2B_SANDBOX_URL="$URL" E2B_API_KEY="$KEY"
      log "server $name up at $URL ($mode, pid $SERVER_PGID): $(cat "$RAW/server-$name.command")"; return; }
    kill -0 "$SERVER_PGID" 2>/dev/null || { cat "$logf" >&2; die "the server exited before answering"; }
    sleep 0.2
  done
  cat "$logf" >&2
  die "the server did not answer on $URL within 120 s"
}

# Stops the server we started (its own process group), then checks it left nothing behind.
stop_server() {
  [ -n "$SERVER_PGID" ] || return 0
  kill -TERM -- "-$SERVER_PGID" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$SERVER_PGID" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$SERVER_PGID" 2>/dev/null; then
    log "WARNING: server $SERVER_PGID did not stop in 60 s; killing it"
    kill -KILL -- "-$SERVER_PGID" 2>/dev/null || true
    sleep 1
  fi
  SERVER_PGID=""
  remove_leftovers "${SERVER_DATA%/}"
}

cleanup() {
  local rc=$?
  stop_server || true
  remove_work "$WORK"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- machine ---------------------------------------------------------------------------------
BUILD_NOTE=""
build
copy_jars
# What this build's `serve` offers: warm pools (--pool-size) and a sandbox cap (--max-sandboxes).
HAS_POOL=0 HAS_MAX_SANDBOXES=0
if [ "$MODE" = launcher ]; then
  serve_help=$("$ROOT/stockade" serve --help 2>&1 || true)
  grep -q -- '--pool-size' <<<"$serve_help" && HAS_POOL=1
  grep -q -- '--max-sandboxes' <<<"$serve_help" && HAS_MAX_SANDBOXES=1
fi
[ "$HAS_POOL" = 1 ] || log "this server has no --pool-size flag: the pooled runs are skipped (no-pool figures only)"
java_v=$("$JAVA" -version 2>&1 | head -1 | sed 's/"//g')
jq -n --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --arg commit "$(git -C "$ROOT" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
  --argjson dirty "$([ -n "$(git -C "$ROOT" status --porcelain 2>/dev/null)" ] && echo true || echo false)" \
  --argjson nproc "$(nproc)" --arg kernel "$(uname -r)" \
  --arg runc "$(runc --version | head -1)" --arg node "$(node --version)" --arg java "$java_v" \
  --arg python "$(/usr/bin/python3 --version 2>&1)" --arg hyperfine "$(hyperfine --version | awk '{print $2}')" \
  --arg server "$MODE" --arg loadavg "$(cut -d' ' -f1-3 /proc/loadavg)" --arg build "$BUILD_NOTE" \
  --arg cmd "bench/run.sh $*" \
  --arg runsc "$( { runsc --version 2>/dev/null || true; } | head -1)" --arg bwrap "$(bwrap --version 2>/dev/null || echo none)" \
  --arg mem "$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)" \
  --arg cpu "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" \
  --argjson pools "$HAS_POOL" \
  '{date: $date, git_commit: $commit, git_dirty: $dirty, nproc: $nproc, cpu: $cpu, memory: $mem, kernel: $kernel, runc: $runc,
    runsc: $runsc, bwrap: $bwrap,
    node: $node, java: $java, python: $python, hyperfine: $hyperfine, server: $server, loadavg: $loadavg,
    build_note: $build, command: $cmd, serve_has_pool_flags: ($pools == 1)}' >"$RAW/machine.json"
START=$(date +%s)

# ---- 1. baselines ----------------------------------------------------------------------------
log "baselines: /bin/true x$N_TRUE, python3 -c pass x$N_PY"
hyperfine -N --style none --warmup 5 --runs "$N_TRUE" --export-json "$RAW/bare-true.json" '/bin/true' >/dev/null
hyperfine -N --style none --warmup 5 --runs "$N_PY" --export-json "$RAW/bare-python.json" '/usr/bin/python3 -c pass' >/dev/null
log "baselines: runc run python3 x$N_RUNC (without and with a user namespace), runc exec /bin/true x$N_EXEC"
bash bench/lib/runc-baseline.sh "$WORK/runc" "$RAW" "$N_RUNC" "$N_EXEC"
log "baselines: runsc (gVisor) run python3 x$N_RUNC, bubblewrap python3 x$N_RUNC"
bash bench/lib/sandbox-baselines.sh "$WORK/runc/bundle" "$RAW" "$N_RUNC"
if [ "$SECCOMP" = 1 ]; then
  # The seccomp policy's cost (issue 15): the same bundle with no filter, the policy of
  # BENCH_SECCOMP_BEFORE (default 4d54211: the deny-list) and this tree's (the allow-list), interleaved.
  log "seccomp: none / ${BENCH_SECCOMP_BEFORE:-4d54211} / this tree, x$N_SECCOMP rounds"
  /usr/bin/python3 bench/lib/seccomp_cost.py "$WORK/runc/bundle" "$RAW" "$N_SECCOMP" "${BENCH_SECCOMP_BEFORE:-4d54211}"
fi

# What the agent's start-up costs in Python alone: interpreter start in the agent's mode (-I -S),
# and the same plus compiling the agent's package (what every sandbox start would pay without the
# bytecode the server compiles at its start).
AGENT_PKG="$ROOT/agent/src/main/python/stockade_agent"
log "python3 -I -S start-up x$N_PY, and the same plus compiling the agent's package x$N_PY"
hyperfine -N --style none --warmup 3 --runs "$N_PY" --export-json "$RAW/python-IS.json" \
  '/usr/bin/python3 -I -S -c pass' >/dev/null
hyperfine -N --style none --warmup 3 --runs "$N_PY" --export-json "$RAW/python-IS-compile-agent.json" \
  "/usr/bin/python3 -I -S -c \"import os; d='$AGENT_PKG'; [compile(open(os.path.join(d, f)).read(), f, 'exec') for f in os.listdir(d) if f.endswith('.py')]\"" >/dev/null

if [ "$BASELINES_ONLY" = 0 ]; then   # sections 2-7 need the server; --baselines-only skips them
# ---- 2. Stockade through the E2B JS SDK ------------------------------------------------------
# No pool on this server: once `serve` has pools (2 by default), say so explicitly.
[ "$HAS_POOL" = 1 ] && SERVE_FLAGS=(--pool-size 0)
start_server main
export E2B_API_URL="$URL" E2B_SANDBOX_URL="$URL" E2B_API_KEY="$KEY"
log "E2B JS SDK: create→first echo x$N_CREATE, echo x$N_ECHO, python x$N_SBX_PY, 1 MiB file x$N_FILE"
BENCH_DATA_DIR="$SERVER_DATA" BENCH_OUT="$RAW/e2b.json" BENCH_E2B_MODULES="$E2B_MODULES" \
  BENCH_N_CREATE=$N_CREATE BENCH_N_ECHO=$N_ECHO BENCH_N_PY=$N_SBX_PY BENCH_N_FILE=$N_FILE \
  node bench/e2b-bench.mjs

# The agent alone, over its socket (no server, no HTTP), in a sandbox of the same server.
log "agent alone: exec echo x$N_AGENT over the unix socket"
SBX=$(curl -fsS -X POST -H "X-API-Key: $KEY" -H 'Content-Type: application/json' -d '{"templateID":"base"}' \
  "$URL/sandboxes" | jq -r .sandboxID)
/usr/bin/python3 bench/lib/agent_probe.py "$SERVER_DATA/runtime/runc/sandboxes/$SBX/disk/run/agent.sock" "$N_AGENT" \
  "$RAW/agent.json" || log "WARNING: the agent probe failed (skipped)"
curl -fsS -o /dev/null -X DELETE -H "X-API-Key: $KEY" "$URL/sandboxes/$SBX"

# ---- 3. Stockade's Java SDK (optional) -------------------------------------------------------
if [ "$JAVA_SDK" = 1 ]; then
  if [ -f "$WORK/jars/sdk.jar" ]; then
    log "Java SDK: create→first echo x$N_SDK_CREATE, echo x$N_SDK_ECHO"
    STOCKADE_URL="$URL" STOCKADE_API_KEY="$KEY" "$JAVA" -cp "$WORK/jars/sdk.jar:$WORK/jars/protocol.jar:$JACKSON_CP" "$WORK/SdkBench.java" \
      "$N_SDK_CREATE" "$N_SDK_ECHO" "$RAW/sdk.json" >"$WORK/sdk.log" 2>&1 \
      || { log "Java SDK bench failed (skipped):"; tail -15 "$WORK/sdk.log" >&2; rm -f "$RAW/sdk.json"; }
  else
    log "Java SDK: no sdk jar (the module does not build yet) — skipped"
  fi
fi

# ---- 4. the code interpreter (issue 3), with the Jupyter peer in the same run ----------------
if [ "$CODE_INTERPRETER" = 1 ]; then
  log "code interpreter: 1+1 x$N_CI_CELL (SDK, raw HTTP, agent, Jupyter), first import pandas x$N_CI_IMPORT, notebook x$N_CI_NOTEBOOK"
  mkdir -m 0700 "$WORK/ci"
  BENCH_DATA_DIR="$SERVER_DATA" BENCH_WORK="$WORK/ci" BENCH_OUT="$RAW/ci.json" BENCH_E2B_MODULES="$E2B_MODULES" \
    BENCH_N_CELL=$N_CI_CELL BENCH_N_IMPORT=$N_CI_IMPORT BENCH_N_NOTEBOOK=$N_CI_NOTEBOOK \
    node bench/ci-bench.mjs
fi

# ---- 6. issue 5: warm pools, sustained creates, density -------------------------------------
# pool_js MODE NAME [VAR=VALUE...]: bench/pool-bench.mjs against the current server -> $RAW/NAME.json.
# A failure is recorded in $RAW/NAME.error and the run goes on (the other figures stay valid).
pool_js() {
  local mode=$1 name=$2; shift 2
  if env "$@" BENCH_MODE="$mode" BENCH_DATA_DIR="$SERVER_DATA" BENCH_OUT="$RAW/$name.json" BENCH_E2B_MODULES="$E2B_MODULES" \
       BENCH_SERVER_PID="$SERVER_PGID" node bench/pool-bench.mjs 2>"$WORK/$name.log"; then
    grep '^\[pool-bench' "$WORK/$name.log" | tail -3 >&2 || true
  else
    failed "$name"
  fi
}
# failed NAME: the first error line of $WORK/NAME.log goes to stderr and into $RAW/NAME.error.
failed() {
  { grep -m1 -E 'Error|Exception|error:' "$WORK/$1.log" || tail -3 "$WORK/$1.log"; } >"$RAW/$1.error"
  log "WARNING: $1 failed: $(cat "$RAW/$1.error") (full log: kept in the raw directory as $1.log)"
  cp "$WORK/$1.log" "$RAW/$1.log"
  rm -f "$RAW/$1.json"
}
# pool_java seq|conc NAME N BURSTS POOL: bench/lib/SdkCreateBench.java (Stockade's Java SDK).
pool_java() {
  [ "$JAVA_SDK" = 1 ] && [ -f "$WORK/jars/sdk.jar" ] || return 0
  local cp="$WORK/jars/sdk.jar:$WORK/jars/protocol.jar:$JACKSON_CP"
  [ -d "$WORK/lib" ] && cp="$WORK/lib/*"
  STOCKADE_URL="$URL" STOCKADE_API_KEY="$KEY" "$JAVA" -cp "$cp" "$WORK/SdkCreateBench.java" "$1" "$3" "$4" "$5" \
    "$SERVER_DATA/runtime/runc/sandboxes" "$RAW/$2.json" >"$WORK/$2.log" 2>&1 || failed "$2"
}
# ci_pool NAME CASES POOL: bench/ci-pool-bench.mjs (first cell import pandas + describe()).
ci_pool() {
  [ "$CODE_INTERPRETER" = 1 ] || return 0
  BENCH_CASES=$2 BENCH_N=$N_P_CI BENCH_POOL=$3 BENCH_DATA_DIR="$SERVER_DATA" BENCH_OUT="$RAW/$1.json" \
    BENCH_E2B_MODULES="$E2B_MODULES" node bench/ci-pool-bench.mjs 2>"$WORK/$1.log" || failed "$1"
}

if [ "$POOLS" = 1 ]; then
  log "no pool: create→first echo x$N_P_SEQ sequential, $N_P_BURSTS burst(s) of $N_P_CONC concurrent (E2B JS SDK, Java SDK)"
  pool_js seq nopool-seq-js BENCH_N=$N_P_SEQ BENCH_POOL=0
  pool_java seq nopool-seq-java "$N_P_SEQ" 1 0
  pool_js conc nopool-conc-js BENCH_N=$N_P_CONC BENCH_BURSTS=$N_P_BURSTS BENCH_POOL=0
  pool_java conc nopool-conc-java "$N_P_CONC" "$N_P_BURSTS" 0
  log "no pool: first cell import pandas + describe() x$N_P_CI, in a new context and in a new sandbox's default context"
  ci_pool nopool-ci ctx,dflt 0
fi
stop_server

if [ "$POOLS" = 1 ] && [ "$HAS_POOL" = 1 ]; then
  SERVE_FLAGS=(--pool-size "$POOL_SEQ" --pool-preload "$POOL_PRELOAD")
  start_server pool
  log "pool of $POOL_SEQ (preload $POOL_PRELOAD): create→first echo x$N_P_SEQ sequential (E2B JS SDK, Java SDK)"
  pool_js seq pool-seq-js BENCH_N=$N_P_SEQ BENCH_POOL=$POOL_SEQ
  pool_java seq pool-seq-java "$N_P_SEQ" 1 "$POOL_SEQ"
  log "pool of $POOL_SEQ: first cell import pandas + describe() in a pooled sandbox's preloaded default context x$N_P_CI"
  ci_pool pool-ci dflt "$POOL_SEQ"
  if [ "$SUSTAINED" = 1 ]; then
    for c in 1 4; do
      log "pool of $POOL_SEQ: sustained create+echo+kill for $SUSTAIN_S s, $c client(s)"
      pool_js sustained "sustained-$c" BENCH_CLIENTS=$c BENCH_SECONDS=$SUSTAIN_S BENCH_POOL=$POOL_SEQ
    done
  fi
  stop_server
  SERVE_FLAGS=(--pool-size "$POOL_CONC" --pool-preload "$POOL_CONC_PRELOAD")
  start_server poolconc
  # The same sequential series as on `pool`, here with a pool that preloads nothing: how much of the
  # pooled figure is the refill's preload (an interpreter importing pandas) competing for the CPU.
  log "pool of $POOL_CONC (preload $POOL_CONC_PRELOAD): create→first echo x$N_P_SEQ sequential (E2B JS SDK, Java SDK)"
  pool_js seq poolnp-seq-js BENCH_N=$N_P_SEQ BENCH_POOL=$POOL_CONC
  pool_java seq poolnp-seq-java "$N_P_SEQ" 1 "$POOL_CONC"
  log "pool of $POOL_CONC (preload $POOL_CONC_PRELOAD): $N_P_BURSTS burst(s) of $N_P_CONC concurrent create→first echo (E2B JS SDK, Java SDK)"
  pool_js conc pool-conc-js BENCH_N=$N_P_CONC BENCH_BURSTS=$N_P_BURSTS BENCH_POOL=$POOL_CONC
  pool_java conc pool-conc-java "$N_P_CONC" "$N_P_BURSTS" "$POOL_CONC"
  stop_server
fi

if [ "$DENSITY" = 1 ]; then
  # No pool, and a cap above the bench's own bound. `serve --max-sandboxes` when the build has it,
  # else BenchServer with that cap set in its ServerConfig.
  cap=$(( DENSITY_MAX + 50 ))
  if [ "$HAS_MAX_SANDBOXES" = 1 ]; then
    SERVE_FLAGS=(--max-sandboxes "$cap")
    [ "$HAS_POOL" = 1 ] && SERVE_FLAGS+=(--pool-size 0)
  else
    SERVER_VIA=java
    export BENCH_MAX_SANDBOXES=$cap
  fi
  start_server density
  log "density: $DENSITY_STEP idle sandboxes at a time until echo p99 > 50 ms, host memory > 80 % or $DENSITY_MAX sandboxes"
  pool_js density density BENCH_STEP=$DENSITY_STEP BENCH_MAX=$DENSITY_MAX BENCH_PROBES=$DENSITY_PROBES
  stop_server
  SERVER_VIA=""
  unset BENCH_MAX_SANDBOXES
fi

# ---- 7. issue 7: load, two tenants, mixed API (bench/load.sh starts and stops its own server) --
if [ "$LOAD" = 1 ]; then
  if [ "$MODE" = launcher ]; then
    log "load: bench/load.sh ${LOAD_ARGS[*]} (open loop, two tenants, mixed API calls)"
    # Built above; its tables are printed after the report. A failure is recorded and the run goes on.
    if ! LOAD_SKIP_BUILD=1 bash bench/load.sh "${LOAD_ARGS[@]}" >"$RAW/load.md" 2>"$WORK/load.log"; then
      failed load
    fi
  else
    log "load: skipped (bench/load.sh runs the launcher's build, and this run has none)"
  fi
fi

# ---- 5. diagnostic: the same server with TCP_NODELAY on its HTTP sockets --------------------
if [ "$DIAG" = 1 ]; then
  start_server nodelay -Dsun.net.httpserver.nodelay=true
  export E2B_API_URL="$URL" E2B_SANDBOX_URL="$URL" E2B_API_KEY="$KEY"
  log "what-if TCP_NODELAY: create→first echo x$N_DIAG_CREATE, echo x$N_DIAG_ECHO, python x$N_DIAG_PY, file x$N_DIAG_FILE"
  BENCH_DATA_DIR="$SERVER_DATA" BENCH_OUT="$RAW/diag-nodelay.json" BENCH_E2B_MODULES="$E2B_MODULES" \
    BENCH_N_CREATE=$N_DIAG_CREATE BENCH_N_ECHO=$N_DIAG_ECHO BENCH_N_PY=$N_DIAG_PY BENCH_N_FILE=$N_DIAG_FILE \
    node bench/e2b-bench.mjs
  stop_server
fi

fi   # BASELINES_ONLY

# ---- report ----------------------------------------------------------------------------------
jq --argjson s "$(( $(date +%s) - START ))" '. + {bench_seconds: $s}' "$RAW/machine.json" >"$RAW/m.tmp" \
  && mv "$RAW/m.tmp" "$RAW/machine.json"
mkdir -p bench/results
node bench/lib/report.mjs "$RAW" bench/results/latest.json
# Raw samples, for anyone who wants other statistics.
node -e '
const fs = require("fs"), path = require("path"), dir = process.argv[1], out = {};
for (const f of fs.readdirSync(dir)) {
  if (!f.endsWith(".json") || f === "machine.json") continue;
  const d = JSON.parse(fs.readFileSync(path.join(dir, f), "utf8"));
  out[f.replace(/\.json$/, "")] = d.results ? d.results[0].times.map((s) => +(s * 1000).toFixed(4)) : d;
}
fs.writeFileSync(process.argv[2], JSON.stringify(out) + "\n");
' "$RAW" bench/results/latest-samples.json
# The raw files too (every sample, the server commands, errors), so a plot or a table can be redone.
rm -rf bench/results/raw && cp -r "$RAW" bench/results/raw
if /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  MPLCONFIGDIR="$WORK/mpl" /usr/bin/python3 bench/lib/plot.py "$RAW" "$PLOT_OUT" >&2 \
    || log "WARNING: the plot failed"
fi
if [ -s "$RAW/load.md" ]; then
  echo
  echo "## Load: two tenants, mixed API (bench/load.sh ${LOAD_ARGS[*]})"
  echo
  cat "$RAW/load.md"
fi
log "done in $(( $(date +%s) - START )) s; wrote bench/results/latest.json, latest-samples.json and $PLOT_OUT"
