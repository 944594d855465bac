#!/usr/bin/env bash
# Installs what Stockade needs on a Debian 12 host, idempotently: the OCI runtime, the Python
# packages of the default template (IPython, numpy, pandas, matplotlib, scipy for the code
# interpreter), and Node packages for the E2B SDK test suite. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v runc >/dev/null 2>&1 || need+=(runc)
# The hardened tier (gVisor), and the C compiler it uses once to build its template's
# compatibility library (policy/runsc.json, docs/runtime-runsc.md).
command -v runsc >/dev/null 2>&1 || need+=(runsc)
command -v cc >/dev/null 2>&1 || need+=(gcc)
[ -f /usr/include/stdio.h ] || need+=(libc6-dev)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
command -v mvn >/dev/null 2>&1 || need+=(maven)
[ -x /usr/bin/python3 ] || need+=(python3)
command -v curl >/dev/null 2>&1 || need+=(curl)
# Each sandbox's disk is an ext4 image of its own (mkfs.ext4, resize2fs; ARCHITECTURE.md "The
# sandbox's disk").
command -v mkfs.ext4 >/dev/null 2>&1 || need+=(e2fsprogs)
# The default template's data-science stack (the code interpreter): Debian's packages, bound
# read-only into every sandbox with the host's /usr.
for pkg in python3-numpy python3-pandas python3-matplotlib python3-scipy python3-ipython python3-pip; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "install-deps: need root to install ${need[*]} (apt-get)" >&2
    exit 1
  fi
  echo "install-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

if [ -f tests/e2b-js/package-lock.json ] && [ ! -d tests/e2b-js/node_modules/e2b ]; then
  echo "install-deps: installing the E2B SDK test suite's npm packages"
  (cd tests/e2b-js && npm ci --no-audit --no-fund --loglevel=error)
fi
