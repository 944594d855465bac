// Stockade benchmark, issue 5: the first code cell `import pandas` + `df.describe()` through the
// official `@e2b/code-interpreter` (unchanged), in a new context of a running sandbox and in the
// default context of a sandbox just created, on a server with or without a warm pool. With a pool
// whose sandboxes preload numpy, pandas and matplotlib.pyplot, the default-context case is the
// pooled sandbox's preloaded context.
//   BENCH_CASES=ctx,dflt  which cases (ctx: new context; dflt: create + first cell in the default context)
//   BENCH_N               samples per case (10); 2 warm-up rounds first
//   BENCH_POOL            the server's pool size (0 = none): before each dflt sample the harness
//                         waits until the pool is full (the server's stockade_pool_ready) and the
//                         sandboxes on the host are idle (their preload done: cpuacct), so each
//                         sample measures a create the pool serves with a preloaded interpreter
//   BENCH_DATA_DIR, BENCH_OUT, BENCH_E2B_MODULES, E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY
// Each sample's cell also notes whether pandas was already imported when it began (the preload),
// read after the timed region.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const modules = process.env.BENCH_E2B_MODULES ?? path.join(here, '..', 'tests', 'e2b-js', 'node_modules')
const require = createRequire(path.join(modules, 'noop.js'))
const { Sandbox } = require('@e2b/code-interpreter')

const CASES = (process.env.BENCH_CASES ?? 'ctx,dflt').split(',')
const N = Number(process.env.BENCH_N ?? 10)
const POOL = Number(process.env.BENCH_POOL ?? 0)
const DATA = process.env.BENCH_DATA_DIR
const OUT = process.env.BENCH_OUT ?? '/dev/stdout'
const REQ = { requestTimeoutMs: 120_000 }
if (!DATA) throw new Error('BENCH_DATA_DIR is required')
const SANDBOXES = path.join(DATA, 'runtime', 'runc', 'sandboxes')

export const CELL = [
  'import sys',
  '_preloaded = "pandas" in sys.modules',
  'import pandas as pd',
  'df = pd.DataFrame({"x": range(1000), "y": [i * 0.5 for i in range(1000)]})',
  'df.describe()',
].join('\n')

const nowMs = () => performance.now()
const log = (...a) => console.error('[ci-pool-bench]', ...a)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`)
}
function readyOnHost() {
  try {
    return fs.readdirSync(SANDBOXES).filter((id) => fs.existsSync(path.join(SANDBOXES, id, 'disk', 'run', 'agent.sock'))).length
  } catch {
    return 0
  }
}
/** The server's own count of ready pooled sandboxes (GET /metrics, stockade_pool_ready), or null. */
async function poolReady() {
  try {
    const res = await fetch(`${process.env.E2B_API_URL}/metrics`, { headers: { 'X-API-Key': process.env.E2B_API_KEY } })
    const text = await res.text()
    // The pool code-interpreter-v1 creates take (pools per template, issue 16); else the total.
    const m = /^stockade_pool_ready_sandboxes\{runtime="[^"]*",pool="code-interpreter-v1"\} (\d+)/m.exec(text)
      ?? /^stockade_pool_ready (\d+)/m.exec(text)
    return m ? Number(m[1]) : null
  } catch {
    return null
  }
}
/**
 * Waits until the pool holds `want` ready sandboxes (preload done), by the server's metric, or,
 * when the server has none, until `want` agents besides `held` listen on the host; returns the wait in ms.
 */
async function waitReady(want, held = 0, timeoutMs = 300_000) {
  const t0 = nowMs()
  for (;;) {
    const p = await poolReady()
    const have = p ?? readyOnHost() - held
    if (have >= want) return nowMs() - t0
    if (nowMs() - t0 > timeoutMs) throw new Error(`the pool did not reach ${want} ready sandboxes in ${timeoutMs / 1000} s (has ${have})`)
    await sleep(50)
  }
}

/** CPU time (ns) spent so far by every sandbox on the host (cgroup v1 cpuacct of stockade-*). */
function sandboxCpuNs() {
  const root = '/sys/fs/cgroup/cpuacct'
  let ns = 0
  try {
    for (const d of fs.readdirSync(root)) {
      if (!d.startsWith('stockade-')) continue
      try {
        ns += Number(fs.readFileSync(path.join(root, d, 'cpuacct.usage'), 'utf8'))
      } catch {}
    }
  } catch {}
  return ns
}
/**
 * The pool counts a sandbox as ready once its agent answers, while the preload (interpreter start
 * and imports) still runs inside it. To measure a pooled sandbox whose preload is done, wait until
 * the sandboxes on the host are idle: under 10 ms of CPU in 500 ms. Returns the wait in ms.
 */
async function waitQuiet(timeoutMs = 120_000) {
  const t0 = nowMs()
  let last = sandboxCpuNs()
  for (;;) {
    await sleep(500)
    const now = sandboxCpuNs()
    if (now - last < 10e6) return nowMs() - t0
    if (nowMs() - t0 > timeoutMs) throw new Error('the pooled sandboxes did not go idle in 120 s')
    last = now
  }
}

async function cell(sbx, context) {
  const t0 = nowMs()
  const e = await sbx.runCode(CELL, context ? { context } : {})
  const ms = nowMs() - t0
  check(!e.error, `first cell: ${JSON.stringify(e.error)}`)
  check(e.results[0]?.html?.includes('<table'), 'describe() came back as an HTML table')
  const pre = await sbx.runCode('_preloaded', context ? { context } : {})
  return { ms, preloaded: pre.text === 'True' }
}

async function newContext(sbx) {
  const xs = { total: [], create: [], first: [], preloaded: [] }
  for (let i = 0; i < N + 2; i++) {
    const t0 = nowMs()
    const c = await sbx.createCodeContext()
    const t1 = nowMs()
    const r = await cell(sbx, c)
    await sbx.removeCodeContext(c)
    if (i < 2) continue
    xs.create.push(t1 - t0)
    xs.first.push(r.ms)
    xs.total.push(t1 - t0 + r.ms)
    xs.preloaded.push(r.preloaded)
  }
  log(`new context + first cell x${N} done`)
  return xs
}

async function defaultContext(held) {
  const xs = { total: [], create: [], first: [], preloaded: [], pooled: [], pool_wait_ms: [] }
  for (let i = 0; i < N + 2; i++) {
    const wait = POOL > 0 ? (await waitReady(POOL, held)) + (await waitQuiet()) : 0
    const w0 = performance.timeOrigin + nowMs()
    const t0 = nowMs()
    const s = await Sandbox.create(REQ)
    const t1 = nowMs()
    try {
      const r = await cell(s, null)
      if (i < 2) continue
      let born = null
      try {
        born = Number(fs.statSync(path.join(SANDBOXES, s.sandboxId), { bigint: true }).birthtimeNs) / 1e6
      } catch {}
      xs.create.push(t1 - t0)
      xs.first.push(r.ms)
      xs.total.push(t1 - t0 + r.ms)
      xs.preloaded.push(r.preloaded)
      xs.pooled.push(born == null ? null : born < w0)
      xs.pool_wait_ms.push(wait)
    } finally {
      await s.kill()
    }
  }
  log(`create + first cell in the default context x${N} done (pool ${POOL})`)
  return xs
}

const started = Date.now()
const out = { pool: POOL, cell: CELL }
if (CASES.includes('ctx')) {
  const sbx = await Sandbox.create(REQ)
  try {
    await sbx.runCode('1+1') // the default context's kernel is not what is measured
    out.ctx = await newContext(sbx)
  } finally {
    await sbx.kill()
  }
}
if (CASES.includes('dflt')) out.dflt = await defaultContext(0)
out.wall_seconds = (Date.now() - started) / 1000
fs.writeFileSync(OUT, JSON.stringify(out))
log(`done in ${out.wall_seconds.toFixed(1)} s`)
