// sandbox.files.watchDir: filesystem.Filesystem/WatchDir, a Connect server stream fed by inotify
// in the sandbox's agent.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import {
  FileNotFoundError,
  FilesystemEventType,
  InvalidArgumentError,
  SandboxError,
} from 'e2b'
import {
  preflight,
  withSandbox,
  rejectsWith,
  eventually,
  compareVersions,
  TEST_TIMEOUT_MS,
  BIG_TEST_TIMEOUT_MS,
} from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }

/** Starts a watch that records every event as "type name". */
async function record(sandbox, dir, watchOpts = {}) {
  const events = []
  const exits = []
  const handle = await sandbox.files.watchDir(dir, (e) => events.push(e), {
    ...watchOpts,
    onExit: (err) => exits.push(err ?? null),
  })
  const seen = () => events.map((e) => `${e.type} ${e.name}`)
  const waitFor = (...wanted) =>
    eventually(() => wanted.every((w) => seen().includes(w)), {
      timeoutMs: 10_000,
      what: `events ${wanted.join(', ')} (seen: ${seen().join(', ')})`,
    })
  return { handle, events, exits, seen, waitFor }
}

test('create, write, chmod, rename and remove, named relative to the watched directory', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.makeDir('watched')
    const w = await record(sandbox, 'watched')

    await sandbox.files.write('watched/a.txt', 'one')
    await eventually(() => w.events.length >= 3, { what: 'the new file reported' })
    // As envd's upload: open(O_CREAT), chown to the user, the data (E2B's Python tests count three).
    assert.deepEqual(w.seen(), ['create a.txt', 'chmod a.txt', 'write a.txt'])
    const before = w.events.length
    await sandbox.files.write('watched/a.txt', 'two')
    await eventually(() => w.events.length >= before + 2, { what: 'the overwrite reported' })
    // An overwrite of an existing file is no new file (envd writes in place): its chown, its data.
    assert.deepEqual(w.seen().slice(before), ['chmod a.txt', 'write a.txt'])

    const chmods = () => w.seen().filter((e) => e === 'chmod a.txt').length
    const chmodsBefore = chmods()
    await sandbox.commands.run('chmod 600 /home/user/watched/a.txt')
    await eventually(() => chmods() > chmodsBefore, { what: "the user's chmod reported" })
    await sandbox.files.rename('watched/a.txt', 'watched/b.txt')
    await w.waitFor('rename a.txt', 'create b.txt')
    await sandbox.files.remove('watched/b.txt')
    await w.waitFor('remove b.txt')

    assert.ok(w.events.every((e) => Object.values(FilesystemEventType).includes(e.type)))
    // The agent's atomic writes go through a hidden temporary file: it is never reported.
    assert.ok(!w.seen().some((s) => s.includes('stockade-tmp')), w.seen().join(', '))
    // Without includeEntry, no entry.
    assert.ok(w.events.every((e) => e.entry === undefined))
    await w.handle.stop()
  })
})

test('recursive watches see nested changes and directories made after the start', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.makeDir('tree/old')
    const deep = await record(sandbox, 'tree', { recursive: true })
    const flat = await record(sandbox, 'tree')

    await sandbox.files.write('tree/old/f.txt', 'x')
    await deep.waitFor('create old/f.txt', 'write old/f.txt')
    await sandbox.files.makeDir('tree/new/deeper')
    await deep.waitFor('create new', 'create new/deeper')
    await sandbox.files.write('tree/new/deeper/g.txt', 'y')
    await deep.waitFor('write new/deeper/g.txt')

    // A watch that is not recursive sees its own children only.
    await flat.waitFor('create new')
    assert.ok(!flat.seen().some((s) => s.includes('/')), flat.seen().join(', '))
    await deep.handle.stop()
    await flat.handle.stop()
  })
})

test('a missing directory is FileNotFoundError, a file is a SandboxError', opts, async () => {
  await withSandbox(async (sandbox) => {
    await rejectsWith(sandbox.files.watchDir('no_such_dir', () => {}), FileNotFoundError, 'missing')
    await sandbox.files.write('plain.txt', 'x')
    const err = await rejectsWith(sandbox.files.watchDir('plain.txt', () => {}), SandboxError, 'a file')
    assert.match(err.message, /not a directory/)
    // A directory the user may not read is refused, not watched with the agent's rights.
    await rejectsWith(sandbox.files.watchDir('/root', () => {}), SandboxError, '/root as user')
  })
})

test('stop() ends the watch: no events reach the callback after it', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.makeDir('stopped')
    const w = await record(sandbox, 'stopped')
    await sandbox.files.write('stopped/early.txt', 'x')
    await w.waitFor('write early.txt')
    await w.handle.stop()
    const count = w.events.length
    await sandbox.files.write('stopped/late.txt', 'x')
    await new Promise((r) => setTimeout(r, 1_000))
    assert.equal(w.events.length, count, `events after stop(): ${w.seen().slice(count).join(', ')}`)
    // That the agent ends the stopped watch too is shown by the watcher limit's test below.
  })
})

test('the watch ends cleanly when the watched directory is removed', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.makeDir('doomed')
    const w = await record(sandbox, 'doomed')
    await sandbox.files.remove('doomed')
    await w.waitFor('remove .')
    await eventually(() => w.exits.length === 1, { what: 'onExit' })
    assert.equal(w.exits[0], null, `onExit got ${w.exits[0]}`)
  })
})

test('killing the sandbox ends its watches with an error', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.makeDir('killed')
    const w = await record(sandbox, 'killed')
    await sandbox.kill()
    await eventually(() => w.exits.length === 1, { what: 'onExit' })
    assert.ok(w.exits[0] instanceof Error, `onExit got ${w.exits[0]}`)
  })
})

test('includeEntry: create and write events carry the entry, as the wire and the SDK give it', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.makeDir('entries')
    // On the wire, whatever envdVersion the server reports.
    const wire = await rawWatch(sandbox, '/home/user/entries', { includeEntry: true })
    await sandbox.files.write('entries/e.txt', 'hello')
    const msgs = await wire.until((m) => m.filesystem?.type === 'EVENT_TYPE_WRITE')
    wire.close()
    assert.deepEqual(msgs[0], { start: {} })
    const write = msgs.find((m) => m.filesystem?.type === 'EVENT_TYPE_WRITE').filesystem
    assert.equal(write.name, 'e.txt')
    assert.equal(write.entry.path, '/home/user/entries/e.txt')
    assert.equal(write.entry.type, 'FILE_TYPE_FILE')
    assert.equal(write.entry.size, '5')

    // Through the SDK where the reported envdVersion lets it ask (>= 0.6.3).
    if (compareVersions((await sandbox.getInfo()).envdVersion, '0.6.3') >= 0) {
      const w = await record(sandbox, 'entries', { includeEntry: true })
      await sandbox.files.write('entries/f.txt', 'hi')
      await w.waitFor('write f.txt')
      const ev = w.events.find((e) => e.type === 'write' && e.name === 'f.txt')
      assert.equal(ev.entry?.path, '/home/user/entries/f.txt')
      await w.handle.stop()
    }
  })
})

test('a sandbox runs at most 32 watchers at once; stopped ones free their place', { timeout: BIG_TEST_TIMEOUT_MS }, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.makeDir('many')
    const handles = []
    try {
      for (let i = 0; i < 32; i++) handles.push(await sandbox.files.watchDir('many', () => {}))
      const err = await rejectsWith(sandbox.files.watchDir('many', () => {}), InvalidArgumentError, '33rd')
      assert.match(err.message, /32 directory watchers/)
    } finally {
      for (const h of handles) await h.stop()
    }
    // Once the server has noticed the stopped clients, watching works again.
    await eventually(
      async () => {
        try {
          const h = await sandbox.files.watchDir('many', () => {})
          await h.stop()
          return true
        } catch {
          return false
        }
      },
      { timeoutMs: 15_000, intervalMs: 1_000, what: 'a watcher slot free again' },
    )
  })
})

test('the polled form: CreateWatcher, GetWatcherEvents, RemoveWatcher', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.makeDir('polled')
    const { watcherId } = await unary(sandbox, 'CreateWatcher', { path: 'polled', includeEntry: true })
    assert.match(watcherId, /^w[0-9a-f]+$/)
    await sandbox.files.write('polled/p.txt', 'hi')
    const events = []
    await eventually(async () => {
      events.push(...(await unary(sandbox, 'GetWatcherEvents', { watcherId })).events)
      return events.some((e) => e.type === 'EVENT_TYPE_WRITE')
    }, { what: `the write polled (got ${JSON.stringify(events)})` })
    const write = events.find((e) => e.type === 'EVENT_TYPE_WRITE')
    assert.equal(write.name, 'p.txt')
    assert.equal(write.entry.path, '/home/user/polled/p.txt')
    assert.deepEqual(await unary(sandbox, 'RemoveWatcher', { watcherId }), {})
    const gone = await unary(sandbox, 'GetWatcherEvents', { watcherId }, 404)
    assert.equal(gone.code, 'not_found')
  })
})

/** A unary filesystem RPC spoken directly (Connect, JSON); asserts the status and returns the body. */
async function unary(sandbox, method, body, status = 200) {
  const res = await fetch(`${process.env.E2B_SANDBOX_URL}/filesystem.Filesystem/${method}`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'Connect-Protocol-Version': '1',
      'E2b-Sandbox-Id': sandbox.sandboxId,
      'E2b-Sandbox-Port': '49983',
      'X-Access-Token': sandbox.envdAccessToken,
    },
    body: JSON.stringify(body),
  })
  const json = await res.json()
  assert.equal(res.status, status, JSON.stringify(json))
  return json
}

/**
 * WatchDir spoken directly (Connect server stream, JSON codec): returns a reader of its messages.
 */
async function rawWatch(sandbox, path, fields) {
  const body = Buffer.from(JSON.stringify({ path, ...fields }))
  const envelope = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body])
  envelope.writeUInt32BE(body.length, 1)
  const controller = new AbortController()
  const res = await fetch(`${process.env.E2B_SANDBOX_URL}/filesystem.Filesystem/WatchDir`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/connect+json',
      'Connect-Protocol-Version': '1',
      'E2b-Sandbox-Id': sandbox.sandboxId,
      'E2b-Sandbox-Port': '49983',
      'X-Access-Token': sandbox.envdAccessToken,
    },
    body: envelope,
    signal: controller.signal,
  })
  assert.equal(res.status, 200)
  const reader = res.body.getReader()
  let buf = Buffer.alloc(0)
  const msgs = []
  return {
    async until(pred) {
      const deadline = Date.now() + 10_000
      while (!msgs.some(pred)) {
        assert.ok(Date.now() < deadline, `no matching message in ${JSON.stringify(msgs)}`)
        const { value, done } = await reader.read()
        assert.ok(!done, `the stream ended: ${JSON.stringify(msgs)}`)
        buf = Buffer.concat([buf, Buffer.from(value)])
        while (buf.length >= 5 && buf.length >= 5 + buf.readUInt32BE(1)) {
          const n = buf.readUInt32BE(1)
          const flags = buf[0]
          const msg = JSON.parse(buf.subarray(5, 5 + n).toString())
          buf = buf.subarray(5 + n)
          assert.equal(flags & 2, 0, `end of stream: ${JSON.stringify(msg)}`)
          msgs.push(msg)
        }
      }
      return msgs
    },
    close() {
      controller.abort()
    },
  }
}
