#!/usr/bin/env bash
# Issue 16 point 3: a command's round trip hop by hop (bench/cmdpath.mjs), against a server started
# here from this tree's jars (after `mvn -B -ntp -q -DskipTests verify`), no pool. As root:
#   bench/cmdpath.sh [ROUNDS]        prints a Markdown table (medians, p99s) on stdout
# BENCH_LIB=DIR runs the server from another build's jars (a directory like cli/target/lib), e.g.
# the commit before a change, for a before/after on the same machine minutes apart.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
source scripts/env.sh >/dev/null
WORK=$(mktemp -d /tmp/stockade-cmdpath.XXXXXX)
chmod 0711 "$WORK"
mkdir -m 0711 "$WORK/data"
cp -r "${BENCH_LIB:-cli/target/lib}" "$WORK/lib"   # private copies: a rebuild cannot pull classes from under the server
cp bench/lib/BenchServer.java "$WORK/"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
KEY="e2b_$(od -An -tx1 -N20 /dev/urandom | tr -d ' \n')"
setsid "$JAVA_HOME/bin/java" --enable-native-access=ALL-UNNAMED -cp "$WORK/lib/*" "$WORK/BenchServer.java" \
  "$WORK/data" "$PORT" "$KEY" >"$WORK/server.log" 2>&1 </dev/null &
PGID=$!
# set -e holds in the trap too: the server's exit status (143) must not stop the clean-up.
trap 'kill -TERM -- -$PGID 2>/dev/null || true; wait $PGID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 600); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && break
  kill -0 "$PGID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
  sleep 0.1
done
echo "loadavg at start: $(cat /proc/loadavg)" >&2
E2B_API_URL="http://127.0.0.1:$PORT" E2B_SANDBOX_URL="http://127.0.0.1:$PORT" E2B_API_KEY="$KEY" \
  BENCH_DATA_DIR="$WORK/data" BENCH_N="${1:-200}" BENCH_E2B_MODULES="${BENCH_E2B_MODULES:-$ROOT/tests/e2b-js/node_modules}" \
  node bench/cmdpath.mjs
echo "loadavg at end: $(cat /proc/loadavg)" >&2
