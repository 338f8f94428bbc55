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
  /**
   * A 'string' flag whose value may be a whole number (`--workers N|auto`): a config file may
   * give it as a JSON number, read as its decimal text. Other string flags refuse numbers.
   */
  wholeNumber?: boolean
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
      const ms = parseDurationMs(raw)
      if (ms === null) throw badValue(spec, raw, 'a duration such as 500ms, 5s or 1m (a bare number means seconds)')
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

const MS_PER_UNIT = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const

/**
 * A duration in milliseconds: "250ms", "5s", "1.5s", "2m", "1h", or a bare number, which means
 * seconds — for every flag and config key, as in nginx (`keepalive_timeout 5`) and wrk (`-d 10`).
 */
export function parseDurationMs(text: string): number | null {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text)
  if (m === null) return null
  return Math.round(Number(m[1]) * MS_PER_UNIT[(m[2] ?? 's') as keyof typeof MS_PER_UNIT])
}

/** The help texts' one sentence on TIME values, true of every duration flag and config key. */
export const TIME_HELP = 'TIME: 500ms, 5s, 1m or 1h; a bare number is seconds (5 means 5s), as in nginx.'

/** A duration as help text shows it, in the largest unit that keeps it whole: 500ms, 10s, 5m, 1h. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0'
  for (const unit of ['h', 'm', 's'] as const) {
    if (ms % MS_PER_UNIT[unit] === 0) return `${ms / MS_PER_UNIT[unit]}${unit}`
  }
  return `${ms}ms`
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
