// "HOST:PORT" as the command line takes it: `serve --admin 127.0.0.1:8081`, `top [::1]:8081`.
// One parser, so every command that names an address reads it the same way.

import { UsageError } from './args.ts'

/**
 * "HOST:PORT" or "[V6]:PORT" → host (brackets removed) and port. `name` is how the user wrote
 * the value — "--admin" for a flag, "ADMIN" for an argument — so the error names it.
 */
export function parseHostPort(name: string, value: string): { host: string; port: number } {
  const colon = value.lastIndexOf(':')
  const host = value.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
  const port = Number(value.slice(colon + 1))
  if (colon <= 0 || host === '' || !/^\d+$/.test(value.slice(colon + 1)) || port > 65535) {
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for ${name}: ${JSON.stringify(value)}; expected HOST:PORT, e.g. 127.0.0.1:8081`)
  }
  return { host, port }
}
