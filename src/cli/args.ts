// A small, strict command-line parser: every flag is declared with its type, a bad flag or value
// is a one-line error that names the flag and the fix, and the help text comes from the same
// declarations so it cannot drift from what is accepted.

import { UsageError } from '../core/errors.ts'

export { UsageError }

export type FlagType = 'string' | 'integer' | 'duration' | 'boolean' | 'list'

export interface FlagSpec {
  /** Long name without dashes, e.g. "port". */
  name: string
  short?: string
  type: FlagType
  description: string
  /** Shown in help as --name VALUE. */
  valueName?: string
  /** Smallest accepted integer or duration (ms). */
  min?: number
  max?: number
  /** Unit of a bare number given to a duration flag: ms (default) or s (as wrk's -d 10). */
  bareUnit?: 'ms' | 's'
}

export type FlagValue = string | number | boolean | string[]

export interface ParsedArgs {
  flags: Map<string, FlagValue>
  positionals: string[]
}

export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[], command: string): ParsedArgs {
  const byName = new Map<string, FlagSpec>()
  for (const spec of specs) {
    byName.set(`--${spec.name}`, spec)
    if (spec.short !== undefined) byName.set(`-${spec.short}`, spec)
  }
  const flags = new Map<string, FlagValue>()
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1))
      break
    }
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg)
      continue
    }
    const eq = arg.indexOf('=')
    const key = eq > 0 && arg.startsWith('--') ? arg.slice(0, eq) : arg
    const spec = byName.get(key)
    if (spec === undefined) {
      throw new UsageError('PETREL_ERR_CLI_UNKNOWN_FLAG', `unknown flag ${key} for \`petrel ${command}\`; run \`petrel ${command} --help\` for the flags it takes`)
    }
    if (spec.type === 'boolean') {
      if (eq > 0) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `--${spec.name} takes no value`)
      flags.set(spec.name, true)
      continue
    }
    let raw: string
    if (eq > 0 && arg.startsWith('--')) {
      raw = arg.slice(eq + 1)
    } else {
      const next = argv[i + 1]
      if (next === undefined) throw new UsageError('PETREL_ERR_CLI_MISSING_VALUE', `--${spec.name} needs a value: --${spec.name} ${spec.valueName ?? 'VALUE'}`)
      raw = next
      i++
    }
    const value = convert(spec, raw)
    if (spec.type === 'list') {
      const prior = flags.get(spec.name) as string[] | undefined
      flags.set(spec.name, prior === undefined ? [raw] : [...prior, raw])
    } else {
      flags.set(spec.name, value)
    }
  }
  return { flags, positionals }
}

function convert(spec: FlagSpec, raw: string): FlagValue {
  switch (spec.type) {
    case 'integer': {
      if (!/^\d+$/.test(raw)) throw badValue(spec, raw, 'a whole number')
      return inRange(spec, raw, Number(raw), '')
    }
    case 'duration': {
      const bareUnit = spec.bareUnit ?? 'ms'
      const ms = parseDurationMs(raw, bareUnit)
      if (ms === null) throw badValue(spec, raw, `a duration such as 500ms, 5s or 1m (a bare number means ${bareUnit === 'ms' ? 'milliseconds' : 'seconds'})`)
      return inRange(spec, raw, ms, 'ms')
    }
    case 'string':
    case 'list':
      if (raw === '') throw badValue(spec, raw, 'a non-empty value')
      return raw
    case 'boolean':
      return true
  }
}

function inRange(spec: FlagSpec, raw: string, value: number, unit: string): number {
  if (spec.min !== undefined && value < spec.min) throw badValue(spec, raw, `at least ${spec.min}${unit}`)
  if (spec.max !== undefined && value > spec.max) throw badValue(spec, raw, `at most ${spec.max}${unit}`)
  return value
}

function badValue(spec: FlagSpec, raw: string, expected: string): UsageError {
  return new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --${spec.name}: ${JSON.stringify(raw)}; expected ${expected}`)
}

/** "250ms", "5s", "1.5s", "2m", "1h" or a bare number of `bareUnit`. */
export function parseDurationMs(text: string, bareUnit: 'ms' | 's' = 'ms'): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text)
  if (m === null) return null
  const n = Number(m[1])
  const unit = m[2] ?? bareUnit
  const ms = unit === 'ms' ? n : unit === 's' ? n * 1000 : unit === 'm' ? n * 60_000 : n * 3_600_000
  return Math.round(ms)
}

/** Help text for a command's flags, aligned in two columns. */
export function formatFlags(specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => {
    const names = `${s.short !== undefined ? `-${s.short}, ` : '    '}--${s.name}${s.type === 'boolean' ? '' : ` ${s.valueName ?? 'VALUE'}`}`
    return [names, s.description] as const
  })
  const width = Math.max(...rows.map(([n]) => n.length)) + 2
  return rows.map(([n, d]) => `  ${n.padEnd(width)}${d}`).join('\n')
}
