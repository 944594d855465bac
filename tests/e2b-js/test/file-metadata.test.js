// File metadata (envd 0.6.2): `files.write(..., { metadata })` sends X-Metadata-<key> headers;
// the pairs live with the file (user.e2b.* extended attributes) and come back in EntryInfo.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { InvalidArgumentError } from 'e2b'
import { preflight, withSandbox, rejectsWith, TEST_TIMEOUT_MS } from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }

test('metadata given on write comes back from write, getInfo, list and rename, in both upload forms', opts, async () => {
  await withSandbox(async (sandbox) => {
    const metadata = { author: 'mish', purpose: 'upload' }
    const info = await sandbox.files.write('md/a.txt', 'one', { metadata })
    assert.deepEqual(info.metadata, metadata)
    assert.deepEqual((await sandbox.files.getInfo('md/a.txt')).metadata, metadata)

    const octet = await sandbox.files.write('md/b.txt', 'two', { metadata: { tag: 'octet' }, useOctetStream: true })
    assert.deepEqual(octet.metadata, { tag: 'octet' })

    // Keys are lowercased by the sandbox, as envd does.
    await sandbox.files.write('md/c.txt', 'three', { metadata: { MixedCase: 'v' } })
    assert.deepEqual((await sandbox.files.getInfo('md/c.txt')).metadata, { mixedcase: 'v' })

    const many = await sandbox.files.writeFiles(
      [{ path: 'md/m1.txt', data: '1' }, { path: 'md/m2.txt', data: '2' }],
      { metadata: { source: 'batch' } },
    )
    assert.equal(many.length, 2)
    for (const f of many) {
      assert.deepEqual(f.metadata, { source: 'batch' })
      assert.deepEqual((await sandbox.files.getInfo(f.path)).metadata, { source: 'batch' })
    }

    await sandbox.files.write('md/plain.txt', 'no metadata')
    const listed = Object.fromEntries((await sandbox.files.list('md')).map((e) => [e.name, e.metadata]))
    assert.deepEqual(listed['a.txt'], metadata)
    assert.deepEqual(listed['b.txt'], { tag: 'octet' })
    assert.equal(listed['plain.txt'], undefined)

    const renamed = await sandbox.files.rename('md/a.txt', 'md/renamed.txt')
    assert.deepEqual(renamed.metadata, metadata)
    assert.deepEqual((await sandbox.files.getInfo('md/renamed.txt')).metadata, metadata)
  })
})

test('an overwrite replaces or clears metadata; code in the sandbox sees and sets it', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.files.write('o.txt', 'first', { metadata: { author: 'mish', old: 'x' } })
    const replaced = await sandbox.files.write('o.txt', 'second', { metadata: { author: 'other' } })
    assert.deepEqual(replaced.metadata, { author: 'other' })
    const cleared = await sandbox.files.write('o.txt', 'third')
    assert.equal(cleared.metadata, undefined)
    assert.equal((await sandbox.files.getInfo('o.txt')).metadata, undefined)

    await sandbox.files.write('x.txt', 'x', { metadata: { by: 'sdk' } })
    const seen = await sandbox.commands.run(
      `python3 -c "import os; p='/home/user/x.txt'; print(os.getxattr(p, 'user.e2b.by').decode()); os.setxattr(p, 'user.e2b.also', b'code')"`,
    )
    assert.equal(seen.stdout.trim(), 'sdk')
    assert.deepEqual((await sandbox.files.getInfo('x.txt')).metadata, { by: 'sdk', also: 'code' })
  })
})

test('metadata past the limits is refused by the server and writes nothing', opts, async () => {
  await withSandbox(async (sandbox) => {
    // The SDK checks characters itself; sizes are the server's to refuse (400 → InvalidArgumentError).
    await rejectsWith(sandbox.files.write('big.txt', 'x', { metadata: { ['k'.repeat(247)]: 'v' } }), InvalidArgumentError)
    await rejectsWith(
      sandbox.files.write('big.txt', 'x', { metadata: { a: 'x'.repeat(2100), b: 'y'.repeat(2100) } }),
      InvalidArgumentError,
    )
    assert.equal(await sandbox.files.exists('big.txt'), false)
    const longest = await sandbox.files.write('ok.txt', 'x', { metadata: { ['k'.repeat(246)]: 'v' } })
    assert.deepEqual(longest.metadata, { ['k'.repeat(246)]: 'v' })
  })
})
