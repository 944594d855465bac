// Shared helpers for the e2b JS SDK compatibility suite.
//
// The suite drives the official, unmodified `e2b` package against a Stockade
// server. The server is chosen by the caller through the same environment
// variables the SDK reads itself: E2B_API_URL, E2B_SANDBOX_URL, E2B_API_KEY.

import net from 'node:net'
import crypto from 'node:crypto'
import assert from 'node:assert/strict'
import { Sandbox } from 'e2b'

/** Upper bound for one test; the npm script passes the same value to the runner. */
export const TEST_TIMEOUT_MS = 30_000
/** The 50 MiB round trip gets a little more room. */
export const BIG_TEST_TIMEOUT_MS = 45_000
/** Bound every SDK request so a stalled server fails a test instead of hanging it. */
export const REQUEST_TIMEOUT_MS = 20_000

const REQUIRED_ENV = ['E2B_API_URL', 'E2B_SANDBOX_URL', 'E2B_API_KEY']

let preflightResult

/**
 * Checks the environment and that something listens at E2B_API_URL, once per
 * test file. Without a server every test fails within a few seconds with a
 * message that names the URL, instead of a bare "fetch failed".
 */
export function preflight() {
  preflightResult ??= (async () => {
    const missing = REQUIRED_ENV.filter((name) => !process.env[name])
    if (missing.length > 0) {
      throw new Error(
        `missing environment: ${missing.join(', ')}. Start a Stockade server and set ` +
          'E2B_API_URL=http://127.0.0.1:PORT E2B_SANDBOX_URL=http://127.0.0.1:PORT E2B_API_KEY=e2b_<hex>',
      )
    }
    for (const name of ['E2B_API_URL', 'E2B_SANDBOX_URL']) {
      await probe(name, process.env[name])
    }
    await probeHttp()
  })()
  return preflightResult
}

function probe(name, rawUrl) {
  let url
  try {
    url = new URL(rawUrl)
  } catch {
    return Promise.reject(new Error(`${name}=${rawUrl} is not a URL`))
  }
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80))
  const host = url.hostname.replace(/^\[|\]$/g, '')
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port })
    const fail = (why) => {
      socket.destroy()
      reject(new Error(`cannot connect to the Stockade server at ${name}=${rawUrl}: ${why}`))
    }
    socket.setTimeout(3_000, () => fail('no answer within 3 s'))
    socket.once('error', (err) => fail(err.code || err.message))
    socket.once('connect', () => {
      socket.end()
      resolve()
    })
  })
}

// Something listens; make sure it answers HTTP and accepts the key, so a
// stalled or misconfigured server fails every test in seconds, not minutes.
async function probeHttp() {
  const url = new URL('/v2/sandboxes?limit=1', process.env.E2B_API_URL)
  let res
  try {
    res = await fetch(url, {
      headers: { 'X-API-Key': process.env.E2B_API_KEY },
      signal: AbortSignal.timeout(5_000),
    })
    await res.arrayBuffer()
  } catch (err) {
    throw new Error(`the server at E2B_API_URL=${process.env.E2B_API_URL} did not answer GET ${url.pathname}: ${err.cause?.code || err.message}`)
  }
  if (res.status === 401 || res.status === 403) {
    throw new Error(`the server at E2B_API_URL=${process.env.E2B_API_URL} refused E2B_API_KEY (HTTP ${res.status})`)
  }
}

/** True when the server runs on this machine, so host-side file checks mean something. */
export function serverIsLocal() {
  const hosts = ['E2B_API_URL', 'E2B_SANDBOX_URL'].map((name) => new URL(process.env[name]).hostname)
  return hosts.every((h) => h === '127.0.0.1' || h === 'localhost' || h === '[::1]' || h === '::1')
}

/** A short random token, to keep names unique across runs and parallel files. */
export function uid() {
  return crypto.randomBytes(6).toString('hex')
}

export function sha256(bytes) {
  return crypto.createHash('sha256').update(bytes).digest('hex')
}

/**
 * Creates a sandbox (default template unless `template` is given), runs `fn`
 * with it and kills it afterwards whatever happened.
 */
export async function withSandbox(opts, fn) {
  if (typeof opts === 'function') {
    fn = opts
    opts = {}
  }
  const { template, ...rest } = opts
  const createOpts = { requestTimeoutMs: REQUEST_TIMEOUT_MS, timeoutMs: 120_000, ...rest }
  const sandbox = template ? await Sandbox.create(template, createOpts) : await Sandbox.create(createOpts)
  try {
    return await fn(sandbox)
  } finally {
    await sandbox.kill().catch(() => {})
  }
}

/**
 * Awaits `promiseOrFn` and asserts it rejects with an instance of `cls`.
 * Returns the error for further checks.
 */
export async function rejectsWith(promiseOrFn, cls, what = '') {
  const promise = typeof promiseOrFn === 'function' ? promiseOrFn() : promiseOrFn
  let value
  try {
    value = await promise
  } catch (err) {
    assert.ok(
      err instanceof cls,
      `${what ? what + ': ' : ''}expected ${cls.name}, got ${err?.constructor?.name}: ${err?.message}`,
    )
    return err
  }
  assert.fail(`${what ? what + ': ' : ''}expected ${cls.name}, but it resolved with ${JSON.stringify(value)}`)
}

/** Polls `check` until it returns a truthy value or `timeoutMs` passes. */
export async function eventually(check, { timeoutMs = 5_000, intervalMs = 100, what = 'condition' } = {}) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    last = await check()
    if (last) return last
    if (Date.now() > deadline) assert.fail(`${what} not reached within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** Compares two dotted numeric versions ("0.5.7"); returns -1, 0 or 1. */
export function compareVersions(a, b) {
  const parse = (v) => {
    const m = /^v?(\d+)\.(\d+)\.(\d+)/.exec(String(v))
    if (!m) throw new Error(`not a version: ${v}`)
    return m.slice(1).map(Number)
  }
  const [x, y] = [parse(a), parse(b)]
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1
  return 0
}

/** Reads every page of a paginator, refusing to loop forever. */
export async function allPages(paginator, maxPages = 50) {
  const pages = []
  while (paginator.hasNext) {
    if (pages.length >= maxPages) assert.fail(`more than ${maxPages} pages: the X-Next-Token never ends`)
    pages.push(await paginator.nextItems())
  }
  return pages
}
