// runCode and code contexts with the official, unmodified @e2b/code-interpreter package: NDJSON from
// POST /execute on port 49999, and /contexts.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox } from '@e2b/code-interpreter'
import { NotFoundError, SandboxError, TimeoutError } from 'e2b'
import { preflight, rejectsWith, REQUEST_TIMEOUT_MS, TEST_TIMEOUT_MS } from '../lib/helpers.js'
import { withCodeSandbox } from '../lib/code-sandbox.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }

/** The width and height in a PNG's IHDR chunk. */
function pngSize(base64) {
  const bytes = Buffer.from(base64, 'base64')
  assert.equal(bytes.subarray(1, 4).toString('latin1'), 'PNG', 'a PNG signature')
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) }
}

test('runCode: state persists, the last expression is the main result, executionCount grows', opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    const first = await sandbox.runCode('import math\nx = 40\nprint("hi")\nx + 2')
    assert.equal(first.text, '42')
    assert.deepEqual(first.logs.stdout, ['hi\n'], "print's text and its newline travel as one line")
    assert.deepEqual(first.logs.stderr, [])
    assert.equal(first.error, undefined)
    assert.equal(first.results.length, 1)
    assert.equal(first.results[0].isMainResult, true)
    assert.ok(Number.isInteger(first.executionCount) && first.executionCount >= 1, `executionCount ${first.executionCount}`)

    const second = await sandbox.runCode('round(math.sqrt(x * 10), 1)')
    assert.equal(second.text, '20.0')
    assert.equal(second.executionCount, first.executionCount + 1)

    const unicode = await sandbox.runCode('print("é ✓ 日本")\n"ünï"')
    assert.equal(unicode.logs.stdout.join(''), 'é ✓ 日本\n')
    assert.equal(unicode.text, 'ünï')
  })
})

test('onStdout, onStderr and onResult fire while the cell runs', opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    const events = []
    const execution = await sandbox.runCode(
      [
        'import sys, time',
        'from IPython.display import display',
        'print("one", flush=True)',
        'print("warn", file=sys.stderr, flush=True)',
        'display({"a": 1})',
        'time.sleep(1)',
        'print("two")',
        '"done"',
      ].join('\n'),
      {
        onStdout: (m) => events.push(['out', m.line, Date.now()]),
        onStderr: (m) => events.push(['err', m.line, Date.now()]),
        onResult: (r) => events.push(['result', r.text, Date.now()]),
      },
    )
    const finished = Date.now()
    assert.equal(execution.text, 'done')
    assert.equal(execution.logs.stdout.join(''), 'one\ntwo\n')
    assert.equal(execution.logs.stderr.join(''), 'warn\n')
    const first = (kind) => events.find(([k]) => k === kind)
    for (const kind of ['out', 'err', 'result']) {
      assert.ok(first(kind), `no ${kind} callback: ${JSON.stringify(events)}`)
      assert.ok(finished - first(kind)[2] >= 700, `the first ${kind} callback came only ${finished - first(kind)[2]} ms before the end`)
    }
    assert.equal(events.filter(([k]) => k === 'result').length, 2, 'display() and the main result')
  })
})

test('a DataFrame comes back as html and text, a matplotlib figure as a png', opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    const df = await sandbox.runCode(
      'import pandas as pd\npd.DataFrame({"city": ["Oslo", "Lima"], "temp": [3.5, 19.25]})',
    )
    const main = df.results.find((r) => r.isMainResult)
    assert.ok(main.html.includes('<table') && main.html.includes('Oslo') && main.html.includes('19.25'), main.html)
    assert.ok(main.text.includes('Lima'), main.text)
    assert.ok(main.formats().includes('html'))

    const chart = await sandbox.runCode(
      'import matplotlib.pyplot as plt\nplt.figure(figsize=(5, 2), dpi=100)\nplt.plot([1, 2, 3], [2, 0, 1])\nplt.title("t")\nplt.show()',
    )
    const figures = chart.results.filter((r) => r.png)
    assert.equal(figures.length, 1, JSON.stringify(chart.results.map((r) => r.formats())))
    assert.equal(figures[0].isMainResult, false)
    assert.deepEqual(pngSize(figures[0].png), { width: 500, height: 200 })
    assert.ok(figures[0].formats().includes('png'))
  })
})

test('an exception is execution.error with name, value and traceback; onError fires', opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    let seen
    const execution = await sandbox.runCode('def f():\n    return {}["missing"]\nprint("before")\nf()', {
      onError: (e) => {
        seen = e
      },
    })
    assert.equal(execution.error.name, 'KeyError')
    assert.equal(execution.error.value, "'missing'")
    assert.equal(typeof execution.error.traceback, 'string')
    assert.match(execution.error.traceback, /missing/)
    assert.match(execution.error.traceback, /f\(\)/)
    assert.equal(seen?.name, 'KeyError')
    assert.equal(execution.logs.stdout.join(''), 'before\n')
    assert.equal(execution.text, undefined)
    // The sandbox keeps working.
    assert.equal((await sandbox.runCode('1 + 1')).text, '2')
  })
})

test('createCodeContext, listCodeContexts, restartCodeContext, removeCodeContext', opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    const ctx = await sandbox.createCodeContext({ cwd: '/tmp' })
    assert.equal(ctx.language, 'python')
    assert.equal(ctx.cwd, '/tmp')
    assert.equal(typeof ctx.id, 'string')
    const other = await sandbox.createCodeContext()
    assert.equal(other.cwd, '/home/user')

    assert.equal((await sandbox.runCode('import os\nv = 1\nos.getcwd()', { context: ctx })).text, '/tmp')
    const isolated = await sandbox.runCode('v', { context: other })
    assert.equal(isolated.error?.name, 'NameError', 'contexts do not share state')

    const listed = await sandbox.listCodeContexts()
    const ids = listed.map((c) => c.id)
    assert.ok(ids.includes(ctx.id) && ids.includes(other.id), JSON.stringify(listed))

    await sandbox.restartCodeContext(ctx)
    assert.equal((await sandbox.runCode('v', { context: ctx })).error?.name, 'NameError', 'a restart loses the state')

    await sandbox.removeCodeContext(ctx.id)
    assert.ok(!(await sandbox.listCodeContexts()).some((c) => c.id === ctx.id))
    await rejectsWith(() => sandbox.runCode('1', { context: ctx }), NotFoundError, 'running in a removed context')
    await sandbox.removeCodeContext(other)
  })
})

test('per-call envs reach the cell; timeoutMs ends the wait with TimeoutError and interrupts the cell', opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    const env = await sandbox.runCode('import os\nos.environ.get("PER_CALL")', { envs: { PER_CALL: 'yes' } })
    assert.equal(env.text, 'yes')
    assert.equal((await sandbox.runCode('os.environ.get("PER_CALL", "unset")')).text, 'unset', 'envs last for one call')

    const ctx = await sandbox.createCodeContext()
    const started = Date.now()
    const err = await rejectsWith(
      () => sandbox.runCode('import time\nstarted = True\ntime.sleep(120)\ndone = True', { context: ctx, timeoutMs: 1000 }),
      TimeoutError,
    )
    assert.match(err.message, /timed out/i)
    assert.ok(Date.now() - started < 2500, `timeoutMs took ${Date.now() - started} ms`)
    // The client went away: as E2B's server does, Stockade interrupts the cell, so the next one
    // runs at once in the same interpreter (state kept) instead of waiting behind the sleep.
    const next = await sandbox.runCode("(started, 'done' in globals())", { context: ctx, timeoutMs: 15_000 })
    assert.equal(next.text, '(True, False)')
    assert.ok(Date.now() - started < 15_000, `the next cell waited ${Date.now() - started} ms`)
  })
})

test("results in E2B's forms: a str without quotes, a DataFrame's data, an image saved to a file", opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    const env = await sandbox.runCode('import os\nos.getenv("TEST_ENV_VAR")')
    assert.equal(env.text, 'supertest')
    assert.equal((await sandbox.runCode('[1, "a"]')).text, "[1, 'a']", 'other types keep their repr')

    const frame = await sandbox.runCode('import pandas as pd\npd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})')
    assert.deepEqual(frame.results[0].data, { a: [1, 2, 3], b: ['x', 'y', 'z'] })

    const saved = await sandbox.runCode('from PIL import Image\nImage.new("RGBA", (16, 8)).save("test.png")')
    assert.equal(saved.results.length, 1, JSON.stringify(saved.results.map((r) => r.formats())))
    assert.deepEqual(pngSize(saved.results[0].png), { width: 16, height: 8 })
  }, { envs: { TEST_ENV_VAR: 'supertest' } })
})

test('a cell running while its sandbox is killed rejects with the SDK\'s "sandbox was killed" error', opts, async () => {
  const sandbox = await Sandbox.create({ requestTimeoutMs: REQUEST_TIMEOUT_MS, timeoutMs: 120_000 })
  try {
    const execution = sandbox.runCode('import time\ntime.sleep(300)', { timeoutMs: 60_000 })
    execution.catch(() => {}) // awaited below; keeps Node from reporting it unhandled meanwhile
    await new Promise((resolve) => setTimeout(resolve, 1500))
    await sandbox.kill()
    const err = await rejectsWith(execution, TimeoutError)
    assert.match(err.message, /sandbox was killed while the request was in progress/)
  } finally {
    await sandbox.kill().catch(() => {})
  }
})

test("language 'bash': a shell per context, the sandbox's and the call's envs, cwd, state between cells", opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    assert.equal((await sandbox.runCode('echo $TEST_ENV_VAR', { language: 'bash' })).logs.stdout[0], 'supertest\n')
    const over = await sandbox.runCode('echo $TEST_ENV_VAR $FOO', { language: 'bash', envs: { TEST_ENV_VAR: 'overwrite', FOO: 'bar' } })
    assert.equal(over.logs.stdout[0], 'overwrite bar\n')
    const after = await sandbox.runCode('echo $TEST_ENV_VAR ${FOO:-default}', { language: 'bash' })
    assert.equal(after.logs.stdout[0], 'supertest default\n')
    assert.equal((await sandbox.runCode('pwd', { language: 'bash' })).logs.stdout.join('').trim(), '/home/user')

    const ctx = await sandbox.createCodeContext({ language: 'bash', cwd: '/tmp' })
    assert.equal(ctx.language, 'bash')
    await sandbox.runCode('X=kept; cd /home/user', { context: ctx })
    assert.equal((await sandbox.runCode('echo $X $(pwd)', { context: ctx })).logs.stdout.join(''), 'kept /home/user\n')
    const failed = await sandbox.runCode('ls /nonexistent', { context: ctx })
    assert.equal(failed.error?.value, '2', 'a failing command is an error whose value is its exit status')
    assert.ok(failed.logs.stderr.join('').includes('nonexistent'), JSON.stringify(failed.logs))
  }, { envs: { TEST_ENV_VAR: 'supertest' } })
})

test('languages the template has no kernel for (r, typescript) are refused; language python is accepted', opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    const err = await rejectsWith(() => sandbox.runCode('1', { language: 'r' }), SandboxError)
    assert.match(err.message, /400/)
    await rejectsWith(() => sandbox.createCodeContext({ language: 'typescript' }), SandboxError)
    assert.equal((await sandbox.runCode('6 * 7', { language: 'python' })).text, '42')
  })
})

test('runCode on a killed sandbox fails instead of hanging', opts, async () => {
  const sandbox = await Sandbox.create({ requestTimeoutMs: REQUEST_TIMEOUT_MS, timeoutMs: 120_000 })
  await sandbox.kill()
  // 502 from the server: @e2b/code-interpreter maps it to TimeoutError ("likely due to sandbox timeout").
  await rejectsWith(() => sandbox.runCode('1'), TimeoutError)
})
