#!/usr/bin/env bash
# Stockade benchmark, part 1c: other sandboxes running python3 -c pass, no Stockade code involved.
#   sandbox-baselines.sh BUNDLE OUTDIR N_RUN
# BUNDLE is the OCI bundle bench/lib/runc-baseline.sh built (its config.plain.json: runc spec's
# defaults, read-only root of empty mount points, host /usr bind-mounted read-only, a tmpfs /tmp).
# Writes hyperfine JSON exports into OUTDIR, or, when a runtime cannot run here, OUTDIR/NAME.error
# with its exact error:
#   runsc-run-python.json  gVisor: runsc --network=none run … python3 -c pass (the same bundle; the
#                          runsc platform is its default, ptrace, recorded in runsc-info.json;
#                          --ignore-cgroups only if the plain command fails)
#   bwrap-python.json      bubblewrap: --unshare-all (user, pid, net, ipc, uts, cgroup namespaces),
#                          /usr read-only, the same symlinks, /proc, /dev, a tmpfs /tmp, --die-with-parent
set -euo pipefail
B=$1
OUT=$2
N_RUN=${3:-30}
ID="benchrunsc-$$"
CFG="$B/config.runsc.json"

jq '.process.args = ["/usr/bin/python3", "-c", "pass"]' "$B/config.plain.json" >"$CFG"
cleanup() { runsc delete --force "$ID" >/dev/null 2>&1 || true; rm -f "$CFG"; }
trap cleanup EXIT

# runsc reads config.json from the bundle: hyperfine swaps nothing, so the bundle gets this config
# for the duration (runc-baseline.sh is done with it by now).
cp "$CFG" "$B/config.json"
flags="--network=none"
if ! runsc $flags run --bundle "$B" "$ID" </dev/null >/dev/null 2>"$OUT/runsc.err"; then
  flags="--network=none --ignore-cgroups"
  if ! runsc $flags run --bundle "$B" "$ID" </dev/null >/dev/null 2>>"$OUT/runsc.err"; then
    { echo "runsc could not run here ($(runsc --version 2>&1 | head -1)):"; cat "$OUT/runsc.err"; } >"$OUT/runsc-run-python.error"
    flags=""
  fi
fi
if [ -n "$flags" ]; then
  hyperfine -N --style none --warmup 3 --runs "$N_RUN" --export-json "$OUT/runsc-run-python.json" \
    "runsc $flags run --bundle $B $ID" >/dev/null
  jq -n --arg v "$(runsc --version 2>&1 | head -1)" --arg flags "$flags" \
    --arg platform "$(runsc flags 2>&1 | grep -A1 -- '-platform string' | sed -n 's/.*(default "\(.*\)").*/\1/p')" \
    '{version: $v, flags: $flags, platform: $platform}' >"$OUT/runsc-info.json"
fi
rm -f "$OUT/runsc.err"

BWRAP=(bwrap --unshare-all --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin --symlink usr/lib /lib
  --symlink usr/lib64 /lib64 --symlink usr/sbin /sbin --proc /proc --dev /dev --tmpfs /tmp /usr/bin/python3 -c pass)
if "${BWRAP[@]}" </dev/null >/dev/null 2>"$OUT/bwrap.err"; then
  hyperfine -N --style none --warmup 3 --runs "$N_RUN" --export-json "$OUT/bwrap-python.json" "${BWRAP[*]}" >/dev/null
  jq -n --arg v "$(bwrap --version)" '{version: $v}' >"$OUT/bwrap-info.json"
else
  { echo "bwrap could not run here:"; cat "$OUT/bwrap.err"; } >"$OUT/bwrap-python.error"
fi
rm -f "$OUT/bwrap.err"
