// Stockade benchmark, issue 5: creates through the official `e2b` JS SDK (unchanged) against a
// running server with or without a warm pool, and density. One mode per run:
//   BENCH_MODE=seq        BENCH_N sequential create → first `echo` (each sandbox killed after its
//                         sample, outside the timed region; no sleeping: the pool refills only as
//                         it does in real use)
//   BENCH_MODE=conc       BENCH_BURSTS bursts of BENCH_N concurrent create → first `echo` (all
//                         started at once; with a pool, each burst waits until the pool is full)
//   BENCH_MODE=sustained  BENCH_CLIENTS clients loop create + echo + kill for BENCH_SECONDS
//   BENCH_MODE=density    BENCH_STEP idle sandboxes at a time until the echo p99 over
//                         BENCH_PROBES echos into random live sandboxes passes BENCH_P99_MS, host
//                         memory use passes BENCH_MEM_PCT %, or BENCH_MAX sandboxes
// Also reads E2B_API_URL / E2B_SANDBOX_URL / E2B_API_KEY (like the SDK), BENCH_DATA_DIR (the
// server's data directory: which sandboxes exist and when their state directory was made),
// BENCH_POOL (the server's pool size; 0 = no pool), BENCH_SERVER_PID (its RSS in density, its CPU in bursts),
// BENCH_OUT (raw samples, JSON, milliseconds) and BENCH_E2B_MODULES.
//
// "pooled" in a sample: the sandbox's state directory existed before create() was called, i.e.
// the server handed over a ready sandbox (read off the host after the timed region).
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const modules = process.env.BENCH_E2B_MODULES ?? path.join(here, '..', 'tests', 'e2b-js', 'node_modules')
const require = createRequire(path.join(modules, 'noop.js'))
const { Sandbox } = require('e2b')

const MODE = process.env.BENCH_MODE ?? 'seq'
const N = Number(process.env.BENCH_N ?? 100)
const BURSTS = Number(process.env.BENCH_BURSTS ?? 1)
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 1)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 60)
const STEP = Number(process.env.BENCH_STEP ?? 25)
const MAX = Number(process.env.BENCH_MAX ?? 400)
const PROBES = Number(process.env.BENCH_PROBES ?? 20)
const P99_MS = Number(process.env.BENCH_P99_MS ?? 50)
const MEM_PCT = Number(process.env.BENCH_MEM_PCT ?? 80)
const POOL = Number(process.env.BENCH_POOL ?? 0)
const SERVER_PID = process.env.BENCH_SERVER_PID
const DATA = process.env.BENCH_DATA_DIR
const OUT = process.env.BENCH_OUT ?? '/dev/stdout'
const REQ = { requestTimeoutMs: 120_000 }
if (!DATA) throw new Error('BENCH_DATA_DIR is required')
const SANDBOXES = path.join(DATA, 'runtime', 'runc', 'sandboxes')

const nowMs = () => performance.now()
const wallMs = () => performance.timeOrigin + performance.now()
const log = (...a) => console.error(`[pool-bench ${MODE}]`, ...a)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function birthMs(p) {
  try {
    return Number(fs.statSync(p, { bigint: true }).birthtimeNs) / 1e6
  } catch {
    return null
  }
}
/** Sandboxes on the host whose agent listens (pooled ready ones, and any the client holds). */
function readyOnHost() {
  let n = 0
  let names = []
  try {
    names = fs.readdirSync(SANDBOXES)
  } catch {
    return 0
  }
  for (const id of names) if (fs.existsSync(path.join(SANDBOXES, id, 'disk', 'run', 'agent.sock'))) n++
  return n
}
/** The server's own count of ready pooled sandboxes (GET /metrics, stockade_pool_ready), or null. */
async function poolReady() {
  try {
    const res = await fetch(`${process.env.E2B_API_URL}/metrics`, { headers: { 'X-API-Key': process.env.E2B_API_KEY } })
    const text = await res.text()
    // The pool that base creates take (this harness's `e2b` SDK creates base sandboxes); servers
    // before pools per template (issue 16) have only the total.
    const base = /^stockade_pool_ready_sandboxes\{runtime="[^"]*",pool="base"\} (\d+)/m.exec(text)
    const m = base ?? /^stockade_pool_ready (\d+)/m.exec(text)
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

/** One timed create → first echo; the caller kills the sandbox. */
async function createEcho() {
  const w0 = wallMs()
  const t0 = nowMs()
  const sbx = await Sandbox.create(REQ)
  const t1 = nowMs()
  const r = await sbx.commands.run('echo hi')
  const t2 = nowMs()
  if (r.stdout !== 'hi\n' || r.exitCode !== 0) throw new Error(`unexpected echo result: ${JSON.stringify(r)}`)
  const born = birthMs(path.join(SANDBOXES, sbx.sandboxId))
  return { sbx, w0, total: t2 - t0, create: t1 - t0, echo: t2 - t1, pooled: born == null ? null : born < w0 }
}

async function sequential() {
  for (let i = 0; i < 3; i++) await (await createEcho()).sbx.kill()
  if (POOL > 0) await waitReady(POOL)
  const xs = { total: [], create: [], echo: [], pooled: [], ready_before: [] }
  for (let i = 0; i < N; i++) {
    // Ready pooled sandboxes just before this create (the server's metric; on the host without it).
    const ready = POOL > 0 ? (await poolReady()) ?? readyOnHost() : readyOnHost()
    const s = await createEcho()
    await s.sbx.kill()
    xs.total.push(s.total)
    xs.create.push(s.create)
    xs.echo.push(s.echo)
    xs.pooled.push(s.pooled)
    xs.ready_before.push(ready)
    if ((i + 1) % 25 === 0) log(`${i + 1}/${N}`)
  }
  // How long the pool takes to fill up again after the series (idle server).
  if (POOL > 0) xs.refill_after_ms = await waitReady(POOL)
  return xs
}

// CPU time (ms) the host spent busy (all cores, /proc/stat) and one process spent (its own threads, /proc/PID/stat).
const TICK_MS = 10 // USER_HZ = 100 on Linux
function hostBusyMs() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const idle = f[3] + (f[4] ?? 0)
  return (f.reduce((a, b) => a + b, 0) - idle) * TICK_MS
}
function processCpuMs(pid) {
  if (!pid) return null
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ')
    return (Number(f[11]) + Number(f[12])) * TICK_MS
  } catch {
    return null
  }
}

async function concurrent() {
  for (let i = 0; i < 3; i++) await (await createEcho()).sbx.kill()
  const xs = { total: [], create: [], echo: [], pooled: [], burst_wall_ms: [], pool_wait_ms: [] }
  for (let b = 0; b < BURSTS; b++) {
    if (POOL > 0) xs.pool_wait_ms.push(await waitReady(POOL))
    const t0 = nowMs()
    const cpu0 = process.cpuUsage()
    const host0 = hostBusyMs()
    const server0 = processCpuMs(SERVER_PID)
    const settled = await Promise.allSettled(Array.from({ length: N }, () => createEcho()))
    xs.burst_wall_ms.push(nowMs() - t0)
    // Where the burst's CPU went: this client (the SDK), the server's JVM, and the whole host.
    const cpu = process.cpuUsage(cpu0)
    ;(xs.client_cpu_ms ??= []).push((cpu.user + cpu.system) / 1000)
    ;(xs.host_busy_ms ??= []).push(hostBusyMs() - host0)
    if (server0 != null) (xs.server_cpu_ms ??= []).push(processCpuMs(SERVER_PID) - server0)
    const ok = settled.filter((s) => s.status === 'fulfilled').map((s) => s.value)
    await Promise.allSettled(ok.map((s) => s.sbx.kill()))
    const bad = settled.filter((s) => s.status === 'rejected')
    if (bad.length) throw new Error(`${bad.length} of ${N} concurrent creates failed: ${bad[0].reason}`)
    for (const s of ok) {
      xs.total.push(s.total)
      xs.create.push(s.create)
      xs.echo.push(s.echo)
      xs.pooled.push(s.pooled)
    }
    log(`burst ${b + 1}/${BURSTS} of ${N}: ${(xs.burst_wall_ms.at(-1) / 1000).toFixed(2)} s`)
  }
  if (POOL > 0) xs.refill_after_ms = await waitReady(POOL)
  return xs
}

async function sustained() {
  if (POOL > 0) await waitReady(POOL)
  const samples = [] // [start s since begin, create ms, total ms, pooled]
  const begin = nowMs()
  const end = begin + SECONDS * 1000
  const client = async () => {
    while (nowMs() < end) {
      const start = (nowMs() - begin) / 1000
      const s = await createEcho()
      await s.sbx.kill()
      samples.push([Math.round(start * 1000) / 1000, s.create, s.total, s.pooled])
    }
  }
  await Promise.all(Array.from({ length: CLIENTS }, client))
  const wall = (nowMs() - begin) / 1000
  log(`${samples.length} create+echo+kill in ${wall.toFixed(1)} s with ${CLIENTS} client(s)`)
  return { clients: CLIENTS, seconds: SECONDS, wall_s: wall, creates_per_s: samples.length / wall, samples }
}

function meminfo() {
  const m = {}
  for (const line of fs.readFileSync('/proc/meminfo', 'utf8').split('\n')) {
    const [k, v] = line.split(':')
    if (v) m[k] = Number(v.trim().split(' ')[0]) * 1024
  }
  return m
}
/** Sum over the sandboxes' memory cgroups (cgroup v1: /sys/fs/cgroup/memory/stockade-ID). */
function cgroupMemory() {
  const root = '/sys/fs/cgroup/memory'
  let usage = 0, rss = 0, cache = 0, n = 0
  for (const d of fs.readdirSync(root)) {
    if (!d.startsWith('stockade-')) continue
    try {
      usage += Number(fs.readFileSync(path.join(root, d, 'memory.usage_in_bytes'), 'utf8'))
      const st = fs.readFileSync(path.join(root, d, 'memory.stat'), 'utf8')
      rss += Number(/^total_rss (\d+)/m.exec(st)?.[1] ?? 0)
      cache += Number(/^total_cache (\d+)/m.exec(st)?.[1] ?? 0)
      n++
    } catch {
      // a cgroup removed while we read it
    }
  }
  return { cgroups: n, usage, rss, cache }
}
function serverRss() {
  const pid = process.env.BENCH_SERVER_PID
  if (!pid) return null
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024
  } catch {
    return null
  }
}

async function density() {
  const live = []
  const m0 = meminfo()
  const base = { mem_available: m0.MemAvailable, mem_total: m0.MemTotal, server_rss: serverRss(), cgroup: cgroupMemory() }
  const steps = []
  let stop = null
  try {
    while (!stop) {
      const want = Math.min(STEP, MAX - live.length)
      const t0 = nowMs()
      for (let i = 0; i < want; i++) live.push(await Sandbox.create({ ...REQ, timeoutMs: 3_600_000 }))
      const createS = (nowMs() - t0) / 1000
      await sleep(3000) // let the new agents finish their start-up work, so the probe sees idle sandboxes
      const echos = []
      for (let i = 0; i < PROBES; i++) {
        const s = live[Math.floor(Math.random() * live.length)]
        const a = nowMs()
        const r = await s.commands.run('echo hi')
        echos.push(nowMs() - a)
        if (r.stdout !== 'hi\n') throw new Error(`unexpected echo output ${JSON.stringify(r.stdout)}`)
      }
      const sorted = [...echos].sort((a, b) => a - b)
      const p99 = sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]
      const median = sorted.length % 2 ? sorted[(sorted.length - 1) / 2] : (sorted[sorted.length / 2 - 1] + sorted[sorted.length / 2]) / 2
      const mi = meminfo()
      const cg = cgroupMemory()
      const usedPct = 100 * (1 - mi.MemAvailable / mi.MemTotal)
      const row = {
        sandboxes: live.length, step_create_s: createS, echo_ms: echos, echo_median_ms: median, echo_p99_ms: p99,
        mem_available: mi.MemAvailable, mem_used_pct: usedPct, cgroup: cg, server_rss: serverRss(),
        loadavg: fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
      }
      steps.push(row)
      log(`${live.length} idle sandboxes: echo median ${median.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms; host memory ${usedPct.toFixed(1)} % used; cgroups ${(cg.usage / live.length / 2 ** 20).toFixed(1)} MiB each`)
      if (p99 > P99_MS) stop = `echo p99 ${p99.toFixed(1)} ms > ${P99_MS} ms`
      else if (usedPct > MEM_PCT) stop = `host memory ${usedPct.toFixed(1)} % > ${MEM_PCT} %`
      else if (live.length >= MAX) stop = `reached the cap of ${MAX} sandboxes`
    }
  } finally {
    const t0 = nowMs()
    for (let i = 0; i < live.length; i += 16) await Promise.allSettled(live.slice(i, i + 16).map((s) => s.kill()))
    log(`killed ${live.length} sandboxes in ${((nowMs() - t0) / 1000).toFixed(1)} s`)
  }
  return { step: STEP, max: MAX, probes: PROBES, p99_limit_ms: P99_MS, mem_limit_pct: MEM_PCT, stopped_because: stop, base, steps }
}

const started = Date.now()
const fn = { seq: sequential, conc: concurrent, sustained, density }[MODE]
if (!fn) throw new Error(`unknown BENCH_MODE ${MODE}`)
const out = { mode: MODE, pool: POOL, n: N, bursts: BURSTS, ...(await fn()) }
out.wall_seconds = (Date.now() - started) / 1000
fs.writeFileSync(OUT, JSON.stringify(out))
log(`done in ${out.wall_seconds.toFixed(1)} s`)
