// Password hashing for the accounts demo: scrypt (node:crypto) with a random salt per password,
// stored as `scrypt$N$r$p$salt$hash` (base64url) so the parameters can be raised later without
// breaking old hashes. Runs on the thread pool (named exports `hash` and `verify`), or inline
// when the server is told to (to measure what offloading buys: `npm run bench -- accounts`).

import { Buffer } from 'node:buffer'
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto'

/** About 17 ms and 8 MiB of one core per hash on the reference machine. */
export const PASSWORD_SCRYPT = { N: 2 ** 13, r: 8, p: 1, keyBytes: 32, saltBytes: 16 } as const

export function hash(password: string): string {
  const { N, r, p, keyBytes, saltBytes } = PASSWORD_SCRYPT
  const salt = randomBytes(saltBytes)
  const key = scryptSync(password, salt, keyBytes, { N, r, p })
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/** Whether `password` matches `stored`; a malformed `stored` never matches. Constant-time compare. */
export function verify(task: { password: string; stored: string }): boolean {
  const parts = task.stored.split('$')
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])]
  if (![N, r, p].every((v) => Number.isInteger(v) && v > 0) || N > 2 ** 20 || r > 32 || p > 16) return false
  const salt = Buffer.from(parts[4]!, 'base64url')
  const expected = Buffer.from(parts[5]!, 'base64url')
  if (expected.length < 16 || expected.length > 64) return false
  const key = scryptSync(task.password, salt, expected.length, { N, r, p, maxmem: 256 * N * r * 2 })
  return timingSafeEqual(key, expected)
}

/** A hash of a password nobody has, to verify against when the user does not exist (same cost). */
export const DUMMY_HASH = hash('petrel: no such user')
