// Signed file URLs of secure sandboxes: sandbox.downloadUrl()/uploadUrl() give
// E2B_SANDBOX_URL/files?path=..&signature=v1_..[&signature_expiration=..], fetched
// with no header at all; the server finds the sandbox from the signature.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { preflight, withSandbox, TEST_TIMEOUT_MS } from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }

async function upload(url, content) {
  const form = new FormData()
  form.append('file', content)
  return fetch(url, { method: 'POST', body: form })
}

test('signed download and upload URLs work without any header, as the default user and as root', opts, async () => {
  await withSandbox({ secure: true }, async (sandbox) => {
    await sandbox.files.write('hello.txt', 'hello world')
    let res = await fetch(await sandbox.downloadUrl('hello.txt'))
    assert.equal(res.status, 200)
    assert.equal(await res.text(), 'hello world')

    res = await fetch(await sandbox.downloadUrl('hello.txt', { useSignatureExpiration: 10_000 }))
    assert.equal(res.status, 200)
    assert.equal(await res.text(), 'hello world')

    res = await upload(await sandbox.uploadUrl('up.txt', { useSignatureExpiration: 10_000 }), 'uploaded')
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), [{ name: 'up.txt', path: '/home/user/up.txt', type: 'file' }])
    assert.equal(await sandbox.files.read('up.txt'), 'uploaded')

    res = await upload(await sandbox.uploadUrl('root.txt', { user: 'root' }), 'as root')
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), [{ name: 'root.txt', path: '/root/root.txt', type: 'file' }])
    res = await fetch(await sandbox.downloadUrl('root.txt', { user: 'root' }))
    assert.equal(await res.text(), 'as root')
  })
})

test('an expired signature is refused with E2B\'s exact 401 body, for download and upload', opts, async () => {
  await withSandbox({ secure: true }, async (sandbox) => {
    await sandbox.files.write('hello.txt', 'hello world')
    const expected = { code: 401, message: 'signature is already expired' }
    let res = await fetch(await sandbox.downloadUrl('hello.txt', { useSignatureExpiration: -10_000 }))
    assert.equal(res.status, 401)
    assert.deepEqual(await res.json(), expected)
    res = await upload(await sandbox.uploadUrl('hello.txt', { useSignatureExpiration: -100_000 }), 'x')
    assert.equal(res.status, 401)
    assert.deepEqual(await res.json(), expected)
    assert.equal(await sandbox.files.read('hello.txt'), 'hello world')
  })
})

test('a signed URL is good for its own operation, path and user only', opts, async () => {
  await withSandbox({ secure: true }, async (sandbox) => {
    await sandbox.files.write('hello.txt', 'hello world')
    await sandbox.files.write('other.txt', 'secret')
    const read = new URL(await sandbox.downloadUrl('hello.txt'))

    // A read URL used for a write.
    let res = await upload(read.toString(), 'overwritten')
    assert.equal(res.status, 401)
    // The same signature for another path, and for another user.
    const otherPath = new URL(read)
    otherPath.searchParams.set('path', 'other.txt')
    res = await fetch(otherPath)
    assert.equal(res.status, 401)
    const asRoot = new URL(read)
    asRoot.searchParams.set('username', 'root')
    res = await fetch(asRoot)
    assert.equal(res.status, 401)
    // A write URL used for a read.
    res = await fetch(await sandbox.uploadUrl('hello.txt'))
    assert.equal(res.status, 401)
    // A tampered signature.
    const tampered = new URL(read)
    tampered.searchParams.set('signature', 'v1_' + 'A'.repeat(43))
    res = await fetch(tampered)
    assert.equal(res.status, 401)
    assert.doesNotMatch(await res.text(), /expired/)
    assert.equal(await sandbox.files.read('hello.txt'), 'hello world')
  })
})
