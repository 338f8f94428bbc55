// The error for a bad option or argument given to the library, with its code from the one table.

import { PetrelError } from './errors.ts'

/**
 * A bad option or argument given to the library: the message is the detail alone, since it
 * names the option, the value and what is accepted, and a caller that reports it to a user
 * (`bad value for --database: …`, `inetd.conf:3: only_from: …`) puts it after its own prefix.
 */
export class InvalidOptionError extends PetrelError {
  constructor(detail: string) {
    super('PETREL_ERR_INVALID_OPTION', detail)
    this.name = 'InvalidOptionError'
    this.message = detail
  }
}
