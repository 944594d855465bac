#!/usr/bin/env bash
# Stockade benchmark, part 1b: raw runc baselines, no Stockade code involved.
#   runc-baseline.sh WORKDIR OUTDIR N_RUN N_EXEC
# Builds a minimal OCI bundle under WORKDIR (mode 0711): a rootfs of empty mount points, /usr
# bind-mounted read-only from the host and the Debian bin/lib/lib64/sbin -> usr/* symlinks, and the
# config that `runc spec` generates (pid, ipc, uts, mount, network namespaces; runc's default
# capabilities, masked paths and /dev; no seccomp; no cgroup limits; read-only root). A second
# config adds a user namespace (container root -> host uid 3000000, 65536 ids), as Stockade uses.
# Writes hyperfine JSON exports into OUTDIR:
#   runc-run-python.json          runc run  … /usr/bin/python3 -c pass   (no user namespace)
#   runc-run-python-userns.json   the same with a user namespace
#   runc-exec-true.json           runc exec /bin/true into a running container (no user namespace)
#   runc-state.json               runc state of that running container
set -euo pipefail
WORK=$1
OUT=$2
N_RUN=${3:-30}
N_EXEC=${4:-30}
ID="benchbase-$$"

mkdir -p -m 0711 "$WORK"
chmod 0711 "$WORK"
B="$WORK/bundle"
mkdir -p -m 0755 "$B/rootfs"
(
  cd "$B/rootfs"
  mkdir -p usr proc dev sys tmp etc
  for l in bin lib lib64 sbin; do [ -e "/usr/$l" ] && ln -sfn "usr/$l" "$l"; done
)
(cd "$B" && rm -f config.json && runc spec)
jq '.process.terminal = false
  | .process.args = ["/usr/bin/python3", "-c", "pass"]
  | .root = {"path": "rootfs", "readonly": true}
  | .mounts += [{"destination": "/usr", "type": "none", "source": "/usr", "options": ["rbind", "ro", "nosuid", "nodev"]},
                {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "size=16m"]}]' \
  "$B/config.json" > "$B/config.plain.json"
# User namespace variant: container ids 0..65535 -> host 3000000..; drop the gid=5 devpts option
# (gid 5 is mapped, but keep the variant close to what Stockade does).
jq '.linux.namespaces += [{"type": "user"}]
  | .linux.uidMappings = [{"containerID": 0, "hostID": 3000000, "size": 65536}]
  | .linux.gidMappings = [{"containerID": 0, "hostID": 3000000, "size": 65536}]' \
  "$B/config.plain.json" > "$B/config.userns.json"
jq '.process.args = ["/usr/bin/sleep", "600"]' "$B/config.plain.json" > "$B/config.sleep.json"

cleanup() {
  runc delete --force "$ID-exec" >/dev/null 2>&1 || true
  runc delete --force "$ID-run" >/dev/null 2>&1 || true
}
trap cleanup EXIT

cp "$B/config.plain.json" "$B/config.json"
# Sanity: the container really runs python.
runc run --bundle "$B" "$ID-run" </dev/null >/dev/null 2>"$WORK/runc-check.err" || {
  echo "runc-baseline: runc run failed:" >&2; cat "$WORK/runc-check.err" >&2; exit 1; }
hyperfine -N --style none --warmup 3 --runs "$N_RUN" --export-json "$OUT/runc-run-python.json" \
  "runc run --bundle $B $ID-run" >/dev/null

cp "$B/config.userns.json" "$B/config.json"
if runc run --bundle "$B" "$ID-run" </dev/null >/dev/null 2>"$WORK/runc-check.err"; then
  hyperfine -N --style none --warmup 3 --runs "$N_RUN" --export-json "$OUT/runc-run-python-userns.json" \
    "runc run --bundle $B $ID-run" >/dev/null
else
  echo "runc-baseline: user-namespace variant failed (skipped):" >&2; cat "$WORK/runc-check.err" >&2
fi

cp "$B/config.sleep.json" "$B/config.json"
runc run --detach --bundle "$B" "$ID-exec" </dev/null >/dev/null 2>&1
hyperfine -N --style none --warmup 3 --runs "$N_EXEC" --export-json "$OUT/runc-exec-true.json" \
  "runc exec $ID-exec /bin/true" >/dev/null
# `runc state` of a running container: Stockade calls it once per create, after `runc run`.
hyperfine -N --style none --warmup 3 --runs "$N_EXEC" --export-json "$OUT/runc-state.json" \
  "runc state $ID-exec" >/dev/null
