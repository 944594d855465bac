# Sourced by the bench scripts (also stop_pid and wait_listening, below). remove_leftovers DIR: a
# server that was stopped must leave nothing under its data directory DIR; anything there is a
# server bug, so report it, then remove what is ours: runc containers whose bundle lies under DIR,
# runsc containers under any DIR/.../runtime/runsc/state (the hardened tier keeps its own container
# state there), and mounts under DIR (deepest first). Needs a `log` function in the caller.
remove_leftovers() {
  local dir=$1 left root id
  if command -v runc >/dev/null && command -v jq >/dev/null; then
    left=$(runc list --format json 2>/dev/null | jq -r --arg w "$dir/" '.[]? | select(.bundle | startswith($w)) | .id' || true)
    if [ -n "$left" ]; then
      log "WARNING: the server left containers behind: $left (removing them)"
      for c in $left; do runc delete --force "$c" >/dev/null 2>&1 || true; done
    fi
  fi
  if command -v runsc >/dev/null; then
    for root in $(find "$dir" -maxdepth 5 -type d -path '*/runtime/runsc/state' 2>/dev/null); do
      for id in $(runsc --root "$root" list -quiet 2>/dev/null || true); do
        log "WARNING: the server left runsc container $id behind under $root (removing it)"
        runsc --root "$root" delete -force "$id" >/dev/null 2>&1 || true
      done
    done
  fi
  { grep -F " $dir/" /proc/self/mounts || true; } | awk '{print $2}' | sort -r | while read -r mnt; do
    log "WARNING: the server left a mount behind: $mnt (unmounting)"
    umount -l "$mnt" 2>/dev/null || true
  done
}

# stop_pid PID: SIGTERM, up to 60 s for it to end, then SIGKILL (by pid, never by name).
stop_pid() {
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    log "WARNING: server $pid did not stop in 60 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 1
  fi
}

# remove_work DIR: removes a bench script's scratch directory unless something is still mounted
# under it (then it stays, with a warning: removing it would reach into a live mount).
remove_work() {
  if grep -qF " $1/" /proc/self/mounts; then
    log "WARNING: mounts remain under $1; leaving it in place"
  else
    rm -rf "$1"
  fi
}

# wait_listening PORT PID: until the server PID (started by the caller) accepts connections on
# 127.0.0.1:PORT; fails when it ended or after 120 s.
wait_listening() {
  /usr/bin/python3 - "$1" "$2" <<'PY'
import os, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
for _ in range(1200):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        os.kill(pid, 0)
        time.sleep(0.1)
sys.exit("the server did not listen within 120 s")
PY
}
