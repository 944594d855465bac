// Stockade benchmark, issue 16 point 3: one command's round trip, hop by hop, in ONE running
// sandbox, every series interleaved (round-robin, one sample of each per round) so that all of them
// see the same background load. Run by bench/cmdpath.sh (which starts the server); alone:
//   E2B_API_URL=… E2B_SANDBOX_URL=… E2B_API_KEY=… BENCH_DATA_DIR=<server data dir> node bench/cmdpath.mjs
//   BENCH_N (rounds, default 200), BENCH_E2B_MODULES (default tests/e2b-js/node_modules)
//
// The hops, outermost first (each row contains the ones below it):
//   sdk_echo          e2b's commands.run('echo hi')  = /bin/bash -l -c 'echo hi' through the SDK
//   connect_bash      the same Start as a raw Connect call (node http, one keep-alive connection)
//   connect_true      a raw Connect call of /bin/true (no shell): the server + agent + one exec
//   agent_bash        the agent alone over its unix socket: exec /bin/bash -l -c 'echo hi'
//   agent_true        the agent alone: exec /bin/true
//   health            GET /health on the keep-alive connection: the HTTP floor (no auth, no sandbox)
//   sdk_cell          @e2b/code-interpreter runCode('1+1') in the default context
//   sdk_py / host_py  commands.run('python3 -c pass') against bare /usr/bin/python3 -c pass on the host
// and, timed inside the sandbox by a Python loop around subprocess (what the sandbox itself costs):
// /bin/true, bash -c, bash -l -c, python3 -c pass; the same loop on the host for comparison.
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import path from 'node:path'
import net from 'node:net'
import http from 'node:http'
import { execFileSync, spawn } from 'node:child_process'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))
const modules = process.env.BENCH_E2B_MODULES ?? path.join(here, '..', 'tests', 'e2b-js', 'node_modules')
const require = createRequire(path.join(modules, 'noop.js'))
const { Sandbox } = require('@e2b/code-interpreter')
const N = Number(process.env.BENCH_N ?? 200)
const DATA = process.env.BENCH_DATA_DIR
const URL = process.env.E2B_API_URL
const now = () => performance.now()
const log = (...a) => console.error('[cmdpath]', ...a)

// Times each argv of a JSON object {name: argv} n times (after 3 warm-ups) with subprocess.run, the
// same method as bench/lib/host_timer.py; run inside the sandbox and on the host.
const TIMER = `
import json, subprocess, sys, time
n, runs = int(sys.argv[1]), {}
for name, argv in json.loads(sys.argv[2]).items():
    xs = runs[name] = []
    for i in range(n + 3):
        a = time.perf_counter(); subprocess.run(argv, stdout=subprocess.DEVNULL); b = time.perf_counter()
        if i >= 3: xs.append((b - a) * 1000)
print(json.dumps(runs))
`
const TIMED = JSON.stringify({ true: ['/bin/true'], bash_c: ['/bin/bash', '-c', 'echo hi'],
  bash_l_c: ['/bin/bash', '-l', '-c', 'echo hi'], python: ['/usr/bin/python3', '-c', 'pass'] })

function connectFrame(cmd, args) {
  const body = Buffer.from(JSON.stringify({ process: { cmd, args } }))
  const f = Buffer.concat([Buffer.alloc(5), body])
  f.writeUInt32BE(body.length, 1)
  return f
}

function rawCall(agent, sbx, method, route, frame) {
  return new Promise((resolve, reject) => {
    const headers = { 'E2b-Sandbox-Id': sbx.sandboxId, 'X-Access-Token': sbx.envdAccessToken ?? '' }
    if (frame) {
      Object.assign(headers, { 'Content-Type': 'application/connect+json', 'Connect-Protocol-Version': '1',
        'Content-Length': frame.length })
    }
    const req = http.request(`${URL}${route}`, { method, agent, headers }, (resp) => {
      const chunks = []
      resp.on('data', (c) => chunks.push(c))
      resp.on('end', () => {
        const text = Buffer.concat(chunks).toString('latin1')
        if (resp.statusCode >= 300 || (frame && !text.includes('"end"'))) reject(new Error(`${route}: ${resp.statusCode} ${text}`))
        else resolve(text)
      })
    })
    req.on('error', reject)
    req.end(frame ?? undefined)
  })
}

// The agent's framing (docs/agent-protocol.md): 4-byte big-endian length, type byte, payload.
function agentExec(sock, argv) {
  return new Promise((resolve, reject) => {
    const req = Buffer.from(JSON.stringify({ op: 'exec', argv, env: {}, user: 'user', stdin: false,
      timeoutMillis: 0, outputLimitBytes: 1 << 20 }))
    const head = Buffer.alloc(5)
    head.writeUInt32BE(req.length + 1, 0)
    head[4] = 0x4a
    const s = net.createConnection(sock)
    let buf = Buffer.alloc(0)
    s.on('connect', () => s.write(Buffer.concat([head, req])))
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const n = buf.readUInt32BE(0)
        const kind = buf[4]
        const payload = buf.subarray(5, 4 + n)
        buf = buf.subarray(4 + n)
        if (kind === 0x4a) {
          const msg = JSON.parse(payload.toString())
          if (msg.error) { s.destroy(); reject(new Error(JSON.stringify(msg.error))); return }
          if (msg.ev === 'end') { s.destroy(); resolve(msg); return }
        }
      }
    })
    s.on('error', reject)
  })
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)] }
const p99 = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))] }

const sbx = await Sandbox.create({ requestTimeoutMs: 30_000 })
const agentSock = path.join(DATA, 'runtime', 'runc', 'sandboxes', sbx.sandboxId, 'disk', 'run', 'agent.sock')
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
// bench/lib/host_timer.py: bare python timed by the same subprocess loop as inside, no node start-up.
const timer = spawn('/usr/bin/python3', [path.join(here, 'lib', 'host_timer.py')], { stdio: ['pipe', 'pipe', 'inherit'] })
const timerLines = readline.createInterface({ input: timer.stdout })[Symbol.asyncIterator]()
async function hostTime(argv) {
  timer.stdin.write(JSON.stringify(argv) + '\n')
  const { value } = await timerLines.next()
  if (value == null || value.startsWith('ERR')) throw new Error(`host ${argv.join(' ')}: ${value}`)
  return Number(value)
}
const series = {
  sdk_echo: async () => { const r = await sbx.commands.run('echo hi'); if (r.stdout !== 'hi\n') throw new Error('echo') },
  connect_bash: () => rawCall(agent, sbx, 'POST', '/process.Process/Start', connectFrame('/bin/bash', ['-l', '-c', 'echo hi'])),
  connect_true: () => rawCall(agent, sbx, 'POST', '/process.Process/Start', connectFrame('/bin/true', [])),
  agent_bash: () => agentExec(agentSock, ['/bin/bash', '-l', '-c', 'echo hi']),
  agent_true: () => agentExec(agentSock, ['/bin/true']),
  health: () => rawCall(agent, sbx, 'GET', '/health', null),
  sdk_cell: async () => { const e = await sbx.runCode('1+1'); if (e.text !== '2') throw new Error('cell') },
  sdk_py: async () => { const r = await sbx.commands.run('python3 -c pass'); if (r.exitCode !== 0) throw new Error('py') },
}
const samples = Object.fromEntries([...Object.keys(series), 'host_py'].map((k) => [k, []]))
try {
  for (let round = -10; round < N; round++) {
    for (const [name, fn] of Object.entries(series)) {
      const t0 = now()
      await fn()
      if (round >= 0) samples[name].push(now() - t0)
    }
    const bare = await hostTime(['/usr/bin/python3', '-c', 'pass'])
    if (round >= 0) samples.host_py.push(bare)
    if ((round + 1) % 50 === 0) log(`round ${round + 1}/${N}`)
  }
  const nIn = Math.max(20, Math.floor(N / 4))
  const inside = JSON.parse((await sbx.commands.run(`/usr/bin/python3 -c '${TIMER}' ${nIn} '${TIMED}'`)).stdout)
  const host = JSON.parse(execFileSync('/usr/bin/python3', ['-c', TIMER, String(nIn), TIMED], { encoding: 'utf8' }))
  for (const [k, xs] of Object.entries(inside)) samples[`inside_${k}`] = xs
  for (const [k, xs] of Object.entries(host)) samples[`hostloop_${k}`] = xs
} finally {
  agent.destroy()
  timer.stdin.end()
  await sbx.kill()
}
console.log('| series | n | median ms | p99 ms |')
console.log('|---|---:|---:|---:|')
for (const [k, xs] of Object.entries(samples)) {
  console.log(`| ${k} | ${xs.length} | ${median(xs).toFixed(2)} | ${p99(xs).toFixed(2)} |`)
}
if (process.env.BENCH_OUT) (await import('node:fs')).writeFileSync(process.env.BENCH_OUT, JSON.stringify(samples))
