// The error for a bad option or argument given to the library, with its code from the one table.

import { UsageError } from './errors.ts'

/**
 * A bad option or argument given to the library: a UsageError (the CLI exits 2 on it) whose
 * message is the detail alone, since it names the option, the value and what is accepted, and a
 * caller that reports it to a user
 * (`bad value for --database: …`, `inetd.conf:3: only_from: …`) puts it after its own prefix.
 */
export class InvalidOptionError extends UsageError {
  constructor(detail: string) {
    super('PETREL_ERR_INVALID_OPTION', detail)
    this.name = 'InvalidOptionError'
  }
}

/**
 * `value` when it is a whole number of at least `min`; otherwise an InvalidOptionError that
 * names the option: "maxKeys must be an integer >= 1, got 1.5".
 */
export function wholeNumberOption(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) throw new InvalidOptionError(`${name} must be an integer >= ${min}, got ${value}`)
  return value
}
