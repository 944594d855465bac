// sandbox.pty: terminals on a real pseudo-terminal in the sandbox (process.Process Start with
// `pty`, data events with `pty` bytes, SendInput with `pty` bytes, Update for the size, Connect
// to reattach, SendSignal to kill).

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { CommandExitError, InvalidArgumentError } from 'e2b'
import { preflight, withSandbox, rejectsWith, eventually, TEST_TIMEOUT_MS } from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }
const input = (text) => new TextEncoder().encode(text)

/** A terminal whose output is collected as text; `output()` reads it so far. */
async function terminal(sandbox, createOpts = {}) {
  let text = ''
  const decoder = new TextDecoder()
  const handle = await sandbox.pty.create({
    cols: 80,
    rows: 24,
    onData: (data) => {
      text += decoder.decode(data, { stream: true })
    },
    ...createOpts,
  })
  return { handle, output: () => text }
}

test('pty.create: a login shell on a terminal, its output through onData, exit code 0', opts, async () => {
  await withSandbox(async (sandbox) => {
    const { handle, output } = await terminal(sandbox, { envs: { GREETING: 'hello-pty' } })
    assert.ok(handle.pid > 0)
    // stdin, stdout and stderr are the terminal; it is the shell's controlling terminal and
    // the shell runs as the sandbox user.
    await sandbox.pty.sendInput(handle.pid, input(
      'echo "[$GREETING]"; tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo all-ttys; ' +
        'ps -o tty= -p $$ | grep -q pts && echo has-ctty; echo "term=$TERM uid=$(id -u)"\nexit\n'))
    await handle.wait()
    assert.equal(handle.exitCode, 0)
    const out = output()
    assert.match(out, /\[hello-pty\]/)
    assert.match(out, /\/dev\/pts\/\d+/)
    assert.match(out, /all-ttys/)
    assert.match(out, /has-ctty/)
    assert.match(out, /term=xterm-256color uid=1000/)
  })
})

test('pty.sendInput: keystrokes reach the shell, ^C interrupts the foreground job', opts, async () => {
  await withSandbox(async (sandbox) => {
    const { handle, output } = await terminal(sandbox)
    await sandbox.pty.sendInput(handle.pid, input('sleep 60\n'))
    await eventually(async () => (await sandbox.commands.run('pgrep -x sleep || true')).stdout.trim() !== '',
      { what: 'sleep running in the terminal' })
    const started = Date.now()
    await sandbox.pty.sendInput(handle.pid, input('\x03'))
    await sandbox.pty.sendInput(handle.pid, input('echo after-$((40+2))\nexit 3\n'))
    await rejectsWith(() => handle.wait(), CommandExitError)
    assert.equal(handle.exitCode, 3)
    assert.ok(Date.now() - started < 20_000, 'the sleep was not interrupted by ^C')
    assert.match(output(), /after-42/)
  })
})

test('pty.resize: the terminal size follows, stty and tput see it', opts, async () => {
  await withSandbox(async (sandbox) => {
    const { handle, output } = await terminal(sandbox, { cols: 80, rows: 24 })
    await sandbox.pty.sendInput(handle.pid, input('echo "size=$(stty size)"\n'))
    await eventually(() => /size=24 80/.test(output()), { what: 'stty size 24 80' })
    await sandbox.pty.resize(handle.pid, { cols: 132, rows: 40 })
    await sandbox.pty.sendInput(handle.pid, input('echo "size=$(stty size) cols=$(tput cols)"\nexit\n'))
    await handle.wait()
    assert.match(output(), /size=40 132 cols=132/)

    // Bad sizes and a process without a terminal are refused with InvalidArgumentError.
    const other = await terminal(sandbox)
    await rejectsWith(() => sandbox.pty.resize(other.handle.pid, { cols: 0, rows: 24 }), InvalidArgumentError)
    const plain = await sandbox.commands.run('sleep 30', { background: true })
    await rejectsWith(() => sandbox.pty.resize(plain.pid, { cols: 100, rows: 30 }), InvalidArgumentError)
    await plain.kill()
    await sandbox.pty.kill(other.handle.pid)
  })
})

test('pty.kill: the terminal and the jobs it started end; an unknown pid is false', opts, async () => {
  await withSandbox(async (sandbox) => {
    const { handle } = await terminal(sandbox)
    // A background job of an interactive shell has a process group of its own.
    await sandbox.pty.sendInput(handle.pid, input('sleep 300 &\n'))
    await eventually(async () => (await sandbox.commands.run('pgrep -x sleep || true')).stdout.trim() !== '',
      { what: 'the background job running' })
    assert.equal(await sandbox.pty.kill(handle.pid), true)
    await rejectsWith(() => handle.wait(), CommandExitError)
    assert.equal(handle.exitCode, -1)
    await rejectsWith(() => sandbox.commands.run(`kill -0 ${handle.pid}`), CommandExitError)
    await eventually(async () => (await sandbox.commands.run('pgrep -x sleep || true')).stdout.trim() === '',
      { what: 'the background job killed with its terminal' })
    assert.equal(await sandbox.pty.kill(999999), false)
  })
})

test('pty.connect: a second handle reattaches, output written while detached is kept', opts, async () => {
  await withSandbox(async (sandbox) => {
    const { handle, output } = await terminal(sandbox, { envs: { FOO: 'bar' } })
    await sandbox.pty.sendInput(handle.pid, input('echo "first-$FOO"\n'))
    await eventually(() => /first-bar/.test(output()), { what: 'output on the first handle' })
    await handle.disconnect()
    // The server notices a client that left by its next writes failing: an idle terminal stream
    // writes a keepalive every 250 ms. From then on the output waits for the next client.
    await new Promise((r) => setTimeout(r, 1_500))
    await sandbox.pty.sendInput(handle.pid, input('echo "detached-$((6*7))"\n'))
    await new Promise((r) => setTimeout(r, 300))

    let second = ''
    const decoder = new TextDecoder()
    const again = await sandbox.pty.connect(handle.pid, {
      onData: (data) => {
        second += decoder.decode(data, { stream: true })
      },
    })
    assert.equal(again.pid, handle.pid)
    await sandbox.pty.sendInput(handle.pid, input('echo "second-$FOO"\nexit\n'))
    await again.wait()
    assert.equal(again.exitCode, 0)
    assert.match(second, /detached-42/)
    assert.match(second, /second-bar/)
    assert.doesNotMatch(output(), /second-bar/)
  })
})
