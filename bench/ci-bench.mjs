// Stockade benchmark, the code interpreter (issue 3): the official `@e2b/code-interpreter` package
// (unchanged) against a running Stockade server, raw POST /execute over a keep-alive connection,
// the agent alone on its socket, and the peer measured in the same run: a Jupyter kernel (Debian's
// python3-ipykernel) driven by jupyter_client on the host, unsandboxed (bench/lib/jupyter_peer.py).
// Reads E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY like the SDK itself, plus
//   BENCH_DATA_DIR    the server's data directory (for the agent's socket of a sandbox)
//   BENCH_WORK        a scratch directory for the Jupyter peer (its cwd, caches, connection files)
//   BENCH_OUT         where to write the raw samples (JSON, milliseconds)
//   BENCH_E2B_MODULES the node_modules that holds @e2b/code-interpreter (default tests/e2b-js/node_modules)
//   BENCH_N_CELL / BENCH_N_IMPORT / BENCH_N_NOTEBOOK  run counts (200 / 10 / 5)
//
// Series that compare with each other are interleaved (one sample of each per round, the order
// rotating), so that they see the same background load. Every timed region covers client calls
// only; checks (the value is 2, no error, two PNGs, the CSV exists) and kills happen outside it.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import http from 'node:http'

const here = path.dirname(fileURLToPath(import.meta.url))
const modules = process.env.BENCH_E2B_MODULES ?? path.join(here, '..', 'tests', 'e2b-js', 'node_modules')
const require = createRequire(path.join(modules, 'noop.js'))
const { Sandbox } = require('@e2b/code-interpreter')
const ciVersion = JSON.parse(fs.readFileSync(path.join(modules, '@e2b', 'code-interpreter', 'package.json'), 'utf8')).version

const N_CELL = Number(process.env.BENCH_N_CELL ?? 200)
const N_IMPORT = Number(process.env.BENCH_N_IMPORT ?? 10)
const N_NOTEBOOK = Number(process.env.BENCH_N_NOTEBOOK ?? 5)
const WARMUP_CELL = 20
const DATA = process.env.BENCH_DATA_DIR
const WORK = process.env.BENCH_WORK
const OUT = process.env.BENCH_OUT ?? '/dev/stdout'
const REQ = { requestTimeoutMs: 60_000 }
if (!DATA || !WORK) throw new Error('BENCH_DATA_DIR and BENCH_WORK are required')

const nowMs = () => performance.now()
const log = (...a) => console.error('[ci-bench]', ...a)
const check = (ok, what) => {
  if (!ok) throw new Error(`check failed: ${what}`)
}

// The notebook: a DataFrame, describe(), groupby, prints, two plots shown with plt.show(), a CSV.
const NOTEBOOK = [
  'import numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt',
  [
    'rng = np.random.default_rng(42)',
    'df = pd.DataFrame({',
    '    "city": rng.choice(["Paris", "Lyon", "Nice", "Lille", "Brest"], 2000),',
    '    "year": rng.integers(2015, 2025, 2000),',
    '    "sales": rng.normal(100, 25, 2000).round(2),',
    '    "units": rng.integers(1, 50, 2000),',
    '})',
    'print(df.shape)',
    'df.head()',
  ].join('\n'),
  'df.describe()',
  'by_city = df.groupby("city").agg(sales=("sales", "sum"), units=("units", "mean"))\nby_city',
  'print(df.dtypes)\nprint("total sales:", round(df["sales"].sum(), 2))',
  'by_year = df.groupby("year")["sales"].sum()\nprint(by_year.to_string())',
  'fig, ax = plt.subplots(figsize=(6, 4))\nby_year.plot(ax=ax, marker="o", title="Sales by year")\nplt.show()',
  'fig, ax = plt.subplots(figsize=(6, 4))\nby_city["sales"].plot.bar(ax=ax, title="Sales by city")\nplt.show()',
  'top = df.sort_values("sales", ascending=False).head(10)\nprint(top.to_string())',
  'import os\ndf.to_csv("sales.csv", index=False)\nprint(os.path.getsize("sales.csv"), "bytes written")',
]

/** A child process answering one line per JSON request line. */
function lineChild(argv, env) {
  const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'], env })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return {
    async ask(obj) {
      child.stdin.write(JSON.stringify(obj) + '\n')
      const { value } = await lines.next()
      if (value == null) throw new Error(`${path.basename(argv[1])} exited`)
      return value
    },
    async close() {
      child.stdin.end()
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(t)
    },
  }
}

/** bench/lib/jupyter_peer.py: times Jupyter kernel starts and cells on its side. */
function jupyterPeer() {
  const c = lineChild(['/usr/bin/python3', path.join(here, 'lib', 'jupyter_peer.py'), path.join(WORK, 'jupyter')], process.env)
  const ask = async (obj) => {
    const a = JSON.parse(await c.ask(obj))
    if (a.error && obj.op !== 'exec') throw new Error(`jupyter peer ${obj.op}: ${a.error}`)
    return a
  }
  return {
    versions: () => ask({ op: 'versions' }),
    start: async () => (await ask({ op: 'start' })).ms,
    exec: (code) => ask({ op: 'exec', code }),
    stop: () => ask({ op: 'stop' }),
    close: () => c.close(),
  }
}

/** bench/lib/cell_probe.py on a sandbox's agent socket: a cell without server or HTTP. */
function agentProbe(sandboxId) {
  const sock = path.join(DATA, 'runtime', 'runc', 'sandboxes', sandboxId, 'disk', 'run', 'agent.sock')
  const c = lineChild(['/usr/bin/python3', path.join(here, 'lib', 'cell_probe.py'), sock], process.env)
  return {
    async cell(code, expect) {
      const a = await c.ask({ code, contextId: null, expect })
      if (a.startsWith('ERR')) throw new Error(`agent probe: ${a}`)
      const [ms, accepted] = a.split(' ').map(Number)
      return { ms, accepted }
    },
    close: () => c.close(),
  }
}

/** POST /execute on the sandbox route with node's http module over one keep-alive connection. */
function rawExecute(sbx) {
  const url = new URL('/execute', process.env.E2B_SANDBOX_URL ?? process.env.E2B_API_URL)
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const headers = {
    'Content-Type': 'application/json',
    'E2b-Sandbox-Id': sbx.sandboxId,
    'E2b-Sandbox-Port': '49999',
    'X-Access-Token': sbx.envdAccessToken,
  }
  return {
    cell: (code) =>
      new Promise((resolve, reject) => {
        const body = Buffer.from(JSON.stringify({ code }))
        const t0 = nowMs()
        const req = http.request(url, { method: 'POST', agent, headers: { ...headers, 'Content-Length': body.length } }, (resp) => {
          // The server sends the headers as soon as the agent has accepted the cell, before it runs.
          const headersMs = nowMs() - t0
          const chunks = []
          resp.on('data', (c) => chunks.push(c))
          resp.on('end', () => {
            const ms = nowMs() - t0
            resolve({ ms, headersMs, status: resp.statusCode, text: Buffer.concat(chunks).toString('utf8') })
          })
        })
        req.on('error', reject)
        req.end(body)
      }),
    // The floor of any request: GET /health (no auth, no sandbox) on the same connection.
    health: () =>
      new Promise((resolve, reject) => {
        const t0 = nowMs()
        const req = http.request(new URL('/health', url), { agent }, (resp) => {
          resp.resume()
          resp.on('end', () => (resp.statusCode === 200 ? resolve(nowMs() - t0) : reject(new Error(`/health ${resp.statusCode}`))))
        })
        req.on('error', reject)
        req.end()
      }),
    close: () => agent.destroy(),
  }
}

function rotate(fns, k) {
  return fns.slice(k % fns.length).concat(fns.slice(0, k % fns.length))
}

// ---- 1. `1+1` in a warm context: SDK, raw HTTP, agent alone, Jupyter (+ GET /health), interleaved
async function onePlusOne(jup) {
  const sbx = await Sandbox.create(REQ)
  const probe = agentProbe(sbx.sandboxId)
  const raw = rawExecute(sbx)
  const xs = { sdk: [], raw: [], raw_headers: [], agent: [], agent_accepted: [], health: [], jupyter: [] }
  try {
    await jup.start()
    const series = {
      sdk: async () => {
        const t0 = nowMs()
        const e = await sbx.runCode('1+1')
        const ms = nowMs() - t0
        check(e.text === '2' && !e.error, `runCode('1+1') gave ${JSON.stringify(e.toJSON?.() ?? e)}`)
        return ms
      },
      raw: async () => {
        const r = await raw.cell('1+1')
        check(r.status === 200 && r.text.includes('"text":"2"') && r.text.includes('"end_of_execution"')
          && !r.text.includes('"type":"error"'), `raw /execute gave ${r.status} ${r.text}`)
        xs.raw_headers.push(r.headersMs)
        return r.ms
      },
      agent: async () => {
        const r = await probe.cell('1+1', '2')
        xs.agent_accepted.push(r.accepted)
        return r.ms
      },
      health: () => raw.health(),
      jupyter: async () => {
        const r = await jup.exec('1+1')
        check(r.status === 'ok' && r.text === '2', `jupyter 1+1 gave ${JSON.stringify(r)}`)
        return r.ms
      },
    }
    // The first cell starts the default context's kernel; then everything warms up.
    for (let i = 0; i < WARMUP_CELL; i++) for (const f of Object.values(series)) await f()
    xs.raw_headers.length = 0
    xs.agent_accepted.length = 0
    const names = Object.keys(series)
    for (let i = 0; i < N_CELL; i++) {
      for (const k of rotate(names, i)) xs[k].push(await series[k]())
    }
    log(`1+1 x${N_CELL} (SDK, raw HTTP, agent, GET /health, Jupyter) done`)
    return { sbx, xs }
  } catch (e) {
    await sbx.kill().catch(() => {})
    throw e
  } finally {
    raw.close()
    await probe.close()
    await jup.stop()
  }
}

// ---- 2. first cell `import pandas`: new context, default context after create, Jupyter ------
async function firstImport(sbx, jup) {
  const ctx = { create: [], first: [], total: [] }
  const dflt = { create: [], first: [], total: [] }
  const jupyter = { start: [], first: [], total: [] }
  const series = {
    ctx: async () => {
      const t0 = nowMs()
      const c = await sbx.createCodeContext()
      const t1 = nowMs()
      const e = await sbx.runCode('import pandas', { context: c })
      const t2 = nowMs()
      check(!e.error, `import pandas in a new context: ${JSON.stringify(e.error)}`)
      await sbx.removeCodeContext(c)
      return [ctx, { create: t1 - t0, first: t2 - t1, total: t2 - t0 }]
    },
    dflt: async () => {
      const t0 = nowMs()
      const s = await Sandbox.create(REQ)
      const t1 = nowMs()
      try {
        const e = await s.runCode('import pandas')
        const t2 = nowMs()
        check(!e.error, `import pandas in the default context: ${JSON.stringify(e.error)}`)
        return [dflt, { create: t1 - t0, first: t2 - t1, total: t2 - t0 }]
      } finally {
        await s.kill()
      }
    },
    jupyter: async () => {
      const start = await jup.start()
      const r = await jup.exec('import pandas')
      await jup.stop()
      check(r.status === 'ok', `jupyter import pandas: ${JSON.stringify(r)}`)
      return [jupyter, { start, first: r.ms, total: start + r.ms }]
    },
  }
  const names = Object.keys(series)
  for (let i = 0; i < 2; i++) for (const f of Object.values(series)) await f()
  for (let i = 0; i < N_IMPORT; i++) {
    for (const k of rotate(names, i)) {
      const [into, sample] = await series[k]()
      for (const [key, v] of Object.entries(sample)) into[key].push(v)
    }
  }
  log(`first cell import pandas x${N_IMPORT} (new context, default context after create, Jupyter) done`)
  return { ctx, dflt, jupyter }
}

// ---- 3. the 10-cell notebook: a fresh sandbox vs a fresh Jupyter kernel ---------------------
function checkNotebook(pngs, errors, stdoutLast, who) {
  check(errors.length === 0, `${who} notebook errors: ${errors.join('; ')}`)
  check(pngs === 2, `${who} notebook gave ${pngs} PNGs, expected 2`)
  check(/^\d+ bytes written/.test(stdoutLast), `${who} notebook's last cell printed ${JSON.stringify(stdoutLast)}`)
}

async function notebook(jup) {
  const stockade = { total: [], create: [], cells: [], per_cell: [] }
  const jupyter = { total: [], start: [], cells: [], per_cell: [] }
  const csv = path.join(WORK, 'jupyter', 'cwd', 'sales.csv')
  const series = {
    stockade: async () => {
      const t0 = nowMs()
      const s = await Sandbox.create(REQ)
      const t1 = nowMs()
      try {
        const per = []
        const execs = []
        for (const code of NOTEBOOK) {
          const a = nowMs()
          execs.push(await s.runCode(code))
          per.push(nowMs() - a)
        }
        const t2 = nowMs()
        // --- outside the timed region ---
        const pngs = execs.flatMap((e) => e.results).filter((r) => r.png).length
        checkNotebook(pngs, execs.filter((e) => e.error).map((e) => `${e.error.name}: ${e.error.value}`),
          execs.at(-1).logs.stdout.join(''), 'Stockade')
        check(await s.files.exists('/home/user/sales.csv'), 'the notebook wrote /home/user/sales.csv')
        check(execs[2].results[0]?.html?.includes('<table'), 'describe() came back as an HTML table')
        return [stockade, { total: t2 - t0, create: t1 - t0, cells: t2 - t1, per_cell: per }]
      } finally {
        await s.kill()
      }
    },
    jupyter: async () => {
      fs.rmSync(csv, { force: true })
      const start = await jup.start()
      const rs = []
      for (const code of NOTEBOOK) rs.push(await jup.exec(code))
      await jup.stop()
      const per = rs.map((r) => r.ms)
      const cells = per.reduce((a, b) => a + b, 0)
      checkNotebook(rs.reduce((a, r) => a + r.png, 0), rs.filter((r) => r.error).map((r) => r.error), rs.at(-1).stdout, 'Jupyter')
      check(fs.existsSync(csv), 'the Jupyter notebook wrote sales.csv')
      check(rs[2].html === 1, 'describe() came back with HTML from Jupyter')
      return [jupyter, { total: start + cells, start, cells, per_cell: per }]
    },
  }
  const names = Object.keys(series)
  for (const f of Object.values(series)) await f()
  for (let i = 0; i < N_NOTEBOOK; i++) {
    for (const k of rotate(names, i)) {
      const [into, sample] = await series[k]()
      for (const [key, v] of Object.entries(sample)) into[key].push(v)
    }
  }
  log(`10-cell notebook x${N_NOTEBOOK} (fresh sandbox, fresh Jupyter kernel) done`)
  return { stockade, jupyter }
}

const started = Date.now()
const jup = jupyterPeer()
let out
try {
  const versions = await jup.versions()
  const { sbx, xs } = await onePlusOne(jup)
  let imports
  try {
    imports = await firstImport(sbx, jup)
  } finally {
    await sbx.kill()
  }
  const nb = await notebook(jup)
  out = {
    code_interpreter_version: ciVersion,
    jupyter: versions,
    wall_seconds: (Date.now() - started) / 1000,
    cell: xs,
    import_pandas: imports,
    notebook: nb,
    notebook_cells: NOTEBOOK,
  }
} finally {
  await jup.close()
}
fs.writeFileSync(OUT, JSON.stringify(out))
log(`done in ${out.wall_seconds.toFixed(1)} s`)
