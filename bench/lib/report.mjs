// Stockade benchmark: turns the raw samples of one bench/run.sh invocation into
// bench/results/latest.json and a Markdown table on stdout.
//   node report.mjs RAW_DIR OUT_JSON
// RAW_DIR holds hyperfine exports (*.json with .results[0].times in seconds), e2b.json,
// agent.json, sdk.json, ci.json, diag-nodelay.json (samples in ms) and machine.json; any may be missing.
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
const ci = read('ci.json')

const m = {}
const add = (key, label, samples, how, section) => {
  const st = stats(samples)
  if (st) m[key] = { label, how, ...(section ? { section } : {}), ...st }
}

// 1. Baselines
add('bare_true', '`/bin/true` (bare)', hyper('bare-true.json'), 'hyperfine -N')
add('bare_python', '`/usr/bin/python3 -c pass` (bare)', hyper('bare-python.json'), 'hyperfine -N')
add('python_IS', '`python3 -I -S -c pass` (the agent\'s interpreter mode, bare)', hyper('python-IS.json'), 'hyperfine -N')
add('python_IS_compile_agent', '… plus compiling the agent script (bare)', hyper('python-IS-compile-agent.json'), 'hyperfine -N; compile(open(agent).read())')
add('runc_run_python', '`runc run` python3 -c pass (no userns)', hyper('runc-run-python.json'), 'hyperfine -N, minimal bundle')
add('runc_run_python_userns', '`runc run` python3 -c pass (with userns)', hyper('runc-run-python-userns.json'), 'hyperfine -N, minimal bundle + user namespace')
add('runsc_run_python', '`runsc run` (gVisor) python3 -c pass, same bundle', hyper('runsc-run-python.json'), 'hyperfine -N, runsc --network=none, default platform')
add('bwrap_python', 'bubblewrap python3 -c pass (--unshare-all, /usr ro)', hyper('bwrap-python.json'), 'hyperfine -N')
add('runc_state', '`runc state` of a running container', hyper('runc-state.json'), 'hyperfine -N')
add('runc_exec_true', '`runc exec` /bin/true into a running container', hyper('runc-exec-true.json'), 'hyperfine -N')
// 1c. The seccomp policy's cost (bench/lib/seccomp_cost.py): one bundle, three filters, interleaved rounds.
const seccompWhat = {
  start: '`runc run` python3 -c pass',
  imports: '`runc run` python3 import numpy, pandas, matplotlib.pyplot',
  getppid: '1,000,000 getppid() inside',
  stat: '1,000,000 stat("/") inside',
}
const seccompVariant = { none: 'no filter', before: 'deny-list (before)', after: 'allow-list (policy/seccomp.json)',
  compat: 'what-if: allow-list + i386/x32/arm ABIs' }
for (const [w, what] of Object.entries(seccompWhat)) {
  for (const [v, label] of Object.entries(seccompVariant)) {
    add(`seccomp_${w}_${v}`, `seccomp: ${what} — ${label}`, hyper(`seccomp-${w}-${v}.json`), 'bench/lib/seccomp_cost.py, interleaved rounds')
  }
}

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

// 4. The code interpreter (issue 3): Stockade and the Jupyter peer, paired row by row in the
// Markdown. Keys ci_*_jupyter are the peer's (a Jupyter kernel on the host, unsandboxed).
const ciRows = [] // [label, stockade key, jupyter key]
if (ci) {
  const S = 'code_interpreter'
  const pair = (key, label, stockade, jupyter, how, jhow) => {
    add(`ci_${key}`, label, stockade, how, S)
    add(`ci_${key}_jupyter`, `${label} — Jupyter peer`, jupyter, jhow, S)
    ciRows.push([label, `ci_${key}`, `ci_${key}_jupyter`])
  }
  const c = ci.cell
  pair('cell_sdk', '`1+1` in a warm context, through the client (`runCode` / `BlockingKernelClient`)', c.sdk, c.jupyter,
    'Sandbox.runCode("1+1") of @e2b/code-interpreter, default context', 'jupyter_client: execute("1+1"), iopub until idle, shell reply')
  pair('cell_raw', '`1+1` as raw `POST /execute` (keep-alive HTTP, no SDK)', c.raw, null, 'node http, one keep-alive connection, NDJSON read to the end')
  pair('cell_raw_headers', '  … of which until the response headers (the agent accepted the cell)', c.raw_headers, null, 'the same requests')
  pair('cell_agent', '`1+1` through the agent alone (its unix socket; no server, no HTTP)', c.agent, null, 'bench/lib/cell_probe.py, a connection per cell')
  pair('cell_agent_accepted', '  … of which until the agent\'s `accepted`', c.agent_accepted, null, 'the same requests')
  pair('health', '`GET /health` on the raw connection (the floor of any request)', c.health, null, 'node http, the same keep-alive connection')
  const ip = ci.import_pandas
  pair('import_ctx', 'new context + first cell `import pandas` / kernel start + first `import pandas`', ip.ctx.total, ip.jupyter.total,
    'createCodeContext() then runCode("import pandas", {context})', 'start_kernel + wait_for_ready, then execute("import pandas")')
  pair('import_ctx_create', '  … of which `createCodeContext()` / kernel start (`start_kernel` + `wait_for_ready`)', ip.ctx.create, ip.jupyter.start, 'createCodeContext()', 'KernelManager.start_kernel, start_channels, wait_for_ready')
  pair('import_ctx_first', '  … of which the first cell `import pandas`', ip.ctx.first, ip.jupyter.first, 'runCode("import pandas", {context})', 'execute("import pandas") until idle')
  pair('import_default', '`Sandbox.create()` + first cell `import pandas` in the default context', ip.dflt.total, null, 'Sandbox.create() then runCode("import pandas")')
  pair('import_default_create', '  … of which `Sandbox.create()`', ip.dflt.create, null, 'Sandbox.create() of @e2b/code-interpreter')
  pair('import_default_first', '  … of which the first cell (it also starts the default context\'s kernel)', ip.dflt.first, null, 'runCode("import pandas")')
  const nb = ci.notebook
  const sum = (rows, from, to) => rows.map((r) => r.slice(from, to).reduce((a, b) => a + b, 0))
  pair('notebook', '10-cell pandas + matplotlib notebook, end to end (fresh sandbox / fresh kernel)', nb.stockade.total, nb.jupyter.total,
    'Sandbox.create() + 10 runCode calls', 'kernel start + 10 executes')
  pair('notebook_start', '  … of which `Sandbox.create()` / kernel start', nb.stockade.create, nb.jupyter.start, 'Sandbox.create()', 'start_kernel + wait_for_ready')
  pair('notebook_cells', '  … of which the 10 cells', nb.stockade.cells, nb.jupyter.cells, '10 runCode calls', '10 executes')
  pair('notebook_cell1', '    cell 1: import numpy, pandas, matplotlib.pyplot (Stockade: also starts the kernel)', sum(nb.stockade.per_cell, 0, 1), sum(nb.jupyter.per_cell, 0, 1), 'runCode', 'execute')
  pair('notebook_plots', '    cells 7–8: two plots, `plt.show()` → PNG', sum(nb.stockade.per_cell, 6, 8), sum(nb.jupyter.per_cell, 6, 8), 'runCode', 'execute')
  pair('notebook_other', '    the other 7 cells (DataFrame, describe, groupby, prints, CSV)', sum(nb.stockade.per_cell, 1, 6).map((v, i) => v + sum(nb.stockade.per_cell, 8, 10)[i]),
    sum(nb.jupyter.per_cell, 1, 6).map((v, i) => v + sum(nb.jupyter.per_cell, 8, 10)[i]), 'runCode', 'execute')
}

// Targets (issues 2 and 3)
const targets = []
const target = (name, value, limit, unit, whatIf, extra) => {
  targets.push({ target: name, measured: value ?? null, limit, unit, met: value == null ? null : value <= limit,
    what_if_tcp_nodelay: whatIf ?? null, issue: 2, ...extra })
}
const ratioOf = (a, b) => (a && b ? Math.round((a.median_ms / b.median_ms) * 100) / 100 : null)
target('create → first echo, median ≤ 150 ms (no pool)', m.create_to_first_echo?.median_ms, 150, 'ms',
  m.diag_nodelay_create_to_first_echo?.median_ms, { reference: 'E2B 491 ms, Daytona 186 ms (third-party medians)' })
target('echo in a running sandbox, median ≤ 10 ms', m.echo?.median_ms, 10, 'ms', m.diag_nodelay_echo?.median_ms)
target('python3 -c pass within 1.3× of bare python (medians, interleaved)', ratioOf(m.python_in_sandbox, m.bare_python_interleaved ?? m.bare_python), 1.3, '×',
  ratioOf(m.diag_nodelay_python, m.diag_nodelay_bare_python ?? m.bare_python))
if (ci) {
  target('`1+1` cell median ≤ 3 ms through the HTTP API (raw POST /execute, warm context)', m.ci_cell_raw?.median_ms, 3, 'ms', null,
    { issue: 3, through_sdk_ms: m.ci_cell_sdk?.median_ms ?? null, jupyter_peer_ms: m.ci_cell_sdk_jupyter?.median_ms ?? null })
}

// 6. Issue 5: warm pools, sustained creates, density. Keys p5_*; sections shown in their own tables.
const readText = (name) => {
  const p = path.join(rawDir, name)
  return fs.existsSync(p) ? fs.readFileSync(p, 'utf8').trim() : null
}
const errors = {}
for (const f of fs.readdirSync(rawDir)) if (f.endsWith('.error')) errors[f.replace(/\.error$/, '')] = readText(f)
const commands = {}
for (const f of fs.readdirSync(rawDir)) if (f.endsWith('.command')) commands[f.replace(/^server-|\.command$/g, '')] = readText(f)
const P5 = 'issue5'
const poolRows = [] // [label, js key, java key, extra]
const frac = (xs) => (xs && xs.length ? `${xs.filter((v) => v === true).length}/${xs.length}` : '—')
const createCases = [
  ['seq', 'nopool', 'sequential, no pool'],
  ['seq', 'pool', 'sequential, pool (preload numpy, pandas, pyplot)'],
  ['seq', 'poolnp', 'sequential, pool without preload'],
  ['conc', 'nopool', 'concurrent, no pool'],
  ['conc', 'pool', 'concurrent, pool without preload'],
]
for (const [mode, pool, label] of createCases) {
  const js = read(`${pool}-${mode}-js.json`)
  const java = read(`${pool}-${mode}-java.json`)
  if (!js && !java) continue
  const k = `p5_${pool}_${mode}`
  add(`${k}_js`, `create → first \`echo\`, ${label} (E2B JS SDK)`, js?.total, 'Sandbox.create() + commands.run("echo hi")', P5)
  add(`${k}_js_create`, `  … of which create(), ${label} (E2B JS SDK)`, js?.create, 'Sandbox.create()', P5)
  add(`${k}_js_echo`, `  … of which the first echo, ${label} (E2B JS SDK)`, js?.echo, 'commands.run', P5)
  add(`${k}_java`, `create → first \`echo\`, ${label} (Java SDK)`, java?.total, 'client.create() + commands().run("echo hi")', P5)
  add(`${k}_java_create`, `  … of which create(), ${label} (Java SDK)`, java?.create, 'client.create()', P5)
  add(`${k}_java_echo`, `  … of which the first echo, ${label} (Java SDK)`, java?.echo, 'commands().run', P5)
  const notes = []
  if (js?.pooled) notes.push(`served from the pool (JS): ${frac(js.pooled)}`)
  if (js?.ready_before?.length) {
    const rb = [...js.ready_before].sort((a, b) => a - b)
    notes.push(`ready in the pool before each create (stockade_pool_ready; agent up, preload possibly still running): min ${rb[0]}, median ${rb[Math.floor(rb.length / 2)]}, max ${rb.at(-1)}`)
  }
  if (js?.pool_wait_ms?.length) notes.push(`pool refill before each burst: ${js.pool_wait_ms.map((v) => (v / 1000).toFixed(1) + ' s').join(', ')}`)
  if (js?.burst_wall_ms?.length) notes.push(`burst wall time (JS): ${js.burst_wall_ms.map((v) => (v / 1000).toFixed(2) + ' s').join(', ')}`)
  if (java?.burst_wall_ms?.length) notes.push(`burst wall time (Java): ${java.burst_wall_ms.map((v) => (v / 1000).toFixed(2) + ' s').join(', ')}`)
  if (js?.refill_after_ms != null) notes.push(`pool full again ${(js.refill_after_ms / 1000).toFixed(1)} s after the series`)
  poolRows.push({ label, js: `${k}_js`, java: `${k}_java`, jsCreate: `${k}_js_create`, jsEcho: `${k}_js_echo`, notes })
}
const ciRows5 = []
for (const [file, key, label] of [['nopool-ci.json', 'ctx', 'new context in a running sandbox (no pool)'],
  ['nopool-ci.json', 'dflt', 'default context of a new sandbox, no pool'],
  ['pool-ci.json', 'dflt', 'default context of a pooled sandbox, preloaded']]) {
  const d = read(file)?.[key]
  if (!d) continue
  const k = `p5_ci_${file.startsWith('pool') ? 'pool' : 'nopool'}_${key}`
  add(k, `first cell import pandas + describe(): ${label}`, d.total, key === 'ctx' ? 'createCodeContext() + runCode' : 'Sandbox.create() + runCode', P5)
  add(`${k}_create`, `  … of which ${key === 'ctx' ? 'createCodeContext()' : 'Sandbox.create()'}`, d.create, '', P5)
  add(`${k}_first`, '  … of which the cell', d.first, 'runCode', P5)
  ciRows5.push({ label, key: k, preloaded: frac(d.preloaded), pooled: d.pooled ? frac(d.pooled) : '—' })
}
const sustained = []
for (const c of [1, 4]) {
  const d = read(`sustained-${c}.json`)
  if (!d) continue
  const k = `p5_sustained_${c}`
  add(`${k}_create`, `sustained, ${c} client(s): create()`, d.samples.map((x) => x[1]), 'Sandbox.create() in a create+echo+kill loop', P5)
  add(`${k}_total`, `sustained, ${c} client(s): create → first echo`, d.samples.map((x) => x[2]), 'Sandbox.create() + echo', P5)
  const buckets = []
  const width = d.seconds >= 30 ? 10 : Math.max(1, Math.ceil(d.seconds / 4))
  for (let t = 0; t < d.seconds; t += width) {
    // A loop that began in the last instant of the run counts in the last window.
    const last = t + width >= d.seconds
    const xs = d.samples.filter((x) => x[0] >= t && (x[0] < t + width || last))
    if (xs.length) buckets.push({ from_s: t, to_s: t + width, creates: xs.length, create: stats(xs.map((x) => x[1])), pooled: frac(xs.map((x) => x[3])) })
  }
  sustained.push({ clients: c, key: k, creates_per_s: Math.round(d.creates_per_s * 100) / 100, n: d.samples.length,
    wall_s: Math.round(d.wall_s * 10) / 10, pooled: frac(d.samples.map((x) => x[3])), buckets })
}
let density = null
const dd = read('density.json')
if (dd) {
  const base = dd.base
  const MiB = 2 ** 20
  const rows = dd.steps.map((s) => ({
    sandboxes: s.sandboxes,
    echo_median_ms: Math.round(s.echo_median_ms * 100) / 100,
    echo_p99_ms: Math.round(s.echo_p99_ms * 100) / 100,
    mem_used_pct: Math.round(s.mem_used_pct * 10) / 10,
    host_mib_per_sandbox: Math.round(((base.mem_available - s.mem_available) / s.sandboxes / MiB) * 10) / 10,
    cgroup_usage_mib_per_sandbox: Math.round((s.cgroup.usage / s.sandboxes / MiB) * 10) / 10,
    cgroup_rss_mib_per_sandbox: Math.round((s.cgroup.rss / s.sandboxes / MiB) * 10) / 10,
    cgroup_cache_mib_per_sandbox: Math.round((s.cgroup.cache / s.sandboxes / MiB) * 10) / 10,
    server_rss_mib: s.server_rss == null ? null : Math.round(s.server_rss / MiB),
    step_create_s: Math.round(s.step_create_s * 10) / 10,
    loadavg: s.loadavg,
  }))
  density = { stopped_because: dd.stopped_because, step: dd.step, max: dd.max, probes: dd.probes,
    p99_limit_ms: dd.p99_limit_ms, mem_limit_pct: dd.mem_limit_pct,
    mem_total_gib: Math.round((base.mem_total / 2 ** 30) * 10) / 10, rows }
}

const result = {
  schema: 'stockade-bench/1',
  machine,
  e2b_sdk_version: e2b?.e2b_sdk_version ?? null,
  code_interpreter_version: ci?.code_interpreter_version ?? null,
  jupyter_peer: ci ? { ...ci.jupyter, where: 'on the host, unsandboxed (root, no container)', notebook_cells: ci.notebook_cells } : null,
  notes: {
    units: 'milliseconds; median = middle sample (mean of the two middle ones for even n); p99 = nearest rank, which is the maximum when n < 100',
    create_phases: 'medians of per-sandbox phases taken from host file timestamps; they need not add up to the median total',
    diagnostics: 'rows starting "what-if" come from a second server started with -Dsun.net.httpserver.nodelay=true; they are not the product as shipped',
    code_interpreter: 'metrics ci_*: Stockade through @e2b/code-interpreter, raw HTTP and the agent; ci_*_jupyter: the peer, a Jupyter kernel (python3-ipykernel) driven by jupyter_client on the host, unsandboxed; series of one row are interleaved',
  },
  metrics: m,
  targets,
  issue5: { server_commands: commands, errors, pools: poolRows, code_interpreter: ciRows5, sustained, density,
    runsc: read('runsc-info.json'), bwrap: read('bwrap-info.json') },
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
for (const v of Object.values(m)) {
  if (!v.section) lines.push(`| ${v.label} | ${v.n} | ${f(v.median_ms)} | ${f(v.p99_ms)} |`)
}
lines.push('')
const withDiag = targets.some((t) => t.what_if_tcp_nodelay != null)
lines.push('| target (issue 2) | measured | met? |' + (withDiag ? ' what-if TCP_NODELAY (diagnostic) |' : ''))
lines.push('|---|---:|:---:|' + (withDiag ? '---:|' : ''))
const show = (v, unit) => (v == null ? '—' : unit === '×' ? `${v.toFixed(2)}×` : `${f(v)} ms`)
const met = (t) => (t.met == null ? '—' : t.met ? 'yes' : '**no**')
for (const t of targets.filter((x) => x.issue === 2)) {
  lines.push(`| ${t.target} | ${show(t.measured, t.unit)} | ${met(t)} |` + (withDiag ? ` ${show(t.what_if_tcp_nodelay, t.unit)} |` : ''))
}
if (ci) {
  const j = ci.jupyter
  lines.push('')
  lines.push(`Code interpreter (issue 3): \`@e2b/code-interpreter\` ${ci.code_interpreter_version}; peer: a Jupyter kernel, ipykernel ${j.ipykernel}`
    + ` (Debian), jupyter_client ${j.jupyter_client}, IPython ${j.ipython}, Python ${j.python}, **on the host, unsandboxed**`)
  lines.push('')
  lines.push('| what | n | Stockade median (ms) | p99 (ms) | Jupyter peer median (ms) | p99 (ms) |')
  lines.push('|---|---:|---:|---:|---:|---:|')
  for (const [label, sk, jk] of ciRows) {
    const a = m[sk]
    const b = m[jk]
    if (!a && !b) continue
    lines.push(`| ${label} | ${(a ?? b).n} | ${f(a?.median_ms)} | ${f(a?.p99_ms)} | ${f(b?.median_ms)} | ${f(b?.p99_ms)} |`)
  }
  lines.push('')
  lines.push('| target (issue 3) | measured | met? | through the SDK | Jupyter peer |')
  lines.push('|---|---:|:---:|---:|---:|')
  for (const t of targets.filter((x) => x.issue === 3)) {
    lines.push(`| ${t.target} | ${show(t.measured, t.unit)} | ${met(t)} | ${show(t.through_sdk_ms, 'ms')} | ${show(t.jupyter_peer_ms, 'ms')} |`)
  }
}
if (poolRows.length || ciRows5.length || sustained.length || density) {
  const g = (k) => m[k]
  lines.push('')
  lines.push('Warm pools (issue 5). Servers: ' + Object.entries(commands).map(([k, v]) => `${k}: \`${v.replace(/--data-dir \S+/, '--data-dir DIR').replace(/--port \d+/, '--port N')}\``).join('; '))
  lines.push('')
  lines.push('| create → first `echo` | n | E2B JS SDK median (ms) | p99 (ms) | … create() median | … first echo median | Java SDK median (ms) | p99 (ms) |')
  lines.push('|---|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of poolRows) {
    lines.push(`| ${r.label} | ${(g(r.js) ?? g(r.java))?.n ?? '—'} | ${f(g(r.js)?.median_ms)} | ${f(g(r.js)?.p99_ms)} | ${f(g(r.jsCreate)?.median_ms)} | ${f(g(r.jsEcho)?.median_ms)} | ${f(g(r.java)?.median_ms)} | ${f(g(r.java)?.p99_ms)} |`)
  }
  lines.push('')
  for (const r of poolRows) if (r.notes.length) lines.push(`- ${r.label}: ${r.notes.join('; ')}`)
  if (ciRows5.length) {
    lines.push('')
    lines.push('| first cell `import pandas` + `df.describe()` (@e2b/code-interpreter) | n | median (ms) | p99 (ms) | … create median | … cell median | pandas already loaded | served from the pool |')
    lines.push('|---|---:|---:|---:|---:|---:|:---:|:---:|')
    for (const r of ciRows5) {
      lines.push(`| ${r.label} | ${g(r.key)?.n} | ${f(g(r.key)?.median_ms)} | ${f(g(r.key)?.p99_ms)} | ${f(g(r.key + '_create')?.median_ms)} | ${f(g(r.key + '_first')?.median_ms)} | ${r.preloaded} | ${r.pooled} |`)
    }
  }
  if (sustained.length) {
    lines.push('')
    lines.push('| sustained create + echo + kill, pool on | creates | seconds | creates/s | create() median (ms) | p99 (ms) | create → echo median (ms) | p99 (ms) | served from the pool |')
    lines.push('|---|---:|---:|---:|---:|---:|---:|---:|:---:|')
    for (const r of sustained) {
      lines.push(`| ${r.clients} client(s) | ${r.n} | ${r.wall_s} | ${r.creates_per_s} | ${f(g(r.key + '_create')?.median_ms)} | ${f(g(r.key + '_create')?.p99_ms)} | ${f(g(r.key + '_total')?.median_ms)} | ${f(g(r.key + '_total')?.p99_ms)} | ${r.pooled} |`)
    }
    lines.push('')
    lines.push('| sustained: create() over time | window (s) | creates | median (ms) | p99 (ms) | from the pool |')
    lines.push('|---|---|---:|---:|---:|:---:|')
    for (const r of sustained) for (const b of r.buckets) {
      lines.push(`| ${r.clients} client(s) | ${b.from_s}–${b.to_s} | ${b.creates} | ${f(b.create.median_ms)} | ${f(b.create.p99_ms)} | ${b.pooled} |`)
    }
  }
  if (density) {
    lines.push('')
    lines.push(`Density (no pool; ${density.step} idle sandboxes per step; ${density.probes} echos into random live sandboxes per step; host ${density.mem_total_gib} GiB): stopped because ${density.stopped_because}`)
    lines.push('')
    lines.push('| idle sandboxes | echo median (ms) | echo p99 (ms) | host memory used | MemAvailable drop / sandbox (MiB) | cgroup usage / sandbox (MiB) | … rss | … cache | server RSS (MiB) | load average |')
    lines.push('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
    for (const r of density.rows) {
      lines.push(`| ${r.sandboxes} | ${f(r.echo_median_ms)} | ${f(r.echo_p99_ms)} | ${r.mem_used_pct} % | ${r.host_mib_per_sandbox} | ${r.cgroup_usage_mib_per_sandbox} | ${r.cgroup_rss_mib_per_sandbox} | ${r.cgroup_cache_mib_per_sandbox} | ${r.server_rss_mib ?? '—'} | ${r.loadavg} |`)
    }
  }
}
if (Object.keys(errors).length) {
  lines.push('')
  for (const [k, v] of Object.entries(errors)) lines.push(`- **${k} did not run**: ${v.replace(/\n/g, ' ')}`)
}
console.log(lines.join('\n'))
