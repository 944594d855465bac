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
console.log(lines.join('\n'))
