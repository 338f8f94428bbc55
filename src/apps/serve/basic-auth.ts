// HTTP Basic authentication (RFC 7617) against an htpasswd file: the `auth` rule of a site, and
// `petrel serve --auth-htpasswd FILE` on the command line. An HttpServer guard (server.guard):
// it answers a request itself (401, 400, 429) or lets it go on to the routes, files, CGI and proxy.
//
// - The password check runs on the thread pool (htpasswd-work.ts), behind a bounded queue: a full
//   queue answers 503 (PETREL_ERR_POOL_QUEUE_FULL), never unbounded memory.
// - An unknown user is checked against a dummy hash of the file's highest bcrypt cost (or apr1
//   when the file has no bcrypt), so that its answer takes as long as a wrong password's and
//   names cannot be found by timing. (A file that mixes costs or kinds still lets timing tell a
//   user's kind: use one.)
// - Checks per client address per window are limited (WindowLimiter): 429 beyond, so one client
//   cannot keep the pool busy or guess passwords at the pool's speed.
// - A browser sends the credentials with every request: credentials checked once are remembered
//   (a bounded table of HMACs under a key made at start, never the password) until the file
//   changes, so a page of 30 files costs one check, not 30, and does not count against the limit.
// - Nothing here logs a password or a hash.

import { Buffer } from 'node:buffer'
import { createHmac, randomBytes, randomInt } from 'node:crypto'
import { PetrelError, ERRORS } from '../../core/errors.ts'
import { WindowLimiter } from '../../core/window-limiter.ts'
import { Router } from '../../server/router.ts'
import { answerBody } from '../../server/answer.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { moduleUrl } from '../../core/module-url.ts'
import type { HtpasswdUsers } from './htpasswd.ts'
import { AUTH_DEFAULTS, realmProblem } from './auth-limits.ts'

export { AUTH_DEFAULTS, realmProblem } from './auth-limits.ts'

/** The module the pool's threads run for each check. */
export const HTPASSWD_WORK = moduleUrl('./htpasswd-work.ts', import.meta.url)

export interface BasicAuthOptions {
  users: HtpasswdUsers
  /** The realm a browser shows in its prompt (no `"`, `\` or control characters). */
  realm?: string
  /** Which paths need a password: a route pattern ("/admin/*" covers /admin too). */
  path?: string
  /** Checks `password` against `hash` off the event loop (the thread pool running htpasswd-work.ts). */
  verify: (task: { password: string; hash: string }, signal: AbortSignal) => Promise<boolean>
  /**
   * The limiter of password checks per client address, when several checkers share one (every
   * site's and the server's), so that a client gets one allowance per process, not one per site.
   * Without it, one is made from attemptsPerWindow, windowMs and trackedAddresses.
   */
  limiter?: WindowLimiter
  attemptsPerWindow?: number
  windowMs?: number
  trackedAddresses?: number
  maxCredentialChars?: number
  rememberedCredentials?: number
  /** The clock of the limiter, in ms (tests pass a fake one). */
  nowMs?: () => number
}

const BCRYPT_ALPHABET = './ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const randomChars = (count: number): string => {
  let out = ''
  for (let i = 0; i < count; i++) out += BCRYPT_ALPHABET[randomInt(BCRYPT_ALPHABET.length)]
  return out
}

/** A well-formed hash no password is known to match, costing what the file's dearest hash costs. */
function dummyHash(users: HtpasswdUsers): string {
  let cost = -1
  for (const hash of users.values()) if (hash.startsWith('$2')) cost = Math.max(cost, Number(hash.slice(4, 6)))
  if (cost < 0) return `$apr1$${randomChars(8)}$${randomChars(22)}`
  return `$2y$${String(cost).padStart(2, '0')}$${randomChars(53)}`
}

/** UTF-8 that is not well-formed throws instead of becoming U+FFFD. */
const STRICT_UTF8 = new TextDecoder('utf-8', { fatal: true })

/** The user and password of a well-formed `Basic` token, or null when it is malformed. */
function decodeCredentials(token: string, maxChars: number): { user: string; password: string; bytes: Buffer } | null {
  if (token.length === 0 || token.length > maxChars || token.length % 4 !== 0) return null
  // Strict base64 (RFC 4648 §4): the alphabet, then at most two "=" at the very end.
  let padding = 0
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i)
    if (c === 0x3d) {
      padding++
      continue
    }
    const inAlphabet = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2b || c === 0x2f
    if (!inAlphabet || padding > 0) return null
  }
  if (padding > 2) return null
  const bytes = Buffer.from(token, 'base64')
  // RFC 7617 §2: no control characters in either part.
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! < 0x20 || bytes[i] === 0x7f) return null
  const colon = bytes.indexOf(0x3a)
  if (colon < 0) return null
  let text: string
  try {
    text = STRICT_UTF8.decode(bytes)
  } catch {
    return null
  }
  // The user-id cannot hold a colon, so the first one ends it; the password may hold more (RFC 7617 §2).
  const at = text.indexOf(':')
  return { user: text.slice(0, at), password: text.slice(at + 1), bytes }
}

/** The limiter of password checks per client address that BasicAuth makes when given none; share one with `limiter`. */
export function authLimiter(options: Pick<BasicAuthOptions, 'attemptsPerWindow' | 'windowMs' | 'trackedAddresses'>): WindowLimiter {
  return new WindowLimiter({
    limit: options.attemptsPerWindow ?? AUTH_DEFAULTS.attemptsPerWindow,
    windowMs: options.windowMs ?? AUTH_DEFAULTS.windowMs,
    maxKeys: options.trackedAddresses ?? AUTH_DEFAULTS.trackedAddresses,
  })
}

export class BasicAuth {
  readonly realm: string
  private readonly users: HtpasswdUsers
  private readonly paths = new Router<true>()
  private readonly pathValues: string[] = []
  private readonly verify: BasicAuthOptions['verify']
  private readonly limiter: WindowLimiter
  private readonly nowMs: () => number
  private readonly maxCredentialChars: number
  private readonly rememberedCredentials: number
  /** HMAC of checked credentials → the hash they matched, oldest use first. */
  private readonly remembered = new Map<string, string>()
  private readonly rememberKey = randomBytes(32)
  private readonly dummy: string
  private readonly challenge: string

  constructor(options: BasicAuthOptions) {
    this.users = options.users
    this.realm = options.realm ?? AUTH_DEFAULTS.realm
    const problem = realmProblem(this.realm)
    if (problem !== null) throw new PetrelError('PETREL_ERR_CLI_BAD_VALUE', `realm ${JSON.stringify(this.realm)}: ${problem}`)
    const path = options.path ?? AUTH_DEFAULTS.path
    this.paths.add('GET', path, true)
    // "/admin/*" means the directory itself too: GET /admin must not reach the files unchecked.
    if (path.endsWith('/*') && path.length > 2) this.paths.add('GET', path.slice(0, -2), true)
    this.verify = options.verify
    this.limiter = options.limiter ?? authLimiter(options)
    this.nowMs = options.nowMs ?? Date.now
    this.maxCredentialChars = options.maxCredentialChars ?? AUTH_DEFAULTS.maxCredentialChars
    this.rememberedCredentials = options.rememberedCredentials ?? AUTH_DEFAULTS.rememberedCredentials
    this.dummy = dummyHash(this.users)
    this.challenge = `Basic realm="${this.realm}", charset="UTF-8"`
  }

  /** Whether `req` needs a password here. */
  covers(req: Request): boolean {
    const head = req.head
    if (this.paths.findStatic(head.pathBuffer(), head.pathStart(), head.pathEnd()) !== null) return true
    const found = this.paths.find(req.path, this.pathValues)
    this.pathValues.length = 0
    return found !== null
  }

  /**
   * The guard: true when the request may go on; false when it was answered here (401, 400, 429);
   * a promise of either while the password is checked on the pool (it rejects with the pool's
   * 503 errors when the pool is full or slow).
   */
  check(req: Request, res: Response): boolean | Promise<boolean> {
    if (!this.covers(req)) return true
    // Repeated fields joined with ", ": two Authorization fields (which one counts is ambiguous)
    // make a token that is not base64, refused with 400, rather than the first one read alone.
    const field = req.headers.authorization
    if (field === undefined) return this.refuse(res)
    // Another scheme (Bearer, Digest) is not malformed: the client is asked for Basic.
    if (field.length < 5 || field.slice(0, 5).toLowerCase() !== 'basic' || (field.length > 5 && field.charCodeAt(5) !== 0x20)) return this.refuse(res)
    let start = 5
    while (start < field.length && field.charCodeAt(start) === 0x20) start++
    const given = decodeCredentials(field.slice(start), this.maxCredentialChars)
    if (given === null) {
      res.status(400).end(answerBody(400, ERRORS.PETREL_ERR_AUTH_MALFORMED.message))
      return false
    }
    const stored = this.users.get(given.user)
    const key = createHmac('sha256', this.rememberKey).update(given.bytes).digest('base64')
    if (stored !== undefined && this.remembered.get(key) === stored) {
      // Moved to the end: the table forgets the least recently used first.
      this.remembered.delete(key)
      this.remembered.set(key, stored)
      return true
    }
    const waitMs = this.limiter.take(req.remoteAddress ?? '', this.nowMs())
    if (waitMs > 0) {
      res.setHeader('Retry-After', String(Math.ceil(waitMs / 1000)))
      res.status(429).end(answerBody(429, ERRORS.PETREL_ERR_AUTH_TOO_MANY.message))
      return false
    }
    return this.verify({ password: given.password, hash: stored ?? this.dummy }, res.signal).then((match) => {
      // The server may have answered meanwhile (timeouts.handlerMs): nothing is left to refuse.
      if (res.finished) return false
      if (!match || stored === undefined) return this.refuse(res)
      if (this.remembered.size >= this.rememberedCredentials) this.remembered.delete(this.remembered.keys().next().value!)
      this.remembered.set(key, stored)
      return true
    })
  }

  private refuse(res: Response): false {
    res.setHeader('WWW-Authenticate', this.challenge)
    res.status(401).end(answerBody(401, ERRORS.PETREL_ERR_AUTH_REQUIRED.message))
    return false
  }
}
