// The bench suites' flags, read by Petrel's one command-line parser (src/cli/args.ts): each suite
// declares its flags once with defineFlags, and the same list drives parsing, the typed values
// (`flags.get('duration')` is a number) and `--help`, so the help text cannot drift.

import { defineFlags, formatFlags, oneOf, parseArgs, UsageError, type FlagMap, type Flags, type FlagSpec } from '../../src/cli/args.ts'

export { defineFlags, oneOf, UsageError, type FlagSpec }

/** How a suite is run, for the errors: "unknown flag --x for `npm run bench -- http`". */
const BENCH_PROGRAM = 'npm run bench --'

/** A suite's flags; a word that is not a flag is a mistake (suites take no positionals). */
export function parseSuiteFlags<const Specs extends readonly FlagSpec[]>(
  args: readonly string[],
  specs: Specs,
  suite: string,
  program = BENCH_PROGRAM,
): FlagMap<Flags<Specs>> {
  const { flags, positionals } = parseArgs(args, specs, suite, program)
  const extra = positionals[0]
  if (extra !== undefined) throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `unexpected argument: ${extra}; \`${program} ${suite}\` takes flags only`)
  return flags
}

/** A comma-separated list whose items must all come from `allowed`. */
export function listOf<const Word extends string>(name: string, value: string, allowed: readonly Word[]): Word[] {
  const items: Word[] = []
  for (const text of value.split(',')) {
    const item = text.trim()
    if (item === '') continue
    const word = allowed.find((candidate) => candidate === item)
    if (word === undefined)
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --${name}: unknown ${JSON.stringify(item)}; expected some of ${allowed.join(', ')}`)
    items.push(word)
  }
  if (items.length === 0) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --${name}: expected at least one of ${allowed.join(', ')}`)
  return items
}

/** A suite's flags as `--help` shows them, from the same declarations that parse them. */
export function formatFlagHelp(specs: readonly FlagSpec[]): string {
  return formatFlags(specs)
}
