// Stockade benchmark: turns the raw samples of one bench/run.sh invocation into
// bench/results/latest.json and a Markdown table on stdout.
//   node report.mjs RAW_DIR OUT_JSON
// RAW_DIR holds hyperfine exports (*.json with .results[0].times in seconds), e2b.json,
// agent.json, sdk.json, diag-nodelay.json (samples in ms) and machine.json; any may be missing.
import fs from 'node:fs'
import path from 'node:path'

const [rawDir, outJson] = process.argv.slice(2)
const read = (name) => {
  const p = path.join(rawDir, name)
  return fs.existsSync(p) ? JSON.parse(fs.readFileSync(p, 'utf8')) : null
}
const hyper = (name) => {
  const h = read(name)
  return h ? h.results[0].times.map((s) => s * 1000) : null
}

/** Median (mean of the middle two for even n) and p99 by nearest rank (with n < 100 it is the maximum). */
function stats(xs) {
  if (!xs || xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  const n = s.length
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  const p99 = s[Math.min(n - 1, Math.ceil(0.99 * n) - 1)]
  const mean = s.reduce((a, b) => a + b, 0) / n
  const r = (v) => Math.round(v * 100) / 100
  return { n, median_ms: r(median), p99_ms: r(p99), mean_ms: r(mean), min_ms: r(s[0]), max_ms: r(s[n - 1]) }
}

const machine = read('machine.json') ?? {}
const e2b = read('e2b.json')
const agent = read('agent.json')
const sdk = read('sdk.json')
const diag = read('diag-nodelay.json')

const m = {}
const add = (key, label, samples, how) => {
  const st = stats(samples)
  if (st) m[key] = { label, how, ...st }
}

// 1. Baselines
add('bare_true', '`/bin/true` (bare)', hyper('bare-true.json'), 'hyperfine -N')
add('bare_python', '`/usr/bin/python3 -c pass` (bare)', hyper('bare-python.json'), 'hyperfine -N')
add('python_IS', '`python3 -I -S -c pass` (the agent\'s interpreter mode, bare)', hyper('python-IS.json'), 'hyperfine -N')
add('python_IS_compile_agent', '… plus compiling the agent script (bare)', hyper('python-IS-compile-agent.json'), 'hyperfine -N; compile(open(agent).read())')
add('runc_run_python', '`runc run` python3 -c pass (no userns)', hyper('runc-run-python.json'), 'hyperfine -N, minimal bundle')
add('runc_run_python_userns', '`runc run` python3 -c pass (with userns)', hyper('runc-run-python-userns.json'), 'hyperfine -N, minimal bundle + user namespace')
add('runc_state', '`runc state` of a running container', hyper('runc-state.json'), 'hyperfine -N')
add('runc_exec_true', '`runc exec` /bin/true into a running container', hyper('runc-exec-true.json'), 'hyperfine -N')

// 2. E2B JS SDK
if (e2b) {
  const c = e2b.create_to_first_echo
  add('create_to_first_echo', 'create → first `echo` (E2B JS SDK, no pool)', c.total, 'Sandbox.create() + commands.run("echo hi"), sequential')
  add('create_only', '… of which `Sandbox.create()`', c.create, 'E2B JS SDK')
  add('first_echo', '… of which the first `echo`', c.echo, 'E2B JS SDK')
  const phaseLabels = {
    request_to_runtime: 'SDK + HTTP + server, up to the runtime starting',
    host_prep: 'host prep: tmpfs + overlay mounts, chowns, config.json',
    runc_create: '`runc run`: container set up (runc "created")',
    agent_start: 'runc start + Python agent start, until its socket exists',
    ready_to_response: 'agent ready → create response in the SDK (hello, HTTP)',
  }
  for (const [k, label] of Object.entries(phaseLabels)) {
    add(`create_phase_${k}`, `  phase: ${label}`, c.phases?.[k], 'host file timestamps, see README')
  }
  const r = e2b.running
  add('echo', '`echo hi` in a running sandbox (E2B JS SDK)', r.echo, 'commands.run("echo hi")')
  add('raw_echo', '  the same `echo` as a raw Connect call (no SDK, keep-alive HTTP)', r.rawEcho, 'POST /process.Process/Start, /bin/bash -l -c "echo hi"')
  add('python_in_sandbox', '`python3 -c pass` in a running sandbox (E2B JS SDK)', r.py, 'commands.run("python3 -c pass")')
  add('bare_python_interleaved', '  bare `/usr/bin/python3 -c pass`, interleaved with the row above', r.bare, 'python subprocess.run on the host (bench/lib/host_timer.py), alternating with the sandbox runs')
  add('python_inside_sandbox', '  `python3 -c pass` timed inside the sandbox (subprocess loop)', r.inside?.python, 'python subprocess.run inside the sandbox; no SDK, HTTP or agent')
  add('bash_login_inside_sandbox', '  `bash -l -c "echo hi"` timed inside the sandbox (what the SDK runs)', r.inside?.bash_login_echo, 'python subprocess.run inside the sandbox')
  add('file_roundtrip_1mib', '1 MiB file write + read (E2B JS SDK)', r.file, 'files.write + files.read bytes, verified')
  add('file_write_1mib', '… of which write', r.fileWrite, 'E2B JS SDK')
  add('file_read_1mib', '… of which read', r.fileRead, 'E2B JS SDK')
}
if (agent) add('agent_exec_echo', 'agent alone: exec `/bin/echo hi` over its unix socket', agent.agent_exec_echo, 'bench/lib/agent_probe.py, no server, no HTTP')
if (sdk) {
  add('java_sdk_create_to_first_echo', 'create → first `echo` (Stockade Java SDK)', sdk.create_to_first_echo, 'client.create() + commands().run("echo hi")')
  add('java_sdk_echo', '`echo hi` in a running sandbox (Stockade Java SDK)', sdk.echo, 'commands().run("echo hi")')
}
if (diag) {
  const c = diag.create_to_first_echo
  add('diag_nodelay_create_to_first_echo', 'what-if TCP_NODELAY: create → first `echo`', c.total, 'same server, -Dsun.net.httpserver.nodelay=true')
  add('diag_nodelay_echo', 'what-if TCP_NODELAY: `echo hi` in a running sandbox', diag.running.echo, 'same server, -Dsun.net.httpserver.nodelay=true')
  add('diag_nodelay_raw_echo', 'what-if TCP_NODELAY: raw Connect `echo` (no SDK)', diag.running.rawEcho, 'same server, -Dsun.net.httpserver.nodelay=true')
  add('diag_nodelay_python', 'what-if TCP_NODELAY: `python3 -c pass` in a sandbox', diag.running.py, 'same server, -Dsun.net.httpserver.nodelay=true')
  add('diag_nodelay_bare_python', 'what-if TCP_NODELAY: bare python, interleaved', diag.running.bare, 'host_timer.py, alternating')
  add('diag_nodelay_file', 'what-if TCP_NODELAY: 1 MiB write + read', diag.running.file, 'same server, -Dsun.net.httpserver.nodelay=true')
}

// Targets (issue 2)
const targets = []
const target = (name, value, limit, unit, whatIf, extra) => {
  targets.push({ target: name, measured: value ?? null, limit, unit, met: value == null ? null : value <= limit,
    what_if_tcp_nodelay: whatIf ?? null, ...extra })
}
const ratioOf = (a, b) => (a && b ? Math.round((a.median_ms / b.median_ms) * 100) / 100 : null)
target('create → first echo, median ≤ 150 ms (no pool)', m.create_to_first_echo?.median_ms, 150, 'ms',
  m.diag_nodelay_create_to_first_echo?.median_ms, { reference: 'E2B 491 ms, Daytona 186 ms (third-party medians)' })
target('echo in a running sandbox, median ≤ 10 ms', m.echo?.median_ms, 10, 'ms', m.diag_nodelay_echo?.median_ms)
target('python3 -c pass within 1.3× of bare python (medians, interleaved)', ratioOf(m.python_in_sandbox, m.bare_python_interleaved ?? m.bare_python), 1.3, '×',
  ratioOf(m.diag_nodelay_python, m.diag_nodelay_bare_python ?? m.bare_python))

const result = {
  schema: 'stockade-bench/1',
  machine,
  e2b_sdk_version: e2b?.e2b_sdk_version ?? null,
  notes: {
    units: 'milliseconds; median = middle sample (mean of the two middle ones for even n); p99 = nearest rank, which is the maximum when n < 100',
    create_phases: 'medians of per-sandbox phases taken from host file timestamps; they need not add up to the median total',
    diagnostics: 'rows starting "what-if" come from a second server started with -Dsun.net.httpserver.nodelay=true; they are not the product as shipped',
  },
  metrics: m,
  targets,
}
fs.mkdirSync(path.dirname(outJson), { recursive: true })
fs.writeFileSync(outJson, JSON.stringify(result, null, 2) + '\n')

// Markdown
const f = (v) => (v == null ? '—' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2))
const lines = []
lines.push(`Stockade benchmark — ${machine.date ?? ''} — commit ${machine.git_commit ?? '?'}${machine.git_dirty ? ' (+ uncommitted changes)' : ''}`)
lines.push('')
lines.push(`Machine: ${machine.nproc ?? '?'} cores, kernel ${machine.kernel ?? '?'}, ${machine.runc ?? 'runc ?'}, node ${machine.node ?? '?'}, ${machine.java ?? 'java ?'}, ${machine.python ?? ''}, e2b ${e2b?.e2b_sdk_version ?? '?'}, hyperfine ${machine.hyperfine ?? '?'}; server: ${machine.server ?? '?'}; load average at start ${machine.loadavg ?? '?'}`)
lines.push('')
lines.push('| what | n | median (ms) | p99 (ms) |')
lines.push('|---|---:|---:|---:|')
for (const v of Object.values(m)) lines.push(`| ${v.label} | ${v.n} | ${f(v.median_ms)} | ${f(v.p99_ms)} |`)
lines.push('')
const withDiag = targets.some((t) => t.what_if_tcp_nodelay != null)
lines.push('| target (issue 2) | measured | met? |' + (withDiag ? ' what-if TCP_NODELAY (diagnostic) |' : ''))
lines.push('|---|---:|:---:|' + (withDiag ? '---:|' : ''))
const show = (v, unit) => (v == null ? '—' : unit === '×' ? `${v.toFixed(2)}×` : `${f(v)} ms`)
for (const t of targets) {
  lines.push(`| ${t.target} | ${show(t.measured, t.unit)} | ${t.met == null ? '—' : t.met ? 'yes' : '**no**'} |`
    + (withDiag ? ` ${show(t.what_if_tcp_nodelay, t.unit)} |` : ''))
}
console.log(lines.join('\n'))
