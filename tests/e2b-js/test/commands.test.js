// commands.run and friends: process.Process over Connect-JSON streams.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { CommandExitError, Sandbox, SandboxError, TimeoutError } from 'e2b'
import { preflight, withSandbox, rejectsWith, eventually, TEST_TIMEOUT_MS } from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }

test('stdout and stderr stream to the callbacks as they are produced', opts, async () => {
  await withSandbox(async (sandbox) => {
    const events = []
    const result = await sandbox.commands.run(
      'for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; done',
      {
        onStdout: (data) => events.push(['out', data, Date.now()]),
        onStderr: (data) => events.push(['err', data, Date.now()]),
      },
    )
    const finished = Date.now()
    assert.equal(result.exitCode, 0)
    assert.equal(result.stdout, 'out1\nout2\nout3\n')
    assert.equal(result.stderr, 'err1\nerr2\nerr3\n')
    assert.equal(events.filter(([k]) => k === 'out').map(([, d]) => d).join(''), result.stdout)
    assert.equal(events.filter(([k]) => k === 'err').map(([, d]) => d).join(''), result.stderr)

    // Streamed, not buffered until exit: each iteration's output arrives before
    // the next iteration's, on both streams.
    const at = (kind, text) => events.findIndex(([k, d]) => k === kind && d.includes(text))
    assert.ok(at('out', 'out1') < at('err', 'err2'), `out1 must arrive before err2: ${JSON.stringify(events)}`)
    assert.ok(at('err', 'err1') < at('out', 'out2'), `err1 must arrive before out2: ${JSON.stringify(events)}`)
    assert.ok(at('out', 'out2') < at('err', 'err3'), `out2 must arrive before err3: ${JSON.stringify(events)}`)
    const firstOut = events.find(([k]) => k === 'out')[2]
    assert.ok(finished - firstOut >= 400, `first stdout callback only ${finished - firstOut} ms before the end`)
  })
})

test('a non-zero exit raises CommandExitError with exit code and output', opts, async () => {
  await withSandbox(async (sandbox) => {
    const err = await rejectsWith(
      () => sandbox.commands.run('echo to-out; echo to-err >&2; exit 7'),
      CommandExitError,
    )
    assert.ok(err instanceof SandboxError)
    assert.equal(err.exitCode, 7)
    assert.equal(err.stdout, 'to-out\n')
    assert.equal(err.stderr, 'to-err\n')

    // A command that is not found is an ordinary exit 127 from bash.
    const missing = await rejectsWith(() => sandbox.commands.run('definitely-not-a-command-xyz'), CommandExitError)
    assert.equal(missing.exitCode, 127)
    assert.match(missing.stderr, /not found/)

    // The sandbox is still usable afterwards.
    assert.equal((await sandbox.commands.run('echo fine')).stdout, 'fine\n')
  })
})

test('background command: list, sendStdin, closeStdin, wait', opts, async () => {
  await withSandbox(async (sandbox) => {
    let streamed = ''
    const script = 'while IFS= read -r line; do echo "got:$line"; done; echo eof'
    const handle = await sandbox.commands.run(script, {
      background: true,
      stdin: true,
      onStdout: (d) => {
        streamed += d
      },
    })
    assert.ok(Number.isInteger(handle.pid) && handle.pid > 0, `pid ${handle.pid}`)
    assert.equal(handle.exitCode, undefined, 'still running')

    const listed = await sandbox.commands.list()
    const mine = listed.find((p) => p.pid === handle.pid)
    assert.ok(mine, `pid ${handle.pid} missing from commands.list(): ${JSON.stringify(listed)}`)
    assert.equal(mine.cmd, '/bin/bash')
    assert.deepEqual(mine.args, ['-l', '-c', script])

    await handle.sendStdin('alpha\n')
    await sandbox.commands.sendStdin(handle.pid, 'beta gamma\n')
    await sandbox.commands.sendStdin(handle.pid, new TextEncoder().encode('ünïcode\n'))
    await eventually(() => streamed.includes('got:ünïcode\n'), { what: 'echoed stdin' })
    assert.equal(streamed, 'got:alpha\ngot:beta gamma\ngot:ünïcode\n')

    await handle.closeStdin()
    const result = await handle.wait()
    assert.equal(result.exitCode, 0)
    assert.equal(result.stdout, 'got:alpha\ngot:beta gamma\ngot:ünïcode\neof\n')
    assert.equal(handle.exitCode, 0)

    await eventually(async () => !(await sandbox.commands.list()).some((p) => p.pid === handle.pid), {
      what: 'finished command leaves commands.list()',
    })
  })
})

test('background command: kill through the handle and through commands.kill', opts, async () => {
  await withSandbox(async (sandbox) => {
    const a = await sandbox.commands.run('sleep 60', { background: true })
    const b = await sandbox.commands.run('sleep 60', { background: true })
    const pids = (await sandbox.commands.list()).map((p) => p.pid)
    assert.ok(pids.includes(a.pid) && pids.includes(b.pid), `list ${pids} lacks ${a.pid} or ${b.pid}`)

    assert.equal(await a.kill(), true)
    const errA = await rejectsWith(() => a.wait(), CommandExitError, 'wait after kill')
    assert.notEqual(errA.exitCode, 0)

    assert.equal(await sandbox.commands.kill(b.pid), true)
    const errB = await rejectsWith(() => b.wait(), CommandExitError, 'wait after commands.kill')
    assert.notEqual(errB.exitCode, 0)

    await eventually(async () => {
      const left = (await sandbox.commands.list()).map((p) => p.pid)
      return !left.includes(a.pid) && !left.includes(b.pid)
    }, { what: 'killed commands leave commands.list()' })
    // Killing a process that no longer exists reports false (not_found).
    assert.equal(await sandbox.commands.kill(a.pid), false)
  })
})

test('commands.connect attaches to a running command and sees its end', opts, async () => {
  await withSandbox(async (sandbox) => {
    const started = await sandbox.commands.run('sleep 1; echo one; sleep 1; echo two; exit 3', {
      background: true,
    })
    let seen = ''
    const attached = await sandbox.commands.connect(started.pid, {
      onStdout: (d) => {
        seen += d
      },
    })
    assert.equal(attached.pid, started.pid)
    const err = await rejectsWith(() => attached.wait(), CommandExitError)
    assert.equal(err.exitCode, 3)
    assert.match(seen, /two\n$/)
    const orig = await rejectsWith(() => started.wait(), CommandExitError)
    assert.equal(orig.exitCode, 3)
    assert.equal(orig.stdout, 'one\ntwo\n')
  })
})

test('envs, cwd and the default user', opts, async () => {
  await withSandbox(async (sandbox) => {
    const env = await sandbox.commands.run('printf "%s|%s|%s" "$A" "$B" "$PWD"', {
      envs: { A: 'x y', B: 'ünï "quoted" $notexpanded' },
      cwd: '/tmp',
    })
    assert.equal(env.stdout, 'x y|ünï "quoted" $notexpanded|/tmp')

    await sandbox.files.makeDir('/home/user/work dir')
    const cwd = await sandbox.commands.run('pwd', { cwd: '/home/user/work dir' })
    assert.equal(cwd.stdout, '/home/user/work dir\n')

    const defaults = await sandbox.commands.run('pwd; whoami; echo "$HOME"')
    assert.equal(defaults.stdout, '/home/user\nuser\n/home/user\n')
  })
})

test('a command that outlives timeoutMs raises TimeoutError and is killed in the sandbox', opts, async () => {
  await withSandbox(async (sandbox) => {
    const marker = `stockade-timeout-${Date.now()}`
    const t0 = Date.now()
    await rejectsWith(
      () => sandbox.commands.run(`sleep 20; touch /tmp/${marker}`, { timeoutMs: 1_500 }),
      TimeoutError,
    )
    const elapsed = Date.now() - t0
    assert.ok(elapsed < 6_000, `timed out after ${elapsed} ms, expected about 1.5 s`)
    // The server honours Connect-Timeout-Ms: the process must not live on.
    await eventually(async () => !(await sandbox.commands.list()).some((p) => p.args.at(-1)?.includes(marker)), {
      what: 'timed-out command gone from commands.list()',
    })
  })
})

test('a command running while its sandbox is killed fails with the SDK\'s "sandbox was killed" TimeoutError', opts, async () => {
  const sandbox = await Sandbox.create({ requestTimeoutMs: 20_000, timeoutMs: 120_000 })
  const cmd = await sandbox.commands.run('sleep 60', { background: true })
  await sandbox.kill()
  const err = await cmd.wait().catch((e) => e)
  assert.ok(err instanceof TimeoutError, `expected a TimeoutError, got ${err}`)
  assert.match(err.message, /sandbox was killed or reached its end of life/)
  // No host path (the server's data directory) in what the client reads.
  assert.doesNotMatch(err.message, /agent\.sock|\/tmp\/|\/var\//)
})

test('sudo is absent on purpose and says so instead of "command not found"', opts, async () => {
  await withSandbox(async (sandbox) => {
    const cmd = await sandbox.commands.run('echo $FOO', { envs: { FOO: 'bar' } })
    assert.equal(cmd.stdout.trim(), 'bar')
    const err = await sandbox.commands.run('sudo echo "$FOO"').catch((e) => e)
    assert.equal(err.exitCode, 1)
    assert.match(err.stderr, /sudo: not available in a Stockade sandbox/)
    assert.match(err.stderr, /user: 'root'/)
  })
})
