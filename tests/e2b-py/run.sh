#!/usr/bin/env bash
# Run E2B's OWN Python SDK tests (e2b-dev/E2B packages/python-sdk/tests,
# unmodified, with the SDK source of the same commit) against an E2B-compatible
# server such as Stockade.
#
#   run.sh <E2B git dir> <directory of dependency git dirs>
#
# The E2B SDK cannot be pip-installed here (no PyPI). It runs on Debian's
# python3 with Debian's httpx/h2/attrs/dateutil/packaging/rich/bracex, the
# pure-Python dependencies Debian lacks (or has too old) taken from git copies
# of their repositories at the versions the SDK's lockfile asks for, and
# pyqwest-standin/ (ours) instead of pyqwest, the SDK's one native dependency.
# Nothing is installed with pip and nothing of the fetched repositories is
# copied anywhere but a temporary work dir, deleted on exit.
#
# The second argument holds one git directory (bare, or a work tree with .git)
# per dependency, found as <dir>/<owner>+<name>/repo, <dir>/<owner>+<name> or
# <dir>/<name>; see DEPS below for the repositories and refs.
#
# Required environment: E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY.
# Optional:
#   E2B_PY_TESTS_GROUPS=core,pause,...  only these groups (default: all in IN_SCOPE)
#   E2B_PY_TESTS_ONLY=<regex>           only test files whose path matches
#   E2B_PY_TESTS_K=<expr>               passed to pytest -k
#   E2B_PY_TESTS_REF=<ref>              E2B ref (default HEAD)
#   E2B_PY_TESTS_TIMEOUT=<s>            per-test timeout (default: pytest.ini's 30)
#   E2B_PY_TESTS_JUNIT=<file>           keep the JUnit XML report
#   E2B_PY_TESTS_KEEP_WORKDIR=1         keep the work dir
#   E2B_PY_SKIP_APT=1                   do not run apt-get (packages already there)
#   E2B_PY_SMOKE=1                      run smoke.py (create/run/files/list/kill) instead
# The last line of the output is `N passed, M failed`. Exit status: 0 = no
# failures, 1 = failures, 2 = setup error.
set -uo pipefail

die() { echo "run.sh: $*" >&2; exit 2; }
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 2 ] || die "usage: run.sh <E2B git dir> <directory of dependency git dirs>"
for v in E2B_API_URL E2B_SANDBOX_URL E2B_API_KEY; do
  [ -n "${!v:-}" ] || die "$v must be set"
done
export E2B_SANDBOX_URL="${E2B_SANDBOX_URL%/}"
# The tests treat the mere presence of E2B_DEBUG as debug mode (skips most of them).
unset E2B_DEBUG E2B_ACCESS_TOKEN E2B_DOMAIN

gitdir() { # a bare git dir or a work tree -> the git dir
  if [ -d "$1/.git" ]; then echo "$1/.git"; elif git --git-dir="$1" rev-parse --git-dir >/dev/null 2>&1; then echo "$1"; else return 1; fi
}
E2B_GIT=$(gitdir "$1") || die "not a git directory: $1"
DEPS_DIR="$2"
E2B_REF="${E2B_PY_TESTS_REF:-HEAD}"

# ------------------------------------------------------------ Debian packages
# Debian 12: httpx 0.23 (the SDK asks for >=0.27; the API it uses is there),
# attrs 22.2, packaging 23, rich 13 (only the template-build logger uses it).
APT_PKGS="python3 python3-httpx python3-h2 python3-attr python3-dateutil python3-packaging python3-rich python3-bracex python3-pygments python3-six"
PY=/usr/bin/python3
if [ "${E2B_PY_SKIP_APT:-}" != 1 ]; then
  missing=$(for p in $APT_PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"; done)
  if [ -n "$missing" ]; then
    echo "== apt-get install $missing"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing; } >/dev/null \
      || die "apt-get install failed ($missing)"
  fi
fi
[ -x "$PY" ] || die "$PY not found"

# ------------------------------------------------------------ work dir
WORK=$(mktemp -d /tmp/e2b-py-tests.XXXXXX)
cleanup() { [ "${E2B_PY_TESTS_KEEP_WORKDIR:-}" = 1 ] && echo "work dir kept: $WORK" >&2 || rm -rf "$WORK"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
SITE="$WORK/site"
mkdir -p "$SITE" "$WORK/e2b"

git --git-dir="$E2B_GIT" archive "$E2B_REF" packages/python-sdk | tar -x -C "$WORK/e2b" \
  || die "git archive of packages/python-sdk failed ($E2B_GIT $E2B_REF)"
SDK="$WORK/e2b/packages/python-sdk"
E2B_COMMIT=$(git --git-dir="$E2B_GIT" rev-parse "$E2B_REF")
SDK_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' "$SDK/pyproject.toml" | head -1)

# A dist-info directory per package: importlib.metadata.version() (the SDK and
# connectrpc read their own versions) and pytest's plugin entry points.
distinfo() { # name version [entry_points.txt content]
  local d="$SITE/$1-$2.dist-info"
  mkdir -p "$d"
  printf 'Metadata-Version: 2.1\nName: %s\nVersion: %s\n' "$1" "$2" >"$d/METADATA"
  [ -n "${3:-}" ] && printf '%s\n' "$3" >"$d/entry_points.txt"
  return 0
}

# ------------------------------------------------------------ pure-Python deps
# name  repository  ref  paths to put on sys.path (repo-relative; a dir or a .py)  version
# Refs are the versions the SDK's uv.lock resolved where the repository tags
# them; connectrpc 0.11.1 and protobuf-py 0.1.1 are untagged (HEAD).
DEPS="
connectrpc        connectrpc/connect-python        HEAD     src/connectrpc                       0.11.1
protobuf-py       bufbuild/protobuf-py             HEAD     src/protobuf                         0.1.1
dockerfile-parse  containerbuildsystem/dockerfile-parse 2.0.1 dockerfile_parse                   2.0.1
typing_extensions python/typing_extensions         4.15.0   src/typing_extensions.py             4.15.0
wcmatch           facelessuser/wcmatch             10.1     wcmatch                              10.1
pytest            pytest-dev/pytest                9.1.1    src/_pytest,src/pytest,src/py.py     9.1.1
pluggy            pytest-dev/pluggy                1.6.0    src/pluggy                           1.6.0
iniconfig         pytest-dev/iniconfig             v2.1.0   src/iniconfig                        2.1.0
pytest-asyncio    pytest-dev/pytest-asyncio        v1.4.0   pytest_asyncio                       1.4.0
pytest-timeout    pytest-dev/pytest-timeout        2.4.0    pytest_timeout.py                    2.4.0
"
find_dep() { # owner/name -> git dir
  local o="${1%%/*}" n="${1##*/}" c
  for c in "$DEPS_DIR/$o+$n/repo" "$DEPS_DIR/$o+$n" "$DEPS_DIR/$n"; do
    [ -e "$c" ] && gitdir "$c" && return 0
  done
  return 1
}
echo "== E2B python-sdk $SDK_VERSION @ ${E2B_COMMIT:0:8} ($E2B_GIT)"
while read -r name repo ref paths version; do
  [ -z "${name:-}" ] && continue
  g=$(find_dep "$repo") || die "no git copy of $repo under $DEPS_DIR (fetch it: github:$repo)"
  git --git-dir="$g" rev-parse -q --verify "$ref^{commit}" >/dev/null || die "$repo has no ref $ref"
  mkdir -p "$WORK/src/$name"
  # Only the paths used: snapshots may lack large files elsewhere in the tree.
  git --git-dir="$g" archive "$ref" -- ${paths//,/ } | tar -x -C "$WORK/src/$name" || die "git archive of $repo $ref failed"
  for p in ${paths//,/ }; do
    [ -e "$WORK/src/$name/$p" ] || die "$repo@$ref has no $p"
    cp -r "$WORK/src/$name/$p" "$SITE/"
  done
  echo "   $name $version <- $repo@$ref ($(git --git-dir="$g" rev-parse --short "$ref^{commit}"))"
  case "$name" in
    pytest-asyncio) distinfo pytest_asyncio "$version" $'[pytest11]\nasyncio = pytest_asyncio.plugin' ;;
    pytest-timeout) distinfo pytest_timeout "$version" $'[pytest11]\ntimeout = pytest_timeout' ;;
    *) distinfo "$name" "$version" ;;
  esac
done <<<"$DEPS"
# Versions that setuptools-scm would have written at build time.
printf 'version = "9.1.1"\n__version__ = version\nversion_tuple = (9, 1, 1)\n' >"$SITE/_pytest/_version.py"
printf 'version = "1.6.0"\n__version__ = version\nversion_tuple = (1, 6, 0)\n' >"$SITE/pluggy/_version.py"
printf 'version = "2.1.0"\n__version__ = version\nversion_tuple = (2, 1, 0)\n' >"$SITE/iniconfig/_version.py"
# The SDK itself (source of the same commit as the tests) and the stand-in.
cp -r "$SDK/e2b" "$SITE/"
distinfo e2b "$SDK_VERSION"
cp -r "$HERE/pyqwest-standin/pyqwest" "$SITE/"
distinfo pyqwest 0.10.0
export PYTHONPATH="$SITE" PYTHONNOUSERSITE=1 PYTHONDONTWRITEBYTECODE=1
"$PY" -c 'import e2b, pytest, pytest_asyncio, pytest_timeout, connectrpc, protobuf' \
  || die "the assembled environment does not import (see above)"
if [ "${E2B_PY_SMOKE:-}" = 1 ]; then
  echo "== smoke: $HERE/smoke.py against $E2B_API_URL"
  "$PY" "$HERE/smoke.py"
  exit $?
fi

# ------------------------------------------------------------ test selection
# group  file (relative to tests/); {f} stands for sync and for async, as E2B
# lays the two flavours out (tests/sync/sandbox_sync/..., tests/async/sandbox_async/...).
IN_SCOPE_FLAVOURS="
core     {f}/api_{f}/test_sbx_info.py
core     {f}/api_{f}/test_sbx_kill.py
core     {f}/api_{f}/test_sbx_list.py
core     {f}/sandbox_{f}/test_create.py
core     {f}/sandbox_{f}/test_connect.py
core     {f}/sandbox_{f}/test_kill.py
core     {f}/sandbox_{f}/test_timeout.py
core     {f}/sandbox_{f}/test_config_propagation.py
core     {f}/sandbox_{f}/commands/
core     {f}/sandbox_{f}/files/
pause    {f}/api_{f}/test_sbx_snapshot.py
pause    {f}/sandbox_{f}/test_snapshot.py
metrics  {f}/sandbox_{f}/test_metrics.py
signing  {f}/sandbox_{f}/test_secure.py
pty      {f}/sandbox_{f}/pty/
"
IN_SCOPE="${IN_SCOPE_FLAVOURS//\{f\}/sync}${IN_SCOPE_FLAVOURS//\{f\}/async}
core     sync/sandbox_sync/test_sync_client_lifecycle.py
git      shared/git/
"
# Not run (reasons as for the JS runner, see README.md): template_*/ (template
# builds), volume_*/ (volumes, msw-like mock), secret_*/ (secrets API),
# test_fork (VM fork), test_host (port host), test_internet_access and
# test_network (egress rules, internet, httpbin template), test_snapshot_api
# (template snapshots), test_snapshot_filesystem_only (VM cold boot),
# shared/{api,sandbox,template}/ (client-side unit tests).
FILES=()
ARGS_DESELECT=()
while read -r group path; do
  [ -z "${group:-}" ] && continue
  if [ -n "${E2B_PY_TESTS_GROUPS:-}" ] && ! [[ ",$E2B_PY_TESTS_GROUPS," == *",$group,"* ]]; then continue; fi
  if [ -n "${E2B_PY_TESTS_ONLY:-}" ] && ! [[ "$path" =~ $E2B_PY_TESTS_ONLY ]]; then continue; fi
  [ -e "$SDK/tests/$path" ] || { echo "run.sh: warning: in-scope path missing in this snapshot: $path" >&2; continue; }
  FILES+=("tests/$path")
done <<<"$IN_SCOPE"
# Tests of in-scope files that are out of scope, with the reason (not run, not counted);
# each in both flavours.
EXCLUDED_TESTS="
test_create.py::test_auto_pause_filesystem_only_reboots            VM cold boot (a new kernel boot_id) after a filesystem-only pause
test_create.py::test_auto_resume_wakes_on_http_request             get_host(port) = https://<port>-<id>.<domain> (wildcard DNS/TLS)
test_config_propagation.py::test_connect_sets_stable_host_routing_headers   client-side (mocked API) check of the default https://sandbox.<domain> URL, which E2B_SANDBOX_URL replaces
"
while read -r t reason; do
  [ -z "${t:-}" ] && continue
  for f in sync async; do ARGS_DESELECT+=(--deselect "tests/$f/sandbox_$f/$t"); done
done <<<"$EXCLUDED_TESTS"
printf '%s\n' "$IN_SCOPE" >"$WORK/in-scope.txt"
[ ${#FILES[@]} -gt 0 ] || die "no test files selected"

# ------------------------------------------------------------ run
ARGS=(-p pytest_asyncio.plugin -p pytest_timeout -rfE -q --junitxml="$WORK/junit.xml" "${ARGS_DESELECT[@]}")
[ -n "${E2B_PY_TESTS_K:-}" ] && ARGS+=(-k "$E2B_PY_TESTS_K")
[ -n "${E2B_PY_TESTS_TIMEOUT:-}" ] && ARGS+=(-o "timeout=$E2B_PY_TESTS_TIMEOUT")
echo "== pytest $("$PY" -c 'import pytest; print(pytest.__version__)') on $("$PY" -V 2>&1), ${#FILES[@]} paths, server $E2B_API_URL"
# Only the plugins named above: no autoloading of whatever the system has.
( cd "$SDK" && PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 NO_COLOR=1 "$PY" -m pytest "${ARGS[@]}" "${FILES[@]}" )
[ -n "${E2B_PY_TESTS_JUNIT:-}" ] && cp "$WORK/junit.xml" "$E2B_PY_TESTS_JUNIT"
[ -f "$WORK/junit.xml" ] || die "pytest wrote no report"
"$PY" "$HERE/summarize.py" "$WORK/junit.xml" "$WORK/in-scope.txt"
