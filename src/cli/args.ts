// A small, strict command-line parser: every flag is declared with its type, a bad flag or value
// is a one-line error that names the flag and the fix, and the help text comes from the same
// declarations so it cannot drift from what is accepted.

import { UsageError } from '../core/errors.ts'

export { UsageError }

export type FlagType = 'string' | 'integer' | 'duration' | 'boolean' | 'list'

/** What a flag of each type reads as: integers and durations (in ms) are numbers; a boolean given is `true`. */
export type FlagValueOf<Type extends FlagType> = Type extends 'integer' | 'duration'
  ? number
  : Type extends 'boolean'
    ? true
    : Type extends 'list'
      ? string[]
      : string

export type FlagValue = FlagValueOf<FlagType>

export interface FlagSpec<Name extends string = string, Type extends FlagType = FlagType> {
  /** Long name without dashes, e.g. "port". */
  readonly name: Name
  readonly short?: string
  readonly type: Type
  readonly description: string
  /** Shown in help as --name VALUE. */
  readonly valueName?: string
  /** Smallest accepted integer or duration (ms). */
  readonly min?: number
  readonly max?: number
  /**
   * A 'string' flag whose value may be a whole number (`--workers N|auto`): a config file may
   * give it as a JSON number, read as its decimal text. Other string flags refuse numbers.
   */
  readonly wholeNumber?: boolean
  /** The value when the flag is not given; help shows it, and the flag then always has a value. */
  readonly default?: FlagValueOf<Type>
}

/**
 * The flags a spec list declares, by name: `{ port?: number, list?: true, … }`. A flag with a
 * `default` is always present; any other is absent (undefined) unless given. Declare a command's
 * list `as const` so that each name keeps its literal type.
 */
export type Flags<Specs extends readonly FlagSpec[]> = {
  -readonly [Spec in Specs[number] as Spec extends { readonly default: unknown } ? never : Spec['name']]?: FlagValueOf<Spec['type']>
} & { -readonly [Spec in Specs[number] as Spec extends { readonly default: unknown } ? Spec['name'] : never]: FlagValueOf<Spec['type']> }

/**
 * A command's flag list, each entry keeping its literal name and type (for `Flags`) and every
 * optional field of FlagSpec (so code that walks the list can read `min` or `wholeNumber`).
 */
export type FlagList<Specs extends readonly FlagSpec[]> = {
  readonly [I in keyof Specs]: Specs[I] extends FlagSpec<infer Name, infer Type> ? Specs[I] & FlagSpec<Name, Type> : never
}

/**
 * Declares a command's flags: `defineFlags([{ name: 'port', type: 'integer', … }])`. The list is
 * returned as it is; only its type changes, which the compiler cannot see through a mapped tuple,
 * so the typed signature is declared over the plain one.
 */
export function defineFlags<const Specs extends readonly FlagSpec[]>(specs: Specs): FlagList<Specs>
export function defineFlags(specs: readonly FlagSpec[]): readonly FlagSpec[] {
  return specs
}

/**
 * The parsed flags: a Map at run time (so a config file's flags and the command line's merge and
 * compare as maps), typed so that `get('port')` is `number | undefined` for an integer flag.
 */
export interface FlagMap<Values> extends Iterable<[string, FlagValue]> {
  get<Name extends keyof Values & string>(name: Name): Values[Name]
  has(name: keyof Values & string): boolean
  keys(): MapIterator<string>
  entries(): MapIterator<[string, FlagValue]>
  readonly size: number
}

export interface ParsedArgs<Values> {
  flags: FlagMap<Values>
  positionals: string[]
}

/**
 * Parses `argv` against `specs`. `command` and `program` name the command in errors: an unknown
 * flag of `petrel serve` says to run `petrel serve --help`.
 *
 * The first signature is what callers see: the result typed by the specs. The checks below make
 * it true at run time (each value is converted by its spec's type), which the compiler cannot
 * follow through a loop over a list, so the typed signature is declared over the untyped one.
 */
export function parseArgs<const Specs extends readonly FlagSpec[]>(
  argv: readonly string[],
  specs: Specs,
  command: string,
  program?: string,
): ParsedArgs<Flags<Specs>>
export function parseArgs(
  argv: readonly string[],
  specs: readonly FlagSpec[],
  command: string,
  program = 'petrel',
): ParsedArgs<Record<string, FlagValue | undefined>> {
  const byName = new Map<string, FlagSpec>()
  for (const spec of specs) {
    byName.set(`--${spec.name}`, spec)
    if (spec.short !== undefined) byName.set(`-${spec.short}`, spec)
  }
  const flags = new Map<string, FlagValue>()
  const positionals: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === undefined) break
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
      throw new UsageError(
        'PETREL_ERR_CLI_UNKNOWN_FLAG',
        `unknown flag ${key} for \`${program} ${command}\`; run \`${program} ${command} --help\` for the flags it takes`,
      )
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
      const prior = flags.get(spec.name)
      flags.set(spec.name, Array.isArray(prior) ? [...prior, raw] : [raw])
    } else {
      flags.set(spec.name, value)
    }
  }
  for (const spec of specs) {
    if (spec.default !== undefined && !flags.has(spec.name)) flags.set(spec.name, spec.default)
  }
  return { flags, positionals }
}

/**
 * A string flag that takes one of a few words, checked: `--log-level warn`. Undefined when the
 * flag is not given; otherwise the word, typed as one of `allowed`.
 */
export function oneOf<const Word extends string>(name: string, value: string | undefined, allowed: readonly Word[]): Word | undefined {
  if (value === undefined) return undefined
  for (const word of allowed) if (word === value) return word
  const last = allowed.length - 1
  const expected = last < 1 ? allowed.join('') : `${allowed.slice(0, last).join(', ')} or ${allowed.slice(last).join('')}`
  throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --${name}: ${JSON.stringify(value)}; expected ${expected}`)
}

/** The longest a duration may be: what a Node timer can wait (2^31 - 1 ms, about 24.8 days); longer ones fire at once. */
export const MAX_DURATION_MS = 2 ** 31 - 1
/** What a too-long duration is told: the bound, and why. */
export const MAX_DURATION_TEXT = `at most ${MAX_DURATION_MS}ms (about 24 days, the longest a timer can wait)`

function convert(spec: FlagSpec, raw: string): FlagValue {
  switch (spec.type) {
    case 'integer': {
      if (!/^\d+$/.test(raw)) throw badValue(spec, raw, 'a whole number')
      return inRange(spec, raw, Number(raw), '')
    }
    case 'duration': {
      const ms = parseDurationMs(raw)
      if (ms === null) throw badValue(spec, raw, 'a duration such as 500ms, 5s or 1m (a bare number means seconds)')
      if (ms > MAX_DURATION_MS) throw badValue(spec, raw, MAX_DURATION_TEXT)
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
  const unit = m[2] === 'ms' || m[2] === 'm' || m[2] === 'h' ? m[2] : 's'
  return Math.round(Number(m[1]) * MS_PER_UNIT[unit])
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

/**
 * Help text for a command's flags, aligned in two columns. A flag's `default` is shown after its
 * description; the column of short names is left out when no flag has one.
 */
export function formatFlags(specs: readonly FlagSpec[]): string {
  const anyShort = specs.some((s) => s.short !== undefined)
  const rows = specs.map((s) => {
    const short = s.short !== undefined ? `-${s.short}, ` : anyShort ? '    ' : ''
    const names = `${short}--${s.name}${s.type === 'boolean' ? '' : ` ${s.valueName ?? 'VALUE'}`}`
    const shownDefault = s.default === undefined ? '' : ` (default ${showDefault(s)})`
    return [names, `${s.description}${shownDefault}`] as const
  })
  const width = Math.max(...rows.map(([n]) => n.length)) + 2
  return rows.map(([n, d]) => `  ${n.padEnd(width)}${d}`).join('\n')
}

function showDefault(spec: FlagSpec): string {
  const value = spec.default
  if (spec.type === 'duration' && typeof value === 'number') return formatDuration(value)
  return Array.isArray(value) ? value.join(',') : String(value)
}
