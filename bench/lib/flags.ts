// A small `--name value` / `--name=value` parser for the bench suites. Each suite declares its
// flags once; the same list drives parsing and `--help`, so the help text cannot drift.

export interface FlagSpec {
  /** Name without the leading dashes, e.g. `duration`. */
  readonly name: string
  /** Placeholder for the value in help, e.g. `SECONDS`; absent for on/off flags. */
  readonly valueName?: string
  readonly defaultValue?: string
  readonly description: string
}

/** A mistake on the command line: run.ts prints the message on one line and exits 2. */
export class UsageError extends Error {}

export type ParsedFlags = ReadonlyMap<string, string>

export function parseFlags (args: readonly string[], specs: readonly FlagSpec[]): ParsedFlags {
  const byName = new Map(specs.map((spec) => [spec.name, spec]))
  const values = new Map<string, string>()
  for (const spec of specs) {
    if (spec.defaultValue !== undefined) values.set(spec.name, spec.defaultValue)
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument: ${arg}`)
    const equals = arg.indexOf('=')
    const name = equals === -1 ? arg.slice(2) : arg.slice(2, equals)
    const spec = byName.get(name)
    if (spec === undefined) throw new UsageError(`unknown flag: --${name}`)
    if (spec.valueName === undefined) {
      if (equals !== -1) throw new UsageError(`flag --${name} takes no value`)
      values.set(name, 'true')
      continue
    }
    const value = equals === -1 ? args[++i] : arg.slice(equals + 1)
    if (value === undefined || value === '') throw new UsageError(`flag --${name} needs a value (${spec.valueName})`)
    values.set(name, value)
  }
  return values
}

export function wholeNumber (flags: ParsedFlags, name: string, minimum: number): number {
  const text = flags.get(name) ?? ''
  const value = Number(text)
  if (!/^\d+$/.test(text) || value < minimum) throw new UsageError(`flag --${name} must be a whole number ≥ ${minimum}, got: ${text}`)
  return value
}

/** A comma-separated list whose items must all come from `allowed`. */
export function listOf (flags: ParsedFlags, name: string, allowed: readonly string[]): string[] {
  const items = (flags.get(name) ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '')
  if (items.length === 0) throw new UsageError(`flag --${name} needs at least one of: ${allowed.join(', ')}`)
  for (const item of items) {
    if (!allowed.includes(item)) throw new UsageError(`flag --${name}: unknown value ${item} (one of: ${allowed.join(', ')})`)
  }
  return items
}

export function formatFlagHelp (specs: readonly FlagSpec[]): string {
  const lefts = specs.map((spec) => `--${spec.name}${spec.valueName === undefined ? '' : ` ${spec.valueName}`}`)
  const width = Math.max(...lefts.map((left) => left.length))
  return specs.map((spec, i) => {
    const suffix = spec.defaultValue === undefined ? '' : ` (default ${spec.defaultValue})`
    return `  ${lefts[i].padEnd(width)}  ${spec.description}${suffix}`
  }).join('\n')
}
