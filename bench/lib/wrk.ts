// Runs wrk pinned to one CPU and reads the JSON line that bench/wrk/report.lua prints from
// wrk's done() hook, instead of parsing wrk's human-readable text.

import { startTracked } from './children.ts'

const JSON_MARKER = 'PETREL_WRK_JSON '

export interface WrkRun {
  readonly wrkPath: string
  readonly cpu: number
  readonly url: string
  readonly connections: number
  readonly durationSec: number
  /** Absolute path of a Lua script that loads report.lua (or is report.lua). */
  readonly scriptPath: string
  readonly scriptArgs: readonly string[]
  readonly headers: readonly string[]
}

export interface WrkErrors {
  readonly connect: number
  readonly read: number
  readonly write: number
  /** Responses with a status ≥ 400 (wrk's "Non-2xx or 3xx responses"). */
  readonly status: number
  readonly timeout: number
}

export interface WrkResult {
  readonly durationUs: number
  readonly requests: number
  readonly bytes: number
  readonly errors: WrkErrors
  readonly latencyUs: { readonly mean: number; readonly p50: number; readonly p99: number; readonly max: number }
}

export async function runWrk(run: WrkRun): Promise<WrkResult> {
  const args = [
    '-c',
    String(run.cpu),
    run.wrkPath,
    // One wrk thread: wrk has one core, and more threads would only contend for it.
    '-t1',
    `-c${run.connections}`,
    `-d${run.durationSec}s`,
    '-s',
    run.scriptPath,
    ...run.headers.flatMap((header) => ['-H', header]),
    run.url,
  ]
  if (run.scriptArgs.length > 0) args.push('--', ...run.scriptArgs)
  const wrk = startTracked('taskset', args)
  const exit = await wrk.exited
  const output = wrk.outputTail()
  const line = output.split('\n').find((text) => text.startsWith(JSON_MARKER))
  if (line === undefined) {
    throw new Error(`wrk (exit ${exit}) printed no summary: ${output.trim().split('\n').slice(-3).join(' | ')}`)
  }
  return JSON.parse(line.slice(JSON_MARKER.length)) as WrkResult
}

export function errorCount(errors: WrkErrors): number {
  return errors.connect + errors.read + errors.write + errors.status + errors.timeout
}

/** e.g. "read 12, non-2xx 3"; empty when there were none. */
export function describeErrors(errors: WrkErrors): string {
  const parts: string[] = []
  if (errors.connect > 0) parts.push(`connect ${errors.connect}`)
  if (errors.read > 0) parts.push(`read ${errors.read}`)
  if (errors.write > 0) parts.push(`write ${errors.write}`)
  if (errors.status > 0) parts.push(`non-2xx ${errors.status}`)
  if (errors.timeout > 0) parts.push(`timeout ${errors.timeout}`)
  return parts.join(', ')
}
