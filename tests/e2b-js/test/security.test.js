// Paths that try to leave the sandbox must resolve inside it.
//
// The host-side checks use node:fs on this machine, so they are only
// meaningful when the server runs here (E2B_API_URL on loopback); otherwise
// they are skipped and only the in-sandbox half is checked.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { preflight, withSandbox, serverIsLocal, uid, TEST_TIMEOUT_MS } from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }

function assertNotOnHost(hostPath) {
  if (!serverIsLocal()) return
  assert.equal(fs.existsSync(hostPath), false, `${hostPath} appeared on the host`)
}

test('path traversal in file writes lands inside the sandbox', opts, async () => {
  const name = `stockade-test-canary-${uid()}`
  const cases = [
    // relative to /home/user: climbs to the sandbox root, then into /tmp
    { write: `../../../../tmp/${name}`, inside: `/tmp/${name}` },
    // far more ".." than the sandbox has directories
    { write: '../'.repeat(24) + `tmp/${name}-deep`, inside: `/tmp/${name}-deep` },
    // absolute path with ".." in the middle
    { write: `/home/../../../tmp/${name}-abs`, inside: `/tmp/${name}-abs` },
  ]
  await withSandbox(async (sandbox) => {
    // The template's /etc belongs to no user of the sandbox, not even its root: a clear refusal.
    await assert.rejects(sandbox.files.write(`../../../../etc/${name}-denied`, 'x'), /Permission denied/)
    await assert.rejects(sandbox.files.write(`/etc/${name}-denied`, 'x', { user: 'root' }), /Permission denied/)
    assertNotOnHost(`/etc/${name}-denied`)
    for (const c of cases) {
      const info = await sandbox.files.write(c.write, `canary:${c.inside}`)
      assert.equal(info.path, c.inside, `write(${c.write}) should resolve to ${c.inside}`)
    }
    // The same traversal inside a multipart file name (several files in one call).
    const multi = await sandbox.files.write([
      { path: `../../../../home/user/${name}-multi`, data: `canary:/home/user/${name}-multi` },
      { path: '../'.repeat(24) + `tmp/${name}-multi`, data: `canary:/tmp/${name}-multi` },
    ])
    assert.deepEqual(multi.map((e) => e.path).sort(), [`/home/user/${name}-multi`, `/tmp/${name}-multi`])
    const all = [...cases.map((c) => c.inside), `/home/user/${name}-multi`, `/tmp/${name}-multi`]

    const out = await sandbox.commands.run(all.map((p) => `cat ${p}; echo`).join('; '))
    assert.equal(out.stdout, all.map((p) => `canary:${p}\n`).join(''))
    assert.equal(await sandbox.files.read(`../../../../tmp/${name}`), `canary:/tmp/${name}`)

    for (const p of all) assertNotOnHost(p)
    assertNotOnHost(path.join(os.tmpdir(), `${name}-deep`))
  })
})

test('symlinks made inside the sandbox do not reach host files', opts, async () => {
  const token = uid()
  const hostSecret = path.join(os.tmpdir(), `stockade-host-secret-${token}`)
  const escapee = `stockade-escape-${token}`
  fs.writeFileSync(hostSecret, `host-secret-${token}`)
  try {
    await withSandbox(async (sandbox) => {
      await sandbox.commands.run(
        `ln -s ${hostSecret} /home/user/secret-link && ln -s / /home/user/rootlink && ln -s /tmp /home/user/tmplink`,
      )
      // Following the link resolves inside the sandbox, where the host's file does not exist.
      let read
      try {
        read = await sandbox.files.read('/home/user/secret-link')
      } catch {
        read = undefined
      }
      assert.notEqual(read, `host-secret-${token}`, 'read returned a file from the host')
      // A write through the same link must not touch the host file either.
      await sandbox.files.write('/home/user/secret-link', 'overwritten-from-sandbox').catch(() => {})

      // Writes through links land in the sandbox's own directories.
      await sandbox.files.write(`/home/user/rootlink/tmp/${escapee}-a`, 'a')
      await sandbox.files.write(`/home/user/tmplink/${escapee}-b`, 'b')
      const seen = await sandbox.commands.run(`cat /tmp/${escapee}-a /tmp/${escapee}-b`)
      assert.equal(seen.stdout, 'ab')
      assertNotOnHost(path.join('/tmp', `${escapee}-a`))
      assertNotOnHost(path.join('/tmp', `${escapee}-b`))
      assertNotOnHost(path.join(os.tmpdir(), `${escapee}-a`))
    })
    assert.equal(fs.readFileSync(hostSecret, 'utf8'), `host-secret-${token}`, 'host file was modified')
  } finally {
    fs.rmSync(hostSecret, { force: true })
  }
})
