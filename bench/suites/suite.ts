import type { FlagSpec } from '../lib/flags.ts'

/** A benchmark suite, run as `node bench/run.ts <name> [flags]`. */
export interface Suite {
  readonly name: string
  readonly summary: string
  /** Listed by --help; a pass-through suite lists none and parses its own arguments. */
  readonly flags: readonly FlagSpec[]
  readonly passThrough: boolean
  /** Resolves with the process exit code. */
  run(args: readonly string[]): Promise<number>
}
