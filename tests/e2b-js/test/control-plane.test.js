// The control plane as E2B's own suite uses it: Sandbox.list's filters,
// order and paging over running and paused sandboxes, connect that only ever
// extends a running sandbox's timeout, and getMetrics.

import { test, before } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox } from 'e2b'
import { preflight, allPages, uid, eventually, TEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS } from '../lib/helpers.js'

before(preflight)

const opts = { timeout: TEST_TIMEOUT_MS }
const create = (metadata, extra = {}) =>
  Sandbox.create({ metadata, timeoutMs: 120_000, requestTimeoutMs: REQUEST_TIMEOUT_MS, ...extra })
const ids = (pages) => pages.flat().map((s) => s.sandboxId)

test('Sandbox.list: newest first, order, state, startedAfter, template, paged with limit 1', opts, async () => {
  const run = uid()
  const older = await create({ run })
  const newer = await create({ run })
  try {
    await newer.pause()
    const query = { metadata: { run } }
    // Default and desc: newest first across pages; asc the reverse.
    assert.deepEqual(ids(await allPages(Sandbox.list({ limit: 1, query }))), [newer.sandboxId, older.sandboxId])
    assert.deepEqual(ids(await allPages(Sandbox.list({ limit: 1, query, order: 'asc' }))), [older.sandboxId, newer.sandboxId])
    const paged = Sandbox.list({ limit: 1, query: { ...query, state: ['running', 'paused'] }, order: 'desc' })
    const first = await paged.nextItems()
    assert.equal(first[0].state, 'paused')
    assert.ok(paged.hasNext && paged.nextToken, 'a next token after the first of two')
    const second = await paged.nextItems()
    assert.equal(second[0].state, 'running')
    assert.equal(paged.hasNext, false)
    assert.equal(paged.nextToken, undefined)
    // State filters.
    assert.deepEqual(ids(await allPages(Sandbox.list({ query: { ...query, state: ['paused'] } }))), [newer.sandboxId])
    assert.deepEqual(ids(await allPages(Sandbox.list({ query: { ...query, state: ['running'] } }))), [older.sandboxId])
    // startedAfter is inclusive; a second later leaves the sandbox out.
    const info = await newer.getInfo()
    assert.ok(ids(await allPages(Sandbox.list({ query: { ...query, startedAfter: info.startedAt } }))).includes(newer.sandboxId))
    const later = new Date(info.startedAt.getTime() + 1000)
    assert.deepEqual(ids(await allPages(Sandbox.list({ query: { ...query, startedAfter: later } }))), [])
    // template: the id getInfo reports; an unknown template matches nothing.
    assert.equal(ids(await allPages(Sandbox.list({ query: { ...query, template: info.templateId } }))).length, 2)
    assert.deepEqual(ids(await allPages(Sandbox.list({ query: { ...query, template: 'unknown-template' } }))), [])
  } finally {
    await Promise.all([older.kill().catch(() => {}), newer.kill().catch(() => {})])
  }
})

test('Sandbox.connect never shortens a running sandbox timeout, but extends it', opts, async () => {
  const sandbox = await create({ run: uid() }, { timeoutMs: 300_000 })
  try {
    const before = await Sandbox.getInfo(sandbox.sandboxId)
    await Sandbox.connect(sandbox.sandboxId, { timeoutMs: 10_000 })
    const after = await sandbox.getInfo()
    assert.equal(after.endAt.getTime(), before.endAt.getTime(), 'a shorter connect timeout keeps endAt')
    await sandbox.connect({ timeoutMs: 600_000 })
    const extended = await sandbox.getInfo()
    assert.ok(extended.endAt.getTime() > before.endAt.getTime(), 'a longer connect timeout extends endAt')
  } finally {
    await sandbox.kill().catch(() => {})
  }
})

test('getMetrics returns samples of the sandbox cgroup and disk, within the asked range', opts, async () => {
  const sandbox = await create({ run: uid() })
  try {
    const start = new Date()
    await sandbox.commands.run('head -c 10000000 /dev/zero > /home/user/blob')
    const metrics = await eventually(async () => {
      const m = await sandbox.getMetrics({ start, end: new Date() })
      return m.length > 0 && m
    }, { timeoutMs: 15_000, intervalMs: 500, what: 'a metrics sample' })
    const m = metrics[metrics.length - 1]
    assert.ok(m.timestamp instanceof Date && m.timestamp.getTime() >= start.getTime() - 10_000, String(m.timestamp))
    assert.ok(m.cpuCount >= 1 && m.cpuUsedPct >= 0, JSON.stringify(m))
    assert.ok(m.memUsed > 0 && m.memUsed <= m.memTotal, JSON.stringify(m))
    assert.ok(m.diskTotal > 0 && m.diskUsed >= 10_000_000 && m.diskUsed <= m.diskTotal, JSON.stringify(m))
    const none = await sandbox.getMetrics({
      start: new Date(start.getTime() - 3_600_000),
      end: new Date(start.getTime() - 1_800_000),
    })
    assert.deepEqual(none, [])
  } finally {
    await sandbox.kill().catch(() => {})
  }
})
