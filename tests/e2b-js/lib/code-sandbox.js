// The code-interpreter tests' sandbox: the official @e2b/code-interpreter package's Sandbox, with
// the suite's request bound, killed afterwards whatever happened.

import { Sandbox } from '@e2b/code-interpreter'
import { REQUEST_TIMEOUT_MS } from './helpers.js'

/** A code-interpreter sandbox (its default template) for fn, killed afterwards whatever happened. */
export async function withCodeSandbox(fn, createOpts = {}) {
  const sandbox = await Sandbox.create({ requestTimeoutMs: REQUEST_TIMEOUT_MS, timeoutMs: 120_000, ...createOpts })
  try {
    return await fn(sandbox)
  } finally {
    await sandbox.kill().catch(() => {})
  }
}
