"""A short scripted check of the E2B Python SDK against a server, the way a
new user would start: create with defaults, run a command, write and read a
file, list, kill — sync and async. Run by run.sh (E2B_PY_SMOKE=1) in the same
assembled environment as the suite; prints one line per check and a last line
`N passed, M failed`.
"""

import asyncio
import sys
import traceback

from e2b import AsyncSandbox, Sandbox

results = []


def check(name, fn):
    try:
        fn()
        results.append((name, None))
        print(f"ok    {name}")
    except Exception as e:  # every failure is reported, none stops the run
        results.append((name, e))
        print(f"FAIL  {name}: {type(e).__name__}: {e}")
        traceback.print_exc(limit=3)


def sync_checks():
    sbx = Sandbox.create()
    try:
        check("sync: create with defaults", lambda: sbx.sandbox_id or (_ for _ in ()).throw(AssertionError("no id")))

        def run():
            r = sbx.commands.run("echo hello $((1+2))")
            assert r.exit_code == 0 and r.stdout == "hello 3\n", (r.exit_code, r.stdout)

        check("sync: commands.run", run)

        def files():
            sbx.files.write("/home/user/smoke.txt", "from python")
            assert sbx.files.read("/home/user/smoke.txt") == "from python"
            names = [e.name for e in sbx.files.list("/home/user")]
            assert "smoke.txt" in names, names

        check("sync: files write/read/list", files)

        def listed():
            ids = [s.sandbox_id for s in Sandbox.list().next_items()]
            assert sbx.sandbox_id in ids, ids

        check("sync: Sandbox.list", listed)
    finally:
        check("sync: kill", lambda: sbx.kill() or None)


async def async_checks():
    sbx = await AsyncSandbox.create()
    try:
        r = await sbx.commands.run("python3 -c 'print(6*7)'")
        assert r.stdout.strip() == "42", r.stdout
        await sbx.files.write("/home/user/a.txt", b"bytes")
        assert await sbx.files.read("/home/user/a.txt", format="bytes") == b"bytes"
        assert await sbx.is_running()
    finally:
        await sbx.kill()
    assert not await sbx.is_running()


sync_checks()
check("async: create, run, files, is_running, kill", lambda: asyncio.run(async_checks()))
failed = sum(1 for _, e in results if e is not None)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
