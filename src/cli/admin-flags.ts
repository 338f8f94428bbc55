// The admin token on the command line, shared by `petrel serve` (which requires it) and
// `petrel top` (which sends it): the same two flags, checked the same way.

import { adminTokenProblem, readTokenFile } from '../monitor/access.ts'
import { UsageError, type FlagSpec, type FlagValue } from './args.ts'

/** `--admin-token`, `--admin-token-file`; `what` says what the token does for the command. */
export function adminTokenFlags(what: string): FlagSpec[] {
  return [
    { name: 'admin-token', type: 'string', valueName: 'TOKEN', description: `${what}; other local users can read a command line (ps, /proc): prefer --admin-token-file` },
    { name: 'admin-token-file', type: 'string', valueName: 'FILE', description: 'the same token, read from FILE (keep it chmod 600; surrounding whitespace is ignored)' },
  ]
}

/** The token the flags give, checked; undefined when neither is given. */
export function adminTokenFromFlags(flags: ReadonlyMap<string, FlagValue | unknown>): string | undefined {
  const inline = flags.get('admin-token') as string | undefined
  const file = flags.get('admin-token-file') as string | undefined
  if (inline !== undefined && file !== undefined) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', 'give --admin-token or --admin-token-file, not both')
  if (inline === undefined && file === undefined) return undefined
  const flag = inline === undefined ? '--admin-token-file' : '--admin-token'
  let token: string
  try {
    token = inline ?? readTokenFile(file!)
  } catch (err) {
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for ${flag}: ${(err as Error).message}; give a file that holds the token`)
  }
  const problem = adminTokenProblem(token)
  if (problem !== null) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for ${flag}: ${problem}`)
  return token
}
