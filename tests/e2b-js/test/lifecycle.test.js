// Sandbox lifecycle through the control plane: create, getInfo, list with
// paging, setTimeout, connect, kill, and what a killed sandbox looks like.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import {
  Sandbox,
  NotFoundError,
  SandboxNotFoundError,
  AuthenticationError,
} from 'e2b'
import { Sandbox as CodeInterpreterSandbox } from '@e2b/code-interpreter'
import {
  preflight,
  withSandbox,
  rejectsWith,
  allPages,
  uid,
  compareVersions,
  TEST_TIMEOUT_MS,
  REQUEST_TIMEOUT_MS,
} from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }

function assertTemplate(info, name) {
  assert.ok(
    info.templateId === name || info.name === name,
    `expected template ${name} in templateID or alias, got templateID=${info.templateId} alias=${info.name}`,
  )
}

test('create, getInfo, setTimeout, list, kill on the default template', opts, async () => {
  const run = uid()
  const metadata = { suite: 'stockade-e2b-js', run, 'key.with-dots_and': 'v a/l=u&e' }
  const created = Date.now()
  const sandbox = await Sandbox.create({
    metadata,
    envs: { STOCKADE_FROM_CREATE: 'sandbox-level', OVERRIDE_ME: 'sandbox' },
    timeoutMs: 120_000,
    requestTimeoutMs: REQUEST_TIMEOUT_MS,
  })
  let killed = false
  try {
    assert.equal(typeof sandbox.sandboxId, 'string')
    assert.ok(sandbox.sandboxId.length > 0)
    // Every sandbox must secure envd: the SDK only sends X-Access-Token when
    // the create response carried envdAccessToken.
    assert.equal(typeof sandbox.envdAccessToken, 'string', 'create response lacks envdAccessToken')
    assert.ok(sandbox.envdAccessToken.length >= 16, 'envdAccessToken is too short to be a secret')

    const info = await sandbox.getInfo()
    assert.equal(info.sandboxId, sandbox.sandboxId)
    assertTemplate(info, 'base')
    assert.deepEqual(info.metadata, metadata)
    assert.equal(info.state, 'running')
    assert.ok(info.startedAt instanceof Date && !Number.isNaN(info.startedAt.getTime()), 'startedAt is not a date')
    assert.ok(info.endAt instanceof Date && !Number.isNaN(info.endAt.getTime()), 'endAt is not a date')
    assert.ok(Math.abs(info.startedAt.getTime() - created) < 60_000, `startedAt ${info.startedAt.toISOString()} is far from now`)
    const ttl = info.endAt.getTime() - Date.now()
    assert.ok(ttl > 90_000 && ttl <= 125_000, `endAt should be ~120 s ahead, is ${ttl} ms`)
    assert.ok(Number.isInteger(info.cpuCount) && info.cpuCount > 0, `cpuCount ${info.cpuCount}`)
    assert.ok(Number.isInteger(info.memoryMB) && info.memoryMB > 0, `memoryMB ${info.memoryMB}`)
    assert.equal(typeof info.envdVersion, 'string')
    assert.ok(
      compareVersions(info.envdVersion, '0.6.2') >= 0,
      `envdVersion ${info.envdVersion} keeps the SDK on legacy paths or refuses file metadata (need >= 0.6.2)`,
    )
    assert.equal(await sandbox.isRunning(), true)

    // Sandbox-level envs reach commands; per-command envs override them.
    const env = await sandbox.commands.run('printf "%s|%s" "$STOCKADE_FROM_CREATE" "$OVERRIDE_ME"', {
      envs: { OVERRIDE_ME: 'command' },
    })
    assert.equal(env.stdout, 'sandbox-level|command')

    await sandbox.setTimeout(45_000)
    const after = await sandbox.getInfo()
    const ttl2 = after.endAt.getTime() - Date.now()
    assert.ok(ttl2 > 30_000 && ttl2 <= 47_000, `after setTimeout(45 s) endAt is ${ttl2} ms ahead`)

    const listed = (await allPages(Sandbox.list({ query: { metadata: { run } } }))).flat()
    assert.deepEqual(listed.map((s) => s.sandboxId), [sandbox.sandboxId])
    const item = listed[0]
    assertTemplate(item, 'base')
    assert.deepEqual(item.metadata, metadata)
    assert.equal(item.state, 'running')
    assert.ok(item.startedAt instanceof Date && !Number.isNaN(item.startedAt.getTime()))
    assert.ok(item.endAt instanceof Date && !Number.isNaN(item.endAt.getTime()))
    assert.ok(item.cpuCount > 0 && item.memoryMB > 0)
    assert.equal(item.envdVersion, info.envdVersion)

    const running = (await allPages(Sandbox.list({ query: { metadata: { run }, state: ['running'] } }))).flat()
    assert.deepEqual(running.map((s) => s.sandboxId), [sandbox.sandboxId])

    assert.equal(await sandbox.kill(), true)
    killed = true

    // A killed sandbox is gone everywhere the SDK looks.
    assert.equal(await sandbox.isRunning(), false, 'isRunning() after kill (GET /health should answer 502)')
    await rejectsWith(() => sandbox.getInfo(), SandboxNotFoundError, 'getInfo after kill')
    await rejectsWith(() => Sandbox.getInfo(sandbox.sandboxId), NotFoundError, 'Sandbox.getInfo after kill')
    await rejectsWith(() => sandbox.commands.run('echo still-here'), NotFoundError, 'commands.run after kill')
    await rejectsWith(() => sandbox.setTimeout(30_000), NotFoundError, 'setTimeout after kill')
    assert.equal(await Sandbox.kill(sandbox.sandboxId), false, 'second kill reports not found')
    const afterKill = (await allPages(Sandbox.list({ query: { metadata: { run } } }))).flat()
    assert.deepEqual(afterKill, [])
  } finally {
    if (!killed) await sandbox.kill().catch(() => {})
  }
})

test('list pages through X-Next-Token with limit 1', opts, async () => {
  const run = uid()
  const metadata = { suite: 'stockade-e2b-js', run }
  const [a, b] = await Promise.all([
    Sandbox.create({ metadata, requestTimeoutMs: REQUEST_TIMEOUT_MS }),
    Sandbox.create({ metadata, requestTimeoutMs: REQUEST_TIMEOUT_MS }),
  ])
  try {
    const paginator = Sandbox.list({ limit: 1, query: { metadata: { run } } })
    assert.equal(paginator.hasNext, true)
    const first = await paginator.nextItems()
    assert.equal(first.length, 1, 'limit=1 must return one sandbox per page')
    assert.equal(paginator.hasNext, true, 'a second page exists, so X-Next-Token must be set')
    assert.equal(typeof paginator.nextToken, 'string')
    const rest = await allPages(paginator)
    for (const page of rest) assert.ok(page.length <= 1, `page of ${page.length} with limit=1`)
    const ids = [...first, ...rest.flat()].map((s) => s.sandboxId).sort()
    assert.deepEqual(ids, [a.sandboxId, b.sandboxId].sort())
    assert.equal(paginator.hasNext, false)
  } finally {
    await Promise.all([a.kill().catch(() => {}), b.kill().catch(() => {})])
  }
})

test('Sandbox.connect returns a working handle to a running sandbox', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.write('/home/user/connect-marker.txt', 'made-before-connect')
    const again = await Sandbox.connect(sandbox.sandboxId, { requestTimeoutMs: REQUEST_TIMEOUT_MS })
    assert.equal(again.sandboxId, sandbox.sandboxId)
    const out = await again.commands.run('cat /home/user/connect-marker.txt')
    assert.equal(out.stdout, 'made-before-connect')
    assert.equal(await again.files.read('/home/user/connect-marker.txt'), 'made-before-connect')
  })
})

test('pause freezes the sandbox and Sandbox.connect resumes it where it was', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.write('/home/user/paused.txt', 'before-pause')
    // A background process that holds state in memory: it must go on from there, not restart.
    await sandbox.commands.run(
      // Written aside and renamed in: a read never meets the file truncated and empty.
      'python3 -c "import os, time\nn = 0\nwhile True:\n    n += 1\n    open(\'/tmp/n.new\', \'w\').write(str(n)); os.replace(\'/tmp/n.new\', \'/tmp/n\'); time.sleep(0.02)"',
      { background: true },
    )
    await new Promise((r) => setTimeout(r, 300))
    assert.equal(await sandbox.pause(), true)
    assert.equal(await sandbox.isRunning(), false, 'a paused sandbox does not answer')
    assert.equal(await Sandbox.pause(sandbox.sandboxId), false, 'pausing a paused sandbox says it already was')
    const paused = await Sandbox.list({ query: { state: ['paused'] } }).nextItems()
    assert.ok(paused.some((s) => s.sandboxId === sandbox.sandboxId && s.state === 'paused'))
    const again = await Sandbox.connect(sandbox.sandboxId, { requestTimeoutMs: REQUEST_TIMEOUT_MS })
    assert.equal(await again.isRunning(), true)
    assert.equal(await again.files.read('/home/user/paused.txt'), 'before-pause')
    const n1 = Number((await again.commands.run('cat /tmp/n')).stdout)
    await new Promise((r) => setTimeout(r, 200))
    const n2 = Number((await again.commands.run('cat /tmp/n')).stdout)
    assert.ok(n1 > 5 && n2 > n1, `the counter goes on from where it was: ${n1} then ${n2}`)
  })
})

test('createSnapshot keeps the files; Sandbox.create(snapshotId) forks them; deleteSnapshot removes it', opts, async () => {
  let snapshotId
  await withSandbox(async (sandbox) => {
    await sandbox.files.write('/home/user/snap.txt', 'in-the-snapshot')
    const snap = await Sandbox.createSnapshot(sandbox.sandboxId, { name: `snap-${uid()}`, requestTimeoutMs: REQUEST_TIMEOUT_MS })
    snapshotId = snap.snapshotId
    assert.ok(snapshotId.startsWith('snap-'), snapshotId)
    assert.equal(snap.names.length, 1)
    const listed = await Sandbox.listSnapshots({ sandboxId: sandbox.sandboxId }).nextItems()
    assert.deepEqual(listed.map((s) => s.snapshotId), [snapshotId])
    await sandbox.files.write('/home/user/snap.txt', 'changed-after')
  })
  const fork = await Sandbox.create(snapshotId, { requestTimeoutMs: REQUEST_TIMEOUT_MS })
  try {
    assert.equal(await fork.files.read('/home/user/snap.txt'), 'in-the-snapshot')
  } finally {
    await fork.kill()
  }
  assert.equal(await Sandbox.deleteSnapshot(snapshotId), true)
  assert.equal(await Sandbox.deleteSnapshot(snapshotId), false)
})

test('code-interpreter-v1 template runs Python', opts, async () => {
  await withSandbox({ template: 'code-interpreter-v1' }, async (sandbox) => {
    const info = await sandbox.getInfo()
    assertTemplate(info, 'code-interpreter-v1')
    const out = await sandbox.commands.run('python3 -c "import sys; print(6 * 7); print(sys.version_info[0])"')
    assert.equal(out.stdout, '42\n3\n')
    assert.equal(out.exitCode, 0)
  })
})

test('@e2b/code-interpreter Sandbox.create() asks for code-interpreter-v1', opts, async () => {
  const sandbox = await CodeInterpreterSandbox.create({ requestTimeoutMs: REQUEST_TIMEOUT_MS })
  try {
    assertTemplate(await sandbox.getInfo(), 'code-interpreter-v1')
    const out = await sandbox.commands.run('echo ok')
    assert.equal(out.stdout, 'ok\n')
  } finally {
    await sandbox.kill().catch(() => {})
  }
})

test('a template name ending in -hardened runs the sandbox on the hardened tier (gVisor)', opts, async () => {
  await withSandbox({ template: 'base-hardened' }, async (sandbox) => {
    // gVisor presents its own kernel (4.4.0), not the host's; commands and files work as on runc.
    const out = await sandbox.commands.run('uname -r; ls -la /home/user > /dev/null && echo listed')
    assert.equal(out.stdout, '4.4.0\nlisted\n')
    await sandbox.files.write('/home/user/h.txt', 'hardened')
    assert.equal(await sandbox.files.read('/home/user/h.txt'), 'hardened')
  })
  const ci = await CodeInterpreterSandbox.create('code-interpreter-v1-hardened', { requestTimeoutMs: REQUEST_TIMEOUT_MS })
  try {
    const e = await ci.runCode('import platform\nplatform.release()')
    assert.equal(e.text, '4.4.0')
  } finally {
    await ci.kill().catch(() => {})
  }
})

test('a wrong API key is refused with AuthenticationError', opts, async () => {
  const apiKey = 'e2b_' + '0'.repeat(40)
  assert.notEqual(apiKey, process.env.E2B_API_KEY)
  await rejectsWith(() => Sandbox.create({ apiKey, requestTimeoutMs: REQUEST_TIMEOUT_MS }), AuthenticationError, 'create')
  await rejectsWith(() => Sandbox.list({ apiKey }).nextItems(), AuthenticationError, 'list')
  await rejectsWith(() => Sandbox.kill('does-not-matter', { apiKey }), AuthenticationError, 'kill')
})

test('an unknown sandbox id gives NotFoundError', opts, async () => {
  const id = 'stockade-no-such-sandbox-' + uid()
  await rejectsWith(() => Sandbox.connect(id, { requestTimeoutMs: REQUEST_TIMEOUT_MS }), NotFoundError, 'connect')
  await rejectsWith(() => Sandbox.getInfo(id), NotFoundError, 'getInfo')
  await rejectsWith(() => Sandbox.setTimeout(id, 30_000), NotFoundError, 'setTimeout')
  assert.equal(await Sandbox.kill(id), false)
})

test('envd refuses requests that carry a wrong X-Access-Token', opts, async () => {
  await withSandbox(async (sandbox) => {
    const token = sandbox.envdAccessToken
    assert.equal(typeof token, 'string', 'create response lacks envdAccessToken')
    // The SDK's RPC transport reads the token on every request.
    sandbox.envdAccessToken = 'x' + token.slice(1) + 'x'
    try {
      await rejectsWith(() => sandbox.commands.run('echo should-not-run'), AuthenticationError, 'commands.run')
      await rejectsWith(() => sandbox.files.list('/'), AuthenticationError, 'files.list')
      await rejectsWith(() => sandbox.commands.list(), AuthenticationError, 'commands.list')
    } finally {
      sandbox.envdAccessToken = token
    }
    const ok = await sandbox.commands.run('echo ok')
    assert.equal(ok.stdout, 'ok\n')
  })
})
