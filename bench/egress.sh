#!/usr/bin/env bash
# The egress proxy's cost, measured beside its baseline in the same run: a site on the host's
# loopback (bench/lib/egress_site.py) is fetched N times (one new connection per request, 2-byte
# answers) and a 100 MiB body 3 times, (a) on the host straight to the site, (b) from a sandbox
# through the relay and the egress proxy (allow-list policy). bench/lib/egress_probe.py does both.
# Prints a Markdown table; docs/BENCHMARKS.md records it. Run as root.
#
#   bench/egress.sh [--quick]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
N=300
[ "${1:-}" = --quick ] && N=30
PY=/usr/bin/python3
WORK=$(mktemp -d /tmp/stockade-egress-bench.XXXXXX)
chmod 0711 "$WORK"
SITE_PID="" SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -TERM "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  [ -n "$SITE_PID" ] && kill "$SITE_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "[egress-bench $(date +%H:%M:%S)] $*" >&2; }

"$PY" bench/lib/egress_site.py > "$WORK/site.port" &
SITE_PID=$!
for _ in $(seq 50); do [ -s "$WORK/site.port" ] && break; sleep 0.1; done
SITE_PORT=$(cat "$WORK/site.port")
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export STOCKADE_API_KEY="e2b_$(head -c 20 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export STOCKADE_URL="http://127.0.0.1:$PORT"
log "server on $STOCKADE_URL, site on 127.0.0.1:$SITE_PORT"
./stockade serve --port "$PORT" --data-dir "$WORK/data" --egress-private 127.0.0.1/32 \
  --egress-host "site.test=127.0.0.1" > "$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do curl -sf "$STOCKADE_URL/health" >/dev/null && break; sleep 0.1; done
ID=$(curl -sf -X POST "$STOCKADE_URL/sandboxes" -H "X-API-Key: $STOCKADE_API_KEY" -H 'Content-Type: application/json' \
  -d "{\"templateID\":\"base\",\"timeout\":600,\"network\":{\"allowOut\":[\"site.test:$SITE_PORT\"]}}" | jq -r .sandboxID)
./stockade cp bench/lib/egress_probe.py "$ID:/home/user/egress_probe.py" >/dev/null
log "baseline: host → site directly ($N requests)"
"$PY" bench/lib/egress_probe.py --url "http://site.test:$SITE_PORT" --n "$N" --direct "127.0.0.1:$SITE_PORT" > "$WORK/direct.json"
log "sandbox → relay → egress proxy → site ($N requests)"
./stockade exec "$ID" -- "$PY" /home/user/egress_probe.py --url "http://site.test:$SITE_PORT" --n "$N" > "$WORK/proxy.json"
curl -sf -X DELETE "$STOCKADE_URL/sandboxes/$ID" -H "X-API-Key: $STOCKADE_API_KEY" >/dev/null

"$PY" - "$WORK/direct.json" "$WORK/proxy.json" "$N" <<'PYEOF'
import json, statistics, sys
d, p = (json.load(open(f)) for f in sys.argv[1:3])
def q(xs, f):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(f * len(xs)))]
print("| %s requests, one connection each | median | p99 |" % sys.argv[3])
print("|---|---|---|")
for name, r in (("host → site (baseline)", d), ("sandbox → relay → proxy → site", p)):
    print("| %s | %.2f ms | %.2f ms |" % (name, statistics.median(r["small_ms"]), q(r["small_ms"], 0.99)))
print("| added by the egress path | %.2f ms | |" % (statistics.median(p["small_ms"]) - statistics.median(d["small_ms"])))
print()
print("| 100 MiB body | median of %d runs |" % len(d["big_mib_s"]))
print("|---|---|")
for name, r in (("host → site (baseline)", d), ("sandbox → relay → proxy → site", p)):
    print("| %s | %.0f MiB/s |" % (name, statistics.median(r["big_mib_s"])))
PYEOF
