// JavaScript cells (language 'javascript' or 'js') with the official, unmodified @e2b/code-interpreter
// package: a persistent node per context behind the same /execute and /contexts wire as Python.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { TimeoutError } from 'e2b'
import { preflight, rejectsWith, TEST_TIMEOUT_MS } from '../lib/helpers.js'
import { withCodeSandbox } from '../lib/code-sandbox.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }

test("language 'javascript': the sandbox's and the call's envs, as E2B's env-var tests use them", opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    assert.equal((await sandbox.runCode('process.env.TEST_ENV_VAR', { language: 'javascript' })).results[0]?.text, 'supertest')
    const over = await sandbox.runCode('process.env.TEST_ENV_VAR', { language: 'js', envs: { TEST_ENV_VAR: 'overwrite' } })
    assert.equal(over.results[0]?.text, 'overwrite')
    assert.equal((await sandbox.runCode('process.env.TEST_ENV_VAR', { language: 'javascript' })).results[0]?.text, 'supertest',
      'a per-call env var is set back afterwards')
    assert.equal((await sandbox.runCode("process.env.FOO || 'default'", { language: 'javascript' })).results[0]?.text, 'default')
  }, { envs: { TEST_ENV_VAR: 'supertest' } })
})

test('javascript contexts: state between cells, output, results, errors, await, require, the sandbox user', opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    const ctx = await sandbox.createCodeContext({ language: 'javascript', cwd: '/tmp' })
    assert.equal(ctx.language, 'javascript')
    const first = await sandbox.runCode('const x = 40; console.log("hi"); x + 2', { context: ctx })
    assert.deepEqual(first.logs.stdout, ['hi\n'])
    assert.equal(first.text, '42')
    assert.equal(first.results[0].isMainResult, true)
    assert.equal((await sandbox.runCode('x * 2', { context: ctx })).text, '80', 'a top-level const is seen by the next cell')
    assert.equal((await sandbox.runCode('({ a: [1, 2, 3] })', { context: ctx })).text, '{ a: [ 1, 2, 3 ] }')
    assert.equal((await sandbox.runCode('await new Promise(r => setTimeout(r, 50)); return "waited"', { context: ctx })).text, 'waited')
    assert.equal((await sandbox.runCode('Promise.resolve(7)', { context: ctx })).text, '7', 'a promise is awaited')
    assert.equal((await sandbox.runCode('undefined', { context: ctx })).results.length, 0)
    const failed = await sandbox.runCode('throw new TypeError("bad input")', { context: ctx })
    assert.equal(failed.error?.name, 'TypeError')
    assert.equal(failed.error?.value, 'bad input')
    assert.match(failed.error?.traceback, /TypeError: bad input/)
    const who = await sandbox.runCode('require("os").userInfo().username + " " + process.cwd() + " " + process.getuid()', { context: ctx })
    assert.equal(who.text, 'user /tmp 1000')
    // An error thrown later by a timer is reported, not the end of the kernel.
    await sandbox.runCode('setTimeout(() => { throw new Error("later") }, 10); 1', { context: ctx })
    await new Promise(r => setTimeout(r, 200))
    assert.equal((await sandbox.runCode('x', { context: ctx })).text, '40')
  })
})

test('javascript: a timed-out cell is interrupted and the context keeps its state; process.exit restarts it', opts, async () => {
  await withCodeSandbox(async (sandbox) => {
    const ctx = await sandbox.createCodeContext({ language: 'javascript' })
    await sandbox.runCode('globalThis.kept = "yes"', { context: ctx })
    await rejectsWith(() => sandbox.runCode('while (true) {}', { context: ctx, timeoutMs: 2_000 }), TimeoutError)
    assert.equal((await sandbox.runCode('kept', { context: ctx })).text, 'yes', 'the busy loop was broken off, the state kept')
    await rejectsWith(() => sandbox.runCode('await new Promise(() => {})', { context: ctx, timeoutMs: 2_000 }), TimeoutError)
    assert.equal((await sandbox.runCode('kept', { context: ctx })).text, 'yes', 'a never-settling await was given up')
    const died = await sandbox.runCode('process.exit(3)', { context: ctx })
    assert.equal(died.error?.name, 'ContextDied')
    assert.equal((await sandbox.runCode('typeof kept', { context: ctx })).text, 'undefined', 'a new node, its state lost')
  })
})
