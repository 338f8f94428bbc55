// Who may read the admin listener. Two checks, in this order, on every request to it:
//
// Host, against DNS rebinding. A page from attacker.example can have its name re-resolved to
// 127.0.0.1 and then read http://attacker.example:8081/ as its own origin: the browser connects
// to the admin on loopback and sends `Host: attacker.example:8081`. So the admin answers 421 to
// any Host whose name it does not know. It knows:
//   - IP address literals (127.0.0.1, 10.0.0.5, [::1]): the address the client dialled, whether
//     the admin is bound to it, to a wildcard, or reached through NAT. A rebinding attack always
//     arrives with a name the attacker controls, never with a literal;
//   - localhost (an SSH tunnel, `ssh -L 9000:127.0.0.1:8081`, arrives as localhost:9000);
//   - the HOST of --admin when it is a name;
//   - every name given with --admin-host (a reverse proxy's or a DNS name for the admin).
// The port in Host is not compared: tunnels and proxies change it, and only the name decides
// whether a page of another origin can be behind the request. A request without Host (HTTP/1.0)
// gets 421 too; every browser sends one.
//
// Token, optional (--admin-token, --admin-token-file): `Authorization: Bearer TOKEN` on the data
// paths, compared in constant time (SHA-256 digests of equal length, crypto.timingSafeEqual), so
// the time an answer takes says nothing about how much of a guess was right.

import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIPv4, isIPv6 } from 'node:net'

/** Shorter tokens are refused at start: a token is the only thing between the network and the figures. */
export const ADMIN_TOKEN_MIN_LENGTH = 16
/** Longer tokens are refused at start: a request head has to carry it. */
export const ADMIN_TOKEN_MAX_LENGTH = 1024

/** The Host names the admin answers to (see the top of this file). */
export class HostRule {
  private readonly names: Set<string>

  /** `names`: the --admin HOST (if a name) and every --admin-host; localhost is always in. */
  constructor(names: Iterable<string>) {
    this.names = new Set(['localhost'])
    for (const name of names) this.names.add(normalizeName(name))
  }

  allows(host: string | undefined): boolean {
    if (host === undefined) return false
    if (host.startsWith('[')) {
      const close = host.indexOf(']')
      return close > 0 && isIPv6(host.slice(1, close)) && isPortPart(host, close + 1)
    }
    const colon = host.indexOf(':')
    const end = colon < 0 ? host.length : colon
    if (!isPortPart(host, end)) return false
    const name = normalizeName(host.slice(0, end))
    return isIPv4(name) || this.names.has(name)
  }
}

/** Lower case, without the root's trailing dot or an IPv6 literal's brackets. */
function normalizeName(name: string): string {
  let n = name.toLowerCase()
  if (n.endsWith('.')) n = n.slice(0, -1)
  if (n.startsWith('[') && n.endsWith(']')) n = n.slice(1, -1)
  return n
}

/** Nothing, or ":" and one to five digits, from `at` to the end. */
function isPortPart(host: string, at: number): boolean {
  if (at === host.length) return true
  if (host.charCodeAt(at) !== 0x3a || host.length - at < 2 || host.length - at > 6) return false
  for (let i = at + 1; i < host.length; i++) {
    const c = host.charCodeAt(i)
    if (c < 0x30 || c > 0x39) return false
  }
  return true
}

/** Why a name cannot be an --admin-host, or null when it can. */
export function adminHostProblem(name: string): string | null {
  if (/^[A-Za-z0-9_.-]+$/.test(name) || (name.startsWith('[') && isIPv6(name.slice(1, -1)) && name.endsWith(']'))) return null
  return 'expected a host name without scheme or port, e.g. admin.example.com'
}

/** Why a string cannot be the admin token, or null when it can. */
export function adminTokenProblem(token: string): string | null {
  if (token.length < ADMIN_TOKEN_MIN_LENGTH)
    return `the token has ${token.length} characters; use at least ${ADMIN_TOKEN_MIN_LENGTH}, e.g. from \`openssl rand -hex 32\``
  if (token.length > ADMIN_TOKEN_MAX_LENGTH) return `the token has ${token.length} characters; use at most ${ADMIN_TOKEN_MAX_LENGTH}`
  // RFC 6750's b64token, so that it can travel in an Authorization header as it is.
  if (!/^[A-Za-z0-9._~+/-]+=*$/.test(token)) return 'the token may hold only letters, digits and - . _ ~ + / (then = at the end), as a bearer token must'
  return null
}

/** The token in FILE: its text without surrounding whitespace (the newline `echo` or `openssl` leaves). */
export function readTokenFile(path: string): string {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
  return text.trim()
}

/** The outcome of checking a request's credentials. */
export const Credentials = { VALID: 0, MISSING: 1, WRONG: 2 } as const
export type Credentials = (typeof Credentials)[keyof typeof Credentials]

export class AdminToken {
  private readonly digest: Buffer

  constructor(token: string) {
    this.digest = sha256(token)
  }

  /** Check an Authorization header value: `Bearer TOKEN`, the scheme in any case (RFC 9110 §11.1). */
  check(authorization: string | undefined): Credentials {
    if (authorization === undefined) return Credentials.MISSING
    const space = authorization.indexOf(' ')
    if (space < 0 || authorization.slice(0, space).toLowerCase() !== 'bearer') return Credentials.MISSING
    const presented = authorization.slice(space + 1).trim()
    return timingSafeEqual(sha256(presented), this.digest) ? Credentials.VALID : Credentials.WRONG
  }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}
