// result.chart with the official, unmodified @e2b/code-interpreter package: a matplotlib figure shown
// by a cell comes back as a png and, beside it, E2B's typed chart data (line, scatter, bar, pie,
// box_and_whisker, superchart, unknown), with labels, units, ticks and scales.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { Sandbox } from '@e2b/code-interpreter'
import { preflight, REQUEST_TIMEOUT_MS, TEST_TIMEOUT_MS } from '../lib/helpers.js'

const opts = { timeout: TEST_TIMEOUT_MS }

/** One sandbox for the file: the cells close their figures, so they don't see each other's. */
let sandbox

before(async () => {
  await preflight()
  sandbox = await Sandbox.create({ requestTimeoutMs: REQUEST_TIMEOUT_MS, timeoutMs: 180_000 })
})

after(async () => {
  await sandbox?.kill().catch(() => {})
})

/** Runs a cell that shows one figure; returns that figure's result (it has a png). */
async function figure(code) {
  const execution = await sandbox.runCode(code)
  assert.equal(execution.error, undefined, JSON.stringify(execution.error))
  assert.equal(execution.results.length, 1, JSON.stringify(execution.results.map((r) => r.formats())))
  const result = execution.results[0]
  assert.ok(result.png, 'the figure is still a png')
  assert.equal(result.isMainResult, false)
  return result
}

const numbers = (list) => list.every((v) => typeof v === 'number')
const strings = (list) => list.every((v) => typeof v === 'string')

test('a line chart: labels with their units, datetime and linear scales, one element per line', opts, async () => {
  const { chart } = await figure(`
import datetime
import matplotlib.pyplot as plt
import numpy as np
days = [datetime.date(2024, 3, 1) + datetime.timedelta(days=i) for i in range(30)]
plt.figure(figsize=(6, 4))
plt.plot(days, np.linspace(0, 1, 30), label='rise')
plt.plot(days, np.linspace(1, 0, 30))
plt.xlabel('Day [d]')
plt.ylabel('Level (m)')
plt.title('Tide')
plt.show()`)
  assert.equal(chart.type, 'line')
  assert.equal(chart.title, 'Tide')
  assert.deepEqual([chart.x_label, chart.x_unit, chart.y_label, chart.y_unit], ['Day [d]', 'd', 'Level (m)', 'm'])
  assert.deepEqual([chart.x_scale, chart.y_scale], ['datetime', 'linear'])
  assert.ok(strings(chart.x_ticks) && chart.x_ticks.every((t) => !Number.isNaN(Date.parse(t))), chart.x_ticks)
  assert.ok(numbers(chart.y_ticks) && strings(chart.x_tick_labels) && strings(chart.y_tick_labels))
  assert.deepEqual(chart.elements.map((e) => e.label), ['rise', 'Line 1'], 'an unlabelled line is numbered as E2B does')
  const [rise] = chart.elements
  assert.equal(rise.points.length, 30)
  assert.deepEqual(rise.points[0], ['2024-03-01', 0])
  assert.deepEqual(rise.points[29], ['2024-03-30', 1])
})

test('log and categorical scales; a NaN point is null', opts, async () => {
  const log = (await figure(`
import matplotlib.pyplot as plt
plt.plot([1, 2, 3, 4], [10, float('nan'), 1000, 10000], label='growth')
plt.yscale('log')
plt.xlabel('step')
plt.show()`)).chart
  assert.equal(log.type, 'line')
  assert.deepEqual([log.x_scale, log.y_scale], ['linear', 'log'])
  assert.deepEqual([log.x_label, log.x_unit, log.y_label], ['step', null, null])
  assert.deepEqual(log.elements[0].points, [[1, 10], [2, null], [3, 1000], [4, 10000]])

  const categorical = (await figure(`
import matplotlib.pyplot as plt
plt.plot([1, 2, 3], ['low', 'mid', 'high'])
plt.show()`)).chart
  assert.deepEqual([categorical.x_scale, categorical.y_scale], ['linear', 'categorical'])
  assert.deepEqual(categorical.y_tick_labels, ['low', 'mid', 'high'])
  assert.deepEqual(categorical.elements[0].points, [[1, 'low'], [2, 'mid'], [3, 'high']])
})

test('a scatter chart: one element per collection, points as numbers, no title is null', opts, async () => {
  const { chart } = await figure(`
import matplotlib.pyplot as plt
plt.scatter([1, 2, 3], [4, 5, 6], label='first')
plt.scatter([0.5, 1.5], [2, 1], label='second')
plt.xlabel('x')
plt.show()`)
  assert.equal(chart.type, 'scatter')
  assert.equal(chart.title, null)
  assert.deepEqual([chart.x_label, chart.y_label], ['x', null])
  assert.ok(numbers(chart.x_ticks) && numbers(chart.y_ticks))
  assert.deepEqual(chart.elements, [
    { label: 'first', points: [[1, 4], [2, 5], [3, 6]] },
    { label: 'second', points: [[0.5, 2], [1.5, 1]] },
  ])
})

test('bar charts: label, group and value per bar; horizontal bars put the categories on x', opts, async () => {
  const bars = (await figure(`
import matplotlib.pyplot as plt
plt.bar(['north', 'south', 'west'], [3, 7, 5], label='2024')
plt.bar(['north', 'south', 'west'], [1, 2, 1], bottom=[3, 7, 5])
plt.xlabel('Region')
plt.ylabel('Sales (k$)')
plt.title('Sales')
plt.show()`)).chart
  assert.equal(bars.type, 'bar')
  assert.deepEqual([bars.title, bars.x_label, bars.y_label, bars.x_unit, bars.y_unit], ['Sales', 'Region', 'Sales (k$)', null, 'k$'])
  assert.deepEqual(bars.elements, [
    { label: 'north', group: '2024', value: 3 },
    { label: 'south', group: '2024', value: 7 },
    { label: 'west', group: '2024', value: 5 },
    { label: 'north', group: 'Group 1', value: 1 },
    { label: 'south', group: 'Group 1', value: 2 },
    { label: 'west', group: 'Group 1', value: 1 },
  ])

  const horizontal = (await figure(`
import matplotlib.pyplot as plt
plt.barh(['a', 'b'], [4, 4])
plt.xlabel('count')
plt.ylabel('letter')
plt.show()`)).chart
  assert.deepEqual([horizontal.x_label, horizontal.y_label], ['letter', 'count'])
  assert.deepEqual(horizontal.elements.map((e) => [e.label, e.value]), [['a', 4], ['b', 4]])
})

test('a pie chart: label, angle in degrees and radius per wedge', opts, async () => {
  const { chart } = await figure(`
import matplotlib.pyplot as plt
plt.pie([3, 1], labels=['yes', 'no'], autopct='%1.0f%%', radius=1.5)
plt.title('Vote')
plt.show()`)
  assert.equal(chart.type, 'pie')
  assert.equal(chart.title, 'Vote')
  assert.deepEqual(chart.elements, [
    { label: 'yes', angle: 270, radius: 1.5 },
    { label: 'no', angle: 90, radius: 1.5 },
  ])
})

test('a box-and-whisker chart: quartiles, whiskers and outliers per box', opts, async () => {
  const { chart } = await figure(`
import matplotlib.pyplot as plt
fig, ax = plt.subplots()
ax.boxplot([[1, 2, 3, 4, 5], [10, 11, 12, 13, 14, 40, 41]], labels=['small', 'big'], patch_artist=True)
ax.set_ylabel('Value')
plt.show()`)
  assert.equal(chart.type, 'box_and_whisker')
  assert.deepEqual([chart.x_label, chart.y_label], [null, 'Value'])
  assert.deepEqual(chart.elements, [
    { label: 'small', min: 1, first_quartile: 2, median: 3, third_quartile: 4, max: 5, outliers: [] },
    { label: 'big', min: 10, first_quartile: 11.5, median: 13, third_quartile: 27, max: 41, outliers: [] },
  ])
  const withOutliers = (await figure(`
import matplotlib.pyplot as plt
plt.boxplot([[5, 6, 7, 8, 9, 30, -20]], labels=['one'], patch_artist=True)
plt.show()`)).chart
  assert.deepEqual(withOutliers.elements[0], {
    label: 'one', min: 5, first_quartile: 5.5, median: 7, third_quartile: 8.5, max: 9, outliers: [-20, 30],
  })
})

test('a figure of several Axes is a superchart: the suptitle and one chart per Axes', opts, async () => {
  const { chart } = await figure(`
import matplotlib.pyplot as plt
fig, axs = plt.subplots(1, 3, figsize=(9, 3))
fig.suptitle('Overview')
axs[0].plot([0, 1, 2], [2, 1, 3])
axs[0].set_title('Trend')
axs[1].scatter([1, 2], [3, 4])
axs[1].set_xlabel('X (cm)')
axs[2].bar(['a', 'b'], [1, 2])
plt.show()`)
  assert.equal(chart.type, 'superchart')
  assert.equal(chart.title, 'Overview')
  assert.deepEqual(chart.elements.map((c) => c.type), ['line', 'scatter', 'bar'])
  assert.equal(chart.elements[0].title, 'Trend')
  assert.deepEqual(chart.elements[0].elements[0].points, [[0, 2], [1, 1], [2, 3]])
  assert.deepEqual([chart.elements[1].x_label, chart.elements[1].x_unit], ['X (cm)', 'cm'])
  assert.deepEqual(chart.elements[2].elements.map((e) => e.label), ['a', 'b'])
})

test('a figure the extractor has no type for is "unknown" with its title; one it cannot use is a png only', opts, async () => {
  const unknown = (await figure(`
import matplotlib.pyplot as plt
import numpy as np
plt.imshow(np.eye(3))
plt.title('Identity')
plt.show()`)).chart
  assert.deepEqual(unknown, { type: 'unknown', title: 'Identity', elements: [] })

  // Over the extractor's bounds (points per figure): the png shows, the cell succeeds, no chart.
  const big = await figure(`
import matplotlib.pyplot as plt
plt.plot(range(150_000))
plt.show()`)
  assert.equal(big.chart, undefined)

  // A figure with nothing drawn on it has no chart either.
  const blank = await figure('import matplotlib.pyplot as plt\nplt.figure()\nplt.show()')
  assert.equal(blank.chart, undefined)

  // A figure left open (no plt.show()) is shown at the end of the cell, with its chart.
  const open = await figure('import matplotlib.pyplot as plt\n_ = plt.plot([3, 1])')
  assert.equal(open.chart.type, 'line')
})
