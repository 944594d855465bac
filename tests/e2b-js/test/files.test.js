// sandbox.files: GET/POST /files and filesystem.Filesystem over Connect-JSON.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import { NotFoundError } from 'e2b'
import {
  preflight,
  withSandbox,
  rejectsWith,
  sha256,
  TEST_TIMEOUT_MS,
  BIG_TEST_TIMEOUT_MS,
} from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }

function allBytes() {
  const bytes = new Uint8Array(256)
  for (let i = 0; i < 256; i++) bytes[i] = i
  return bytes
}

async function streamToBytes(stream) {
  const chunks = []
  for await (const chunk of stream) chunks.push(Buffer.from(chunk))
  return new Uint8Array(Buffer.concat(chunks))
}

test('write and read text, including relative paths and an empty file', opts, async () => {
  await withSandbox(async (sandbox) => {
    const text = 'héllo wörld ✓\nline two\n'
    const info = await sandbox.files.write('/home/user/hello.txt', text)
    assert.equal(info.path, '/home/user/hello.txt')
    assert.equal(info.name, 'hello.txt')
    assert.equal(info.type, 'file')
    assert.equal(await sandbox.files.read('/home/user/hello.txt'), text)

    // Relative paths resolve against the user's home directory, and missing
    // parent directories are created.
    const rel = await sandbox.files.write('nested/deeper/rel.txt', 'relative')
    assert.equal(rel.path, '/home/user/nested/deeper/rel.txt')
    assert.equal(await sandbox.files.read('/home/user/nested/deeper/rel.txt'), 'relative')
    assert.equal(await sandbox.files.read('nested/deeper/rel.txt'), 'relative')

    // Overwrite replaces the whole file.
    await sandbox.files.write('/home/user/hello.txt', 'short')
    assert.equal(await sandbox.files.read('/home/user/hello.txt'), 'short')

    await sandbox.files.write('/home/user/empty.txt', '')
    assert.equal(await sandbox.files.read('/home/user/empty.txt'), '')
    assert.equal((await sandbox.files.read('/home/user/empty.txt', { format: 'bytes' })).length, 0)
    assert.equal((await sandbox.files.getInfo('/home/user/empty.txt')).size, 0)
  })
})

test('binary round trip of all 256 byte values in every format', opts, async () => {
  await withSandbox(async (sandbox) => {
    const bytes = allBytes()
    const expected = sha256(bytes)

    await sandbox.files.write('/home/user/bytes.bin', bytes.buffer)
    const asBytes = await sandbox.files.read('/home/user/bytes.bin', { format: 'bytes' })
    assert.ok(asBytes instanceof Uint8Array)
    assert.deepEqual(Buffer.from(asBytes), Buffer.from(bytes))

    const asBlob = await sandbox.files.read('/home/user/bytes.bin', { format: 'blob' })
    assert.equal(asBlob.size, 256)
    assert.deepEqual(Buffer.from(await asBlob.arrayBuffer()), Buffer.from(bytes))

    const asStream = await sandbox.files.read('/home/user/bytes.bin', { format: 'stream' })
    assert.deepEqual(Buffer.from(await streamToBytes(asStream)), Buffer.from(bytes))

    // The bytes on disk are the bytes that were sent.
    const sum = await sandbox.commands.run('sha256sum /home/user/bytes.bin')
    assert.equal(sum.stdout.split(' ')[0], expected)

    // Blob and ReadableStream bodies (the stream goes out as application/octet-stream).
    await sandbox.files.write('/home/user/blob.bin', new Blob([bytes]))
    await sandbox.files.write('/home/user/stream.bin', new Blob([bytes, bytes]).stream())
    assert.equal(sha256(await sandbox.files.read('/home/user/blob.bin', { format: 'bytes' })), expected)
    const doubled = await sandbox.files.read('/home/user/stream.bin', { format: 'bytes' })
    assert.equal(doubled.length, 512)
    assert.equal(sha256(doubled), sha256(Buffer.concat([bytes, bytes])))
  })
})

test('50 MiB binary file round trip with checksums', { timeout: BIG_TEST_TIMEOUT_MS }, async () => {
  await withSandbox(async (sandbox) => {
    const size = 50 * 1024 * 1024
    const data = new Uint8Array(size)
    crypto.randomFillSync(data)
    const expected = sha256(data)

    const info = await sandbox.files.write('/home/user/big.bin', data.buffer, { requestTimeoutMs: 40_000 })
    assert.equal(info.path, '/home/user/big.bin')

    const inside = await sandbox.commands.run('stat -c %s /home/user/big.bin && sha256sum /home/user/big.bin')
    const [sizeLine, sumLine] = inside.stdout.trim().split('\n')
    assert.equal(Number(sizeLine), size)
    assert.equal(sumLine.split(' ')[0], expected)
    assert.equal((await sandbox.files.getInfo('/home/user/big.bin')).size, size)

    const back = await sandbox.files.read('/home/user/big.bin', { format: 'bytes', requestTimeoutMs: 40_000 })
    assert.equal(back.length, size)
    assert.equal(sha256(back), expected)
  })
})

test('write several files in one call', opts, async () => {
  await withSandbox(async (sandbox) => {
    const bytes = allBytes()
    const written = await sandbox.files.write([
      { path: '/home/user/multi/a.txt', data: 'alpha' },
      { path: '/tmp/multi/b.bin', data: bytes.buffer },
      { path: 'multi/c.txt', data: new Blob(['gamma']) },
    ])
    assert.ok(Array.isArray(written))
    assert.deepEqual(
      written.map((e) => e.path).sort(),
      ['/home/user/multi/a.txt', '/home/user/multi/c.txt', '/tmp/multi/b.bin'],
    )
    for (const e of written) assert.equal(e.type, 'file')
    assert.equal(await sandbox.files.read('/home/user/multi/a.txt'), 'alpha')
    assert.equal(await sandbox.files.read('/home/user/multi/c.txt'), 'gamma')
    assert.deepEqual(Buffer.from(await sandbox.files.read('/tmp/multi/b.bin', { format: 'bytes' })), Buffer.from(bytes))
  })
})

test('list, exists, makeDir, getInfo, rename, remove', opts, async () => {
  await withSandbox(async (sandbox) => {
    const root = '/home/user/tree'
    assert.equal(await sandbox.files.makeDir(`${root}/sub/leaf`), true)
    assert.equal(await sandbox.files.makeDir(`${root}/sub/leaf`), false, 'makeDir on an existing dir')
    await sandbox.files.write(`${root}/file.txt`, '12345')
    await sandbox.files.write(`${root}/sub/inner.txt`, 'inner')

    const top = await sandbox.files.list(root)
    assert.deepEqual(top.map((e) => e.name).sort(), ['file.txt', 'sub'])
    const file = top.find((e) => e.name === 'file.txt')
    assert.equal(file.type, 'file')
    assert.equal(file.path, `${root}/file.txt`)
    assert.equal(file.size, 5)
    assert.equal(top.find((e) => e.name === 'sub').type, 'dir')

    const deep = await sandbox.files.list(root, { depth: 2 })
    assert.deepEqual(
      deep.map((e) => e.path).sort(),
      [`${root}/file.txt`, `${root}/sub`, `${root}/sub/inner.txt`, `${root}/sub/leaf`],
    )

    assert.equal(await sandbox.files.exists(`${root}/file.txt`), true)
    assert.equal(await sandbox.files.exists(`${root}/sub`), true)
    assert.equal(await sandbox.files.exists(`${root}/nope`), false)

    const fi = await sandbox.files.getInfo(`${root}/file.txt`)
    assert.equal(fi.name, 'file.txt')
    assert.equal(fi.type, 'file')
    assert.equal(fi.path, `${root}/file.txt`)
    assert.equal(fi.size, 5)
    assert.equal(fi.owner, 'user', 'files written through the API belong to the default user')
    assert.match(fi.permissions, /^-[-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT]$/)
    assert.ok(fi.modifiedTime instanceof Date && Math.abs(fi.modifiedTime.getTime() - Date.now()) < 5 * 60_000)
    const di = await sandbox.files.getInfo(`${root}/sub`)
    assert.equal(di.type, 'dir')
    assert.equal(di.name, 'sub')

    // The default user can change what the API wrote.
    await sandbox.commands.run(`echo appended >> ${root}/file.txt`)
    assert.equal(await sandbox.files.read(`${root}/file.txt`), '12345appended\n')

    const moved = await sandbox.files.rename(`${root}/file.txt`, `${root}/sub/moved.txt`)
    assert.equal(moved.path, `${root}/sub/moved.txt`)
    assert.equal(moved.name, 'moved.txt')
    assert.equal(moved.type, 'file')
    assert.equal(await sandbox.files.exists(`${root}/file.txt`), false)
    assert.equal(await sandbox.files.read(`${root}/sub/moved.txt`), '12345appended\n')

    await sandbox.files.remove(`${root}/sub/moved.txt`)
    assert.equal(await sandbox.files.exists(`${root}/sub/moved.txt`), false)
    await sandbox.files.remove(`${root}/sub`)
    assert.equal(await sandbox.files.exists(`${root}/sub`), false)
    assert.deepEqual(await sandbox.files.list(root), [])
  })
})

test('files written by commands are visible to the file API and vice versa', opts, async () => {
  await withSandbox(async (sandbox) => {
    await sandbox.commands.run("printf 'from-command' > /home/user/by-cmd.txt && mkdir -p /tmp/cmd-dir && printf x > /tmp/cmd-dir/y")
    assert.equal(await sandbox.files.read('/home/user/by-cmd.txt'), 'from-command')
    assert.deepEqual((await sandbox.files.list('/tmp/cmd-dir')).map((e) => e.name), ['y'])

    await sandbox.files.write('/home/user/by-api.txt', 'from-api')
    await sandbox.files.write('/tmp/api-dir/z.txt', 'zed')
    const out = await sandbox.commands.run('cat /home/user/by-api.txt; echo; cat /tmp/api-dir/z.txt')
    assert.equal(out.stdout, 'from-api\nzed')

    await sandbox.commands.run('rm /home/user/by-api.txt')
    assert.equal(await sandbox.files.exists('/home/user/by-api.txt'), false)
  })
})

test('missing files raise NotFoundError', opts, async () => {
  await withSandbox(async (sandbox) => {
    await rejectsWith(() => sandbox.files.read('/home/user/does-not-exist.txt'), NotFoundError, 'read')
    await rejectsWith(() => sandbox.files.read('/no/such/dir/file', { format: 'bytes' }), NotFoundError, 'read bytes')
    await rejectsWith(() => sandbox.files.getInfo('/home/user/does-not-exist.txt'), NotFoundError, 'getInfo')
    await rejectsWith(() => sandbox.files.list('/home/user/no-such-dir'), NotFoundError, 'list')
    await rejectsWith(() => sandbox.files.rename('/home/user/nope', '/home/user/nope2'), NotFoundError, 'rename')
  })
})

test('writing under a missing top-level directory creates it for the default user, as E2B does', opts, async () => {
  await withSandbox(async (sandbox) => {
    const infos = await sandbox.files.write([
      { path: '/0/multi_test_file0.txt', data: 'zero' },
      { path: '/2/deeper/file2.txt', data: 'two' },
    ])
    assert.deepEqual(infos.map((i) => i.path), ['/0/multi_test_file0.txt', '/2/deeper/file2.txt'])
    assert.equal(await sandbox.files.read('/0/multi_test_file0.txt'), 'zero')
    // The created directory is the user's, who may write more into it.
    const owner = await sandbox.commands.run('stat -c %U:%a /0 /2 /2/deeper && echo more > /0/more.txt')
    assert.equal(owner.stdout, 'user:755\nuser:755\nuser:755\n')
    // A directory the user may not search stays closed: nothing is created inside /root.
    await assert.rejects(sandbox.files.write('/root/new/x.txt', 'no'))
    assert.equal(await sandbox.files.exists('/root/new', { user: 'root' }), false)
  })
})
