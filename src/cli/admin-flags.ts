// The admin token on the command line, shared by `petrel serve` (which requires it) and
// `petrel top` (which sends it): the same two flags, checked the same way.

import { adminTokenProblem, readTokenFile } from '../monitor/access.ts'
import { errorMessage } from '../core/errors.ts'
import { UsageError, type FlagMap, type FlagSpec } from './args.ts'

/** `--admin-token`, `--admin-token-file`; `what` says what the token does for the command. */
export function adminTokenFlags(what: string): readonly [FlagSpec<'admin-token', 'string'>, FlagSpec<'admin-token-file', 'string'>] {
  return [
    {
      name: 'admin-token',
      type: 'string',
      valueName: 'TOKEN',
      description: `${what}; other local users can read a command line (ps, /proc): prefer --admin-token-file`,
    },
    {
      name: 'admin-token-file',
      type: 'string',
      valueName: 'FILE',
      description: 'the same token, read from FILE (keep it chmod 600; surrounding whitespace is ignored)',
    },
  ]
}

/** The token the flags give, checked; undefined when neither is given. */
export function adminTokenFromFlags(flags: FlagMap<{ 'admin-token'?: string; 'admin-token-file'?: string }>): string | undefined {
  const inline = flags.get('admin-token')
  const file = flags.get('admin-token-file')
  let token: string
  let flag: string
  if (inline !== undefined) {
    if (file !== undefined) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', 'give --admin-token or --admin-token-file, not both')
    token = inline
    flag = '--admin-token'
  } else if (file !== undefined) {
    flag = '--admin-token-file'
    try {
      token = readTokenFile(file)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for ${flag}: ${errorMessage(err)}; give a file that holds the token`)
    }
  } else {
    return undefined
  }
  const problem = adminTokenProblem(token)
  if (problem !== null) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for ${flag}: ${problem}`)
  return token
}
