#!/usr/bin/env bash
# Issue 15's soak at full size: starts a server (no pool) on a free loopback port with a fresh data
# directory, runs bench/lib/limits_bench.py against it — a neighbour's `echo` every 100 ms, idle,
# then while ten sandboxes are each held at a limit (2 x full disk, fork storm, memory bomb, endless
# output, CPU spin; the server's default limits unless a case needs one), then idle again; each of
# the ten, still at its limit, runs `echo ok`, serves its files and is killed leaving nothing on the
# host — stops the server by its pid, checks that nothing of its data directory is left, removes it.
# Prints Markdown tables (the neighbour's median/p99 per window, storm p99 / idle p99 against the
# issue's 2x, one row per noisy sandbox) and the machine's load; exits 1 when a check failed.
# Run as root. Options are passed to limits_bench.py:
#
#   bench/limits.sh [--tier runc|runsc] [--samples N] [--noisy-cpus X] [--warmup-seconds S]
#                   [--cases disk,fork,memory,output,cpu]
#
# --samples: echo round trips per window (default 300: 30 s each); --noisy-cpus caps each noisy
# sandbox's cpus (default: the server's default, 1.0; LimitsSoakIT, the CI-sized soak, uses 0.1);
# --cases keeps only the pairs of those kinds (which storm costs the neighbour what).
# Environment: LIMITS_SKIP_BUILD=1 runs cli/target's server as it is (no ./stockade rebuild);
# LIMITS_SERVER_ARGS adds options to its `stockade serve` (e.g. "--output-rate 0" for an unpaced relay).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source "$ROOT/bench/lib/leftovers.sh"
log() { echo "[limits.sh $(date +%H:%M:%S)] $*" >&2; }
case " $* " in *" -h "*|*" --help "*) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;; esac
[ "$(id -u)" = 0 ] || { echo "limits.sh: run as root" >&2; exit 1; }
WORK=$(mktemp -d /tmp/stockade-limits.XXXXXX)
chmod 0711 "$WORK"
PID=""
finish() {
  stop_pid "$PID"
  remove_leftovers "$WORK"
  remove_work "$WORK"
}
trap finish EXIT
export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}
# As bench/load.sh: the launcher's build (./stockade --help builds when stale), run from a private
# copy of cli/target, so other work in this tree that rebuilds it cannot change the running server.
if [ "${LIMITS_SKIP_BUILD:-0}" != 1 ]; then
  log "building through the launcher (./stockade --help builds when stale)"
  ./stockade --help >/dev/null 2>"$WORK/build.log" || { cat "$WORK/build.log" >&2; exit 1; }
fi
[ -d cli/target/classes ] && [ -d cli/target/lib ] || { echo "limits.sh: no build in cli/target (run ./stockade --help once)" >&2; exit 1; }
mkdir -p "$WORK/cli"
cp -r cli/target/classes cli/target/lib "$WORK/cli/"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
mkdir -m 0711 "$WORK/data"
env -u STOCKADE_API_KEY "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$WORK/cli/classes:$WORK/cli/lib/*" \
  dev.stockade.cli.Main serve --port "$PORT" --data-dir "$WORK/data" --pool-size 0 ${LIMITS_SERVER_ARGS:-} >"$WORK/server.log" 2>&1 </dev/null &
PID=$!
wait_listening "$PORT" "$PID" || { cat "$WORK/server.log" >&2; exit 1; }
echo "Machine: $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB, $(uname -r), runc $(runc --version | head -1 | awk '{print $3}'); commit $(git rev-parse --short=12 HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (uncommitted changes)'); $(date -u +%Y-%m-%dT%H:%M:%SZ); load average at the start: $LOAD_START. Command: ${LIMITS_SERVER_ARGS:+LIMITS_SERVER_ARGS=\"$LIMITS_SERVER_ARGS\" }bench/limits.sh $*"
echo
RC=0
/usr/bin/python3 bench/lib/limits_bench.py "http://127.0.0.1:$PORT" "$WORK/data/api-key" "$WORK/data" "$@" || RC=$?
echo
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $RC
