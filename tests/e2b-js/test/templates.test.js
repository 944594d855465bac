// E2B's Template API through the official SDK (issue 17): Template.build of
// fromTemplate('base') with ENV and WORKDIR steps under an alias, then
// Sandbox.create(alias) sees the environment; exists() of a built-in and of an
// unknown name; tags; and a RUN step failing with the step the server names.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox, Template } from 'e2b'
import { preflight, uid, TEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }
const conn = { requestTimeoutMs: REQUEST_TIMEOUT_MS }

test('Template.build(fromTemplate base + setEnvs + setWorkdir) then Sandbox.create(alias) sees $A', opts, async () => {
  const alias = `sdk-tpl-${uid()}`.toLowerCase().replace(/[^a-z0-9-_]/g, '-')
  const logs = []
  const info = await Template.build(
    Template().fromTemplate('base').setEnvs({ A: '1', B: '$A-x' }).setWorkdir('/tmp'),
    alias,
    { ...conn, onBuildLogs: (e) => logs.push(e) },
  )
  assert.equal(info.name, alias)
  assert.match(info.templateId, /^[a-z0-9]{20}$/)
  assert.ok(logs.some((e) => String(e.message ?? e).includes('Build finished')), logs.map(String).join('\n'))
  assert.equal(await Template.exists(alias, conn), true)
  const tags = await Template.getTags(info.templateId, conn)
  assert.deepEqual(tags.map((t) => t.tag), ['default'])

  const sbx = await Sandbox.create(alias, { timeoutMs: 60_000, ...conn })
  try {
    const r = await sbx.commands.run('echo "$A $B"')
    assert.equal(r.stdout, '1 1-x\n')
  } finally {
    await sbx.kill()
  }
})

test('Template.exists: the built-in base is there, an unknown name is not', opts, async () => {
  assert.equal(await Template.exists('base', conn), true)
  assert.equal(await Template.exists(`nope-${uid()}`.toLowerCase(), conn), false)
})

test('Template.build with a RUN step fails at that step (RUN is not built yet)', opts, async () => {
  const alias = `sdk-run-${uid()}`.toLowerCase().replace(/[^a-z0-9-_]/g, '-')
  await assert.rejects(
    Template.build(Template().fromTemplate('base').setEnvs({ A: '1' }).runCmd('echo hi'), alias, conn),
    (e) => e.name === 'BuildError' && /RUN\/COPY steps are not built yet/.test(e.message),
  )
})
