// Network policy through the E2B SDK's own options: `network.allowOut`,
// `network.rules` (header transforms), `allowInternetAccess`, and
// `sandbox.updateNetwork()`. The SDK sends only E2B's fields, so this is how an
// unchanged E2B program chooses its sandbox's network on Stockade.
//
// A site runs in this Node process on 127.0.0.1; the server must map the name
// in STOCKADE_TEST_SITE (e.g. "allowed.test") to 127.0.0.1 and let sandboxes reach
// that address (E2bJsSdkIT configures both). Without it the tests are skipped.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import http from 'node:http'
import { preflight, withSandbox, TEST_TIMEOUT_MS } from '../lib/helpers.js'

const SITE = process.env.STOCKADE_TEST_SITE
const opts = { timeout: TEST_TIMEOUT_MS, skip: SITE ? false : 'STOCKADE_TEST_SITE is not set' }

let server
let port
const seen = []

before(async () => {
  await preflight()
  server = http.createServer((req, res) => {
    seen.push({ url: req.url, auth: req.headers.authorization ?? null })
    res.end(`site says hi, auth=${req.headers.authorization ?? 'none'}`)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = server.address().port
})

after(() => new Promise((resolve) => (server ? server.close(resolve) : resolve())))

/**
 * curl through the sandbox's proxy (HTTP_PROXY is set for every process); prints the status and body.
 * `--noproxy ''` sends loopback addresses through it too (NO_PROXY keeps them inside the sandbox).
 */
async function curl(sandbox, url) {
  const r = await sandbox.commands.run(`curl -sS -m 10 --noproxy '' -w ' [%{http_code}]' ${url} || true`)
  return r.stdout + r.stderr
}

test('no network by default: the proxy refuses and says why', opts, async () => {
  await withSandbox(async (sandbox) => {
    const out = await curl(sandbox, `http://${SITE}:${port}/`)
    assert.match(out, /\[403\]/)
    assert.match(out, /refused/)
    const direct = await sandbox.commands.run(
      `curl -sS -m 5 --noproxy '*' http://127.0.0.1:${port}/ || echo EXIT=$?`,
    )
    assert.match(direct.stdout + direct.stderr, /EXIT=7/, 'code that ignores the proxy reaches nothing')
  })
})

test('allowOut is an allow-list; rules add headers; updateNetwork changes it live', opts, async () => {
  const before = seen.length
  await withSandbox(
    {
      network: {
        allowOut: [`${SITE}:${port}`],
        rules: { [SITE]: [{ transform: { headers: { Authorization: 'Bearer from-the-rules' } } }] },
      },
    },
    async (sandbox) => {
      const ok = await curl(sandbox, `http://${SITE}:${port}/x`)
      assert.match(ok, /site says hi, auth=Bearer from-the-rules \[200\]/)
      assert.equal(seen.length, before + 1)
      // The sandbox never sees the header value: only the proxy adds it.
      const env = await sandbox.commands.run('env')
      assert.doesNotMatch(env.stdout, /from-the-rules/)
      // Not listed: the same site by address.
      assert.match(await curl(sandbox, `http://127.0.0.1:${port}/`), /\[403\]/)

      await sandbox.updateNetwork({ allowOut: [] })
      assert.match(await curl(sandbox, `http://${SITE}:${port}/`), /\[403\]/)
      assert.equal(seen.length, before + 1, 'nothing reached the site after the update')
    },
  )
})

test('allowInternetAccess: true without the operator\'s open egress: created without network, and says so', opts, async () => {
  // Older SDKs (and the Python SDK) send allow_internet_access: true on every create; on a server
  // without --allow-open-network the sandbox gets the most the operator permits (here: none).
  await withSandbox({ allowInternetAccess: true }, async (sandbox) => {
    const r = await sandbox.commands.run('echo works')
    assert.equal(r.stdout, 'works\n')
    const info = await sandbox.getInfo()
    assert.equal(info.allowInternetAccess, false)
    const out = await curl(sandbox, `http://${SITE}:${port}/`)
    assert.match(out, /\[403\]/)
    assert.match(out, /open internet access was asked for through allow_internet_access but this server does not permit it/)
  })
})
