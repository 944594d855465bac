// Stockade benchmark, part 2: the official `e2b` JS SDK (unchanged) against a running Stockade
// server. Reads E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY like the SDK itself, plus
//   BENCH_DATA_DIR   the server's data directory (to read phase timestamps off the host, below)
//   BENCH_OUT        where to write the raw samples (JSON, milliseconds)
//   BENCH_E2B_MODULES the node_modules that holds e2b (default tests/e2b-js/node_modules)
//   BENCH_N_CREATE / BENCH_N_ECHO / BENCH_N_PY / BENCH_N_FILE  run counts (100 / 200 / 50 / 50)
//
// Every timed region covers SDK calls only; checks, host-side stats and kills happen outside it.
//
// Phase timestamps of a create come from the host's own files, read after the timed region:
// the sandbox's state directory (birth time: the runtime began), its config.json (last write:
// just before `runc run`), runc's state.json `created` field (runc's container init is set up),
// and the agent's socket (birth time: the agent inside listens). Same clock (CLOCK_REALTIME) as
// performance.timeOrigin + performance.now() here, so no product code is touched to get them.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { spawn } from 'node:child_process'
import readline from 'node:readline'
import http from 'node:http'

const here = path.dirname(fileURLToPath(import.meta.url))
const modules = process.env.BENCH_E2B_MODULES ?? path.join(here, '..', 'tests', 'e2b-js', 'node_modules')
const require = createRequire(path.join(modules, 'noop.js'))
const { Sandbox } = require('e2b')
const e2bVersion = JSON.parse(fs.readFileSync(path.join(modules, 'e2b', 'package.json'), 'utf8')).version

const N_CREATE = Number(process.env.BENCH_N_CREATE ?? 100)
const N_ECHO = Number(process.env.BENCH_N_ECHO ?? 200)
const N_PY = Number(process.env.BENCH_N_PY ?? 50)
const N_FILE = Number(process.env.BENCH_N_FILE ?? 50)
const WARMUP_CREATE = 3
const DATA = process.env.BENCH_DATA_DIR
const OUT = process.env.BENCH_OUT ?? '/dev/stdout'
const REQ = { requestTimeoutMs: 30_000 }

// Run inside the sandbox as `python3 -c '<this>' N`; no single quotes allowed in it.
const IN_SANDBOX_TIMER = `
import json, subprocess, sys, time
n = int(sys.argv[1])
def t(argv):
    for _ in range(3):
        subprocess.run(argv, stdout=subprocess.DEVNULL)
    xs = []
    for _ in range(n):
        a = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL)
        xs.append((time.perf_counter() - a) * 1000)
    return xs
print(json.dumps({"python": t(["/usr/bin/python3", "-c", "pass"]),
                  "bash_login_echo": t(["/bin/bash", "-l", "-c", "echo hi"])}))
`
const nowMs = () => performance.now()
const wallMs = () => performance.timeOrigin + performance.now()
const log = (...a) => console.error('[e2b-bench]', ...a)

function birthMs(p) {
  try {
    const s = fs.statSync(p, { bigint: true })
    return Number(s.birthtimeNs) / 1e6
  } catch {
    return null
  }
}
function mtimeMs(p) {
  try {
    return Number(fs.statSync(p, { bigint: true }).mtimeNs) / 1e6
  } catch {
    return null
  }
}
function runcCreatedMs(id) {
  try {
    const st = JSON.parse(fs.readFileSync(`/run/runc/stockade-${id}/state.json`, 'utf8'))
    // RFC 3339 with nanoseconds: keep the sub-millisecond part Date.parse drops.
    const m = /\.(\d+)Z$/.exec(st.created)
    const base = Date.parse(st.created.replace(/\.\d+Z$/, 'Z'))
    return m ? base + Number(`0.${m[1]}`) * 1000 : base
  } catch {
    return null
  }
}

function phases(id, t0wall, tCreatedWall, tEchoWall) {
  if (!DATA) return null
  const state = path.join(DATA, 'runtime', 'runc', 'sandboxes', id)
  const dir = birthMs(state)
  const cfg = mtimeMs(path.join(state, 'config.json'))
  const runc = runcCreatedMs(id)
  const sock = birthMs(path.join(state, 'disk', 'run', 'agent.sock'))
  if ([dir, cfg, runc, sock].some((v) => v == null)) return null
  return {
    request_to_runtime: dir - t0wall, // SDK + HTTP + server parsing, id, checks
    host_prep: cfg - dir, // tmpfs + overlay mounts, chowns, config.json
    runc_create: runc - cfg, // `runc run` up to the container's init being set up
    agent_start: sock - runc, // runc start + python agent start until it listens
    ready_to_response: tCreatedWall - sock, // hello round trip, HTTP response, SDK
    first_echo: tEchoWall - tCreatedWall,
  }
}

function hostTimer() {
  const child = spawn('/usr/bin/python3', [path.join(here, 'lib', 'host_timer.py')], { stdio: ['pipe', 'pipe', 'inherit'] })
  const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return {
    async time(argv) {
      child.stdin.write(JSON.stringify(argv) + '\n')
      const { value } = await lines.next()
      if (value == null || value.startsWith('ERR')) throw new Error(`host command ${argv.join(' ')} failed: ${value}`)
      return Number(value)
    },
    close() {
      child.stdin.end()
    },
  }
}

async function createToFirstEcho() {
  for (let i = 0; i < WARMUP_CREATE; i++) {
    const s = await Sandbox.create(REQ)
    await s.commands.run('echo hi')
    await s.kill()
  }
  const total = []
  const create = []
  const echo = []
  const phaseRows = []
  for (let i = 0; i < N_CREATE; i++) {
    const w0 = wallMs()
    const t0 = nowMs()
    const sbx = await Sandbox.create(REQ)
    const t1 = nowMs()
    const r = await sbx.commands.run('echo hi')
    const t2 = nowMs()
    // --- outside the timed region ---
    if (r.stdout !== 'hi\n' || r.exitCode !== 0) throw new Error(`unexpected echo result: ${JSON.stringify(r)}`)
    total.push(t2 - t0)
    create.push(t1 - t0)
    echo.push(t2 - t1)
    const p = phases(sbx.sandboxId, w0, w0 + (t1 - t0), w0 + (t2 - t0))
    if (p) phaseRows.push(p)
    await sbx.kill()
    if ((i + 1) % 25 === 0) log(`create-to-first-echo ${i + 1}/${N_CREATE}`)
  }
  const ph = {}
  for (const k of Object.keys(phaseRows[0] ?? {})) ph[k] = phaseRows.map((r) => r[k])
  return { total, create, echo, phases: ph, warmup: WARMUP_CREATE }
}

async function inRunningSandbox() {
  const sbx = await Sandbox.create(REQ)
  try {
    // echo
    for (let i = 0; i < 10; i++) await sbx.commands.run('echo hi')
    const echo = []
    for (let i = 0; i < N_ECHO; i++) {
      const t0 = nowMs()
      const r = await sbx.commands.run('echo hi')
      echo.push(nowMs() - t0)
      if (r.stdout !== 'hi\n') throw new Error(`unexpected echo output ${JSON.stringify(r.stdout)}`)
    }
    log(`echo ${N_ECHO} done`)
    // python3 -c pass
    for (let i = 0; i < 5; i++) await sbx.commands.run('python3 -c pass')
    // Interleaved with bare python on the host, so that both see the same background load: the
    // ratio target compares these two series. The host runs are timed by a persistent Python
    // helper (bench/lib/host_timer.py), the same way as the in-sandbox timer below.
    const host = hostTimer()
    const py = []
    const bare = []
    try {
      for (let i = 0; i < 5; i++) await host.time(['/usr/bin/python3', '-c', 'pass'])
      for (let i = 0; i < N_PY; i++) {
        bare.push(await host.time(['/usr/bin/python3', '-c', 'pass']))
        const t0 = nowMs()
        const r = await sbx.commands.run('python3 -c pass')
        py.push(nowMs() - t0)
        if (r.exitCode !== 0) throw new Error('python3 -c pass failed')
      }
    } finally {
      host.close()
    }
    // the same command by absolute path, no shell lookup difference
    const pyAbs = []
    for (let i = 0; i < N_PY; i++) {
      const t0 = nowMs()
      await sbx.commands.run('/usr/bin/python3 -c pass')
      pyAbs.push(nowMs() - t0)
    }
    log(`python3 ${N_PY} done`)
    // The same commands timed inside the sandbox (a Python loop around subprocess), so that what
    // the sandbox costs can be told apart from what the command path (SDK, HTTP, server, agent) costs.
    const inside = await sbx.commands.run(`/usr/bin/python3 -c '${IN_SANDBOX_TIMER}' ${N_PY}`)
    const insideTimes = JSON.parse(inside.stdout)
    // 1 MiB write + read round trip
    const blob = crypto.randomBytes(1024 * 1024)
    const ab = blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength)
    for (let i = 0; i < 3; i++) {
      await sbx.files.write('/home/user/bench.bin', ab)
      await sbx.files.read('/home/user/bench.bin', { format: 'bytes' })
    }
    const file = []
    const fileWrite = []
    const fileRead = []
    for (let i = 0; i < N_FILE; i++) {
      const p = `/home/user/bench-${i}.bin`
      const t0 = nowMs()
      await sbx.files.write(p, ab)
      const t1 = nowMs()
      const back = await sbx.files.read(p, { format: 'bytes' })
      const t2 = nowMs()
      file.push(t2 - t0)
      fileWrite.push(t1 - t0)
      fileRead.push(t2 - t1)
      if (!Buffer.from(back).equals(blob)) throw new Error('1 MiB round trip returned different bytes')
      await sbx.files.remove(p)
    }
    log(`file ${N_FILE} done`)
    return { echo, py, bare, pyAbs, file, fileWrite, fileRead, inside: insideTimes }
  } finally {
    await sbx.kill()
  }
}

// The same `echo` as the SDK sends it (/bin/bash -l -c 'echo hi'), but as a raw Connect call over
// one keep-alive HTTP connection: the server's share of a command, without the SDK's.
async function rawConnectEcho(n) {
  const url = process.env.E2B_API_URL
  const key = process.env.E2B_API_KEY
  const res = await fetch(`${url}/sandboxes`, {
    method: 'POST',
    headers: { 'X-API-Key': key, 'Content-Type': 'application/json' },
    body: JSON.stringify({ templateID: 'base' }),
  })
  if (!res.ok) throw new Error(`raw create failed: ${res.status} ${await res.text()}`)
  const sb = await res.json()
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const body = Buffer.from(JSON.stringify({ process: { cmd: '/bin/bash', args: ['-l', '-c', 'echo hi'] } }))
  const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), body])
  frame.writeUInt32BE(body.length, 1)
  const once = () =>
    new Promise((resolve, reject) => {
      const t0 = nowMs()
      const req = http.request(`${url}/process.Process/Start`, {
        method: 'POST',
        agent,
        headers: {
          'Content-Type': 'application/connect+json',
          'Connect-Protocol-Version': '1',
          'E2b-Sandbox-Id': sb.sandboxID,
          'X-Access-Token': sb.envdAccessToken,
          'Content-Length': frame.length,
        },
      }, (resp) => {
        const chunks = []
        resp.on('data', (c) => chunks.push(c))
        resp.on('end', () => {
          const ms = nowMs() - t0
          const text = Buffer.concat(chunks).toString('latin1')
          if (resp.statusCode !== 200 || !text.includes('"end"')) reject(new Error(`raw start failed: ${resp.statusCode} ${text}`))
          else resolve(ms)
        })
      })
      req.on('error', reject)
      req.end(frame)
    })
  try {
    for (let i = 0; i < 10; i++) await once()
    const xs = []
    for (let i = 0; i < n; i++) xs.push(await once())
    return xs
  } finally {
    agent.destroy()
    await fetch(`${url}/sandboxes/${sb.sandboxID}`, { method: 'DELETE', headers: { 'X-API-Key': key } })
  }
}

const started = Date.now()
const c = await createToFirstEcho()
const r = await inRunningSandbox()
r.rawEcho = await rawConnectEcho(Math.min(N_ECHO, 100))
log('raw Connect echo done')
const out = {
  e2b_sdk_version: e2bVersion,
  wall_seconds: (Date.now() - started) / 1000,
  create_to_first_echo: c,
  running: r,
}
fs.writeFileSync(OUT, JSON.stringify(out))
log(`done in ${out.wall_seconds.toFixed(1)} s`)
