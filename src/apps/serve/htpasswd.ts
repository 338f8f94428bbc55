// htpasswd files, as Apache's `htpasswd` command writes them: one `user:hash` per line.
//
// Two kinds of hash are accepted, the two that are salted and slow enough to be worth checking:
// bcrypt (`htpasswd -B`: $2y$, also $2a$/$2b$ from other tools) and apr1-MD5 (`htpasswd -m`, the
// command's default: $apr1$). Every other kind is refused when the file is loaded, with the file,
// the line and the user named, so that the operator learns it at start (or from the refused
// reload) rather than from a user who cannot log in:
// - {SHA} (`htpasswd -s`) is one unsalted SHA-1: a leaked file gives up its passwords at once;
// - a 13-character DES crypt (`htpasswd -d`) counts only the first 8 characters of a password;
// - plain text (`htpasswd -p`) is no hash at all;
// - $5$/$6$ SHA-crypt (`htpasswd -2`/`-5`) has no maintained npm implementation to check it with.
// Blank lines and lines starting with "#" are skipped; a third field after another colon (a
// comment, as Apache allows) is ignored.

import { UsageError } from '../../core/errors.ts'

/** The bcrypt costs accepted: `htpasswd -C` allows 4 to 17; a higher cost would let one request hold a pool thread for seconds. */
export const BCRYPT_COST = { min: 4, max: 17 } as const

/** The users of one file: name → hash. */
export type HtpasswdUsers = Map<string, string>

const BCRYPT_HASH = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/
const APR1_HASH = /^\$apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22}$/
const DES_CRYPT = /^[./A-Za-z0-9]{13}$/

/** Why `hash` is not accepted, or null when it is a bcrypt or apr1 hash Petrel checks. */
function hashProblem(hash: string): string | null {
  const bcrypt = BCRYPT_HASH.exec(hash)
  if (bcrypt !== null) {
    const cost = Number(bcrypt[1])
    if (cost < BCRYPT_COST.min || cost > BCRYPT_COST.max)
      return `bcrypt cost ${cost} is outside ${BCRYPT_COST.min} to ${BCRYPT_COST.max} (htpasswd -B -C ${BCRYPT_COST.min}..${BCRYPT_COST.max})`
    return null
  }
  if (APR1_HASH.test(hash)) return null
  if (hash.startsWith('{SHA}')) return 'a {SHA} hash (htpasswd -s) is one unsalted SHA-1 and is not accepted'
  if (hash.startsWith('$5$') || hash.startsWith('$6$')) return 'SHA-crypt ($5$, $6$) is not accepted'
  if (hash.startsWith('$2') || hash.startsWith('$apr1$')) return 'a malformed bcrypt or apr1 hash'
  if (DES_CRYPT.test(hash)) return 'a DES crypt hash (htpasswd -d) counts only 8 characters of a password and is not accepted'
  return 'not a bcrypt or apr1 hash (plain text, or a format htpasswd does not make)'
}

const REMAKE = '; make the line again with `htpasswd -B FILE USER` (bcrypt) or `htpasswd -m FILE USER` (apr1-MD5)'

/**
 * The users of an htpasswd file's `text`; throws a UsageError (PETREL_ERR_HTPASSWD) naming `file`, the line and
 * its user for the first line that cannot be used. The message never quotes a hash.
 */
export function parseHtpasswd(text: string, file: string): HtpasswdUsers {
  const users: HtpasswdUsers = new Map()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.endsWith('\r') ? lines[i]!.slice(0, -1) : lines[i]!
    if (line.trim() === '' || line.startsWith('#')) continue
    const where = `${file} line ${i + 1}`
    const colon = line.indexOf(':')
    if (colon <= 0) throw new UsageError('PETREL_ERR_HTPASSWD', `${where}: not USER:HASH${REMAKE}`)
    const user = line.slice(0, colon)
    const end = line.indexOf(':', colon + 1)
    const hash = line.slice(colon + 1, end < 0 ? line.length : end)
    const named = `${where} (user ${JSON.stringify(user)})`
    const problem = hashProblem(hash)
    if (problem !== null) throw new UsageError('PETREL_ERR_HTPASSWD', `${named}: ${problem}${REMAKE}`)
    if (users.has(user)) throw new UsageError('PETREL_ERR_HTPASSWD', `${named}: the user is in the file twice; remove one of the lines`)
    users.set(user, hash)
  }
  return users
}
