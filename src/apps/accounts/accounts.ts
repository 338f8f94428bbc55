// The accounts demo (book ch. 8.2, 8.7; the register/login site of the book's best-known C++
// build, done safely): /account/register, /account/login, /account/logout and /account/, a page
// only a logged-in user sees.
//
// - Passwords: scrypt with a salt per password, on the thread pool (or inline, to measure the
//   difference); an unknown user costs the same verify as a known one.
// - Sessions: a random 256-bit token in an HttpOnly, SameSite=Lax cookie; the store keeps only
//   its SHA-256, with an expiry, so any worker or instance on the same database knows it.
// - CSRF: a post whose Origin (or Sec-Fetch-Site) names another site's page is refused — another
//   subdomain included, which could plant our cookies. Forms carry a token too. Before login it
//   is a signed double-submit cookie: the form's hidden field must equal the cookie, and the token
//   must carry the server's HMAC (the key is kept in the database, shared by every worker and
//   machine), so a pair made up rather than issued by us fails. After login it is the session's
//   own token.
// - Limits: the form body (4 KiB), the name (3–32 of A–Z a–z 0–9 . _ -), the password (8–128
//   characters); login attempts per client address per minute (429 with Retry-After). Only posts
//   that pass the CSRF check count, so a cross-site page cannot lock a visitor out. Behind a
//   reverse proxy, `trustProxy` names the proxies whose X-Forwarded-For is believed.
// - SQL: parameterised only (store.ts).

import { Buffer } from 'node:buffer'
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import net, { type BlockList } from 'node:net'
import { permitted } from '../../core/allow-list.ts'
import { moduleUrl } from '../../core/module-url.ts'
import { WindowLimiter } from '../../core/window-limiter.ts'
import type { HttpServer } from '../../server/server.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import type { ThreadPool } from '../../process/pool/thread-pool.ts'
import type { AccountStore } from './store.ts'
import { DUMMY_HASH, hash as hashInline, verify as verifyInline } from './password-work.ts'
import { ACCOUNT_LIMITS } from './limits.ts'

export { ACCOUNT_LIMITS } from './limits.ts'

export const PASSWORD_WORK = moduleUrl('./password-work.ts', import.meta.url)

export interface AccountsOptions {
  store: AccountStore
  /** Where scrypt runs: 'pool' (default) or 'inline' on the event loop. */
  hashing?: 'pool' | 'inline'
  /** The thread pool, made on first use; needed for hashing 'pool'. */
  pool?: () => ThreadPool
  attemptsPerWindow?: number
  /**
   * Proxies in front of the server (an allow-list of addresses and CIDR blocks): a request from
   * one of them is limited by the first address in X-Forwarded-For, read from the right, that is
   * not one of them. Null (the default): the peer's address, whatever the request claims.
   */
  trustProxy?: BlockList | null
}

const SESSION_COOKIE = 'petrel_session'
const CSRF_COOKIE = 'petrel_csrf'
const USERNAME = /^[A-Za-z0-9._-]+$/

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

function cookies(req: Request): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of (req.header('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) out.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
  }
  return out
}

const token = (): string => randomBytes(32).toString('base64url')
const sha256 = (text: string): string => createHash('sha256').update(text).digest('base64url')

/** A pre-login CSRF token: a random nonce and its HMAC, both base64url. */
const SIGNED_TOKEN = /^[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$/
const csrfMac = (key: string, nonce: string): string => createHmac('sha256', key).update(`petrel-csrf:${nonce}`).digest('base64url')
const signedToken = (key: string): string => {
  const nonce = token()
  return `${nonce}.${csrfMac(key, nonce)}`
}
/** Whether `value` is a token this server (or another on the same database) signed. */
function signedByUs(key: string, value: string | undefined): boolean {
  if (value === undefined || !SIGNED_TOKEN.test(value)) return false
  return sameToken(value.slice(44), csrfMac(key, value.slice(0, 43)))
}

/**
 * Whether a form post comes from this site's own pages. Browsers send Origin with every POST, and
 * Sec-Fetch-Site: a post from another origin is refused — a sibling subdomain included, which is
 * same-site (its cookies reach us, and it can set ours) but not same-origin, so a token pair it
 * got from us and planted would otherwise pass. A client that sends neither (curl, an old
 * browser) is judged by the tokens alone.
 */
function fromOwnPages(req: Request): boolean {
  const site = req.header('sec-fetch-site')
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false
  const origin = req.header('origin')
  if (origin === undefined) return true
  try {
    return new URL(origin).host === req.header('host')
  } catch {
    // "null" (a sandboxed frame, a redirect across origins) or garbage.
    return false
  }
}

/** The answer to a post from another site's page. */
function crossSite(res: Response, back: string): void {
  page(res, 403, 'Form refused', `<p>This form was posted from another site's page. <a href="${back}">Open it here</a>.</p>`)
}

/**
 * The address a request is limited by. From a trusted proxy, X-Forwarded-For is read from the
 * right, past the trusted hops, to the first address a trusted hop vouched for (nginx's realip
 * with real_ip_recursive): what lies further left was written by the client and proves nothing.
 * An entry that is not an address ends the walk at the hop before it.
 */
export function clientAddress(req: Request, trusted: BlockList | null): string {
  let address = req.remoteAddress ?? ''
  if (trusted === null || !permitted(trusted, address)) return address
  const forwarded = req.headers['x-forwarded-for']
  if (forwarded === undefined) return address
  const hops = forwarded.split(',')
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = hops[i]!.trim()
    if (net.isIP(hop) === 0) return address
    address = hop
    if (!permitted(trusted, hop)) return address
  }
  return address
}

function sameToken(a: string | undefined, b: string | undefined): boolean {
  if (a === undefined || b === undefined || a.length === 0) return false
  const x = Buffer.from(a)
  const y = Buffer.from(b)
  // timingSafeEqual needs equal byte lengths (non-ASCII text can differ from its string length).
  return x.length === y.length && timingSafeEqual(x, y)
}

function page(res: Response, status: number, title: string, body: string): void {
  res.status(status)
  res.setHeader('Content-Type', 'text/html; charset=utf-8')
  res.setHeader('Cache-Control', 'no-store')
  res.setHeader('X-Frame-Options', 'DENY')
  res.setHeader('Content-Security-Policy', "default-src 'self'; form-action 'self'; frame-ancestors 'none'")
  res.end(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — Petrel accounts</title><link rel="stylesheet" href="/style.css"></head>
<body><main>
<h1>${escapeHtml(title)}</h1>
${body}
<p><a href="/">Petrel demo home</a></p>
</main></body></html>
`)
}

function redirect(res: Response, location: string): void {
  res.status(303).setHeader('Location', location)
  res.setHeader('Cache-Control', 'no-store')
  res.end()
}

function form(action: string, csrf: string, button: string, username = '', message = ''): string {
  return `${message === '' ? '' : `<p class="error" role="alert">${escapeHtml(message)}</p>`}
<form method="post" action="${action}">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<p><label>Name <input name="username" autocomplete="username" required minlength="${ACCOUNT_LIMITS.usernameMin}" maxlength="${ACCOUNT_LIMITS.usernameMax}" value="${escapeHtml(username)}"></label></p>
<p><label>Password <input name="password" type="password" autocomplete="${action.endsWith('register') ? 'new-password' : 'current-password'}" required minlength="${ACCOUNT_LIMITS.passwordMin}" maxlength="${ACCOUNT_LIMITS.passwordMax}"></label></p>
<p><button type="submit">${button}</button></p>
</form>`
}

/** Reads an urlencoded form of at most maxFormBytes; answers 413/415 itself and returns null. */
async function readForm(req: Request, res: Response): Promise<URLSearchParams | null> {
  const type = (req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/x-www-form-urlencoded') {
    page(res, 415, 'Unsupported form', '<p>Send the form as application/x-www-form-urlencoded (what a browser sends).</p>')
    return null
  }
  if (req.head.contentLength > ACCOUNT_LIMITS.maxFormBytes) {
    res.setHeader('Connection', 'close')
    page(res, 413, 'Form too large', `<p>A form is at most ${ACCOUNT_LIMITS.maxFormBytes} bytes.</p>`)
    return null
  }
  const body = await req.body()
  if (body.length > ACCOUNT_LIMITS.maxFormBytes) {
    page(res, 413, 'Form too large', `<p>A form is at most ${ACCOUNT_LIMITS.maxFormBytes} bytes.</p>`)
    return null
  }
  return new URLSearchParams(body.toString('utf8'))
}

/** What is wrong with a name and password, or null. */
export function credentialProblem(username: string, password: string): string | null {
  if (username.length < ACCOUNT_LIMITS.usernameMin || username.length > ACCOUNT_LIMITS.usernameMax || !USERNAME.test(username)) {
    return `A name is ${ACCOUNT_LIMITS.usernameMin} to ${ACCOUNT_LIMITS.usernameMax} of the letters A–Z and a–z, digits, dot, underscore and hyphen.`
  }
  const length = [...password].length
  if (length < ACCOUNT_LIMITS.passwordMin || length > ACCOUNT_LIMITS.passwordMax)
    return `A password is ${ACCOUNT_LIMITS.passwordMin} to ${ACCOUNT_LIMITS.passwordMax} characters.`
  return null
}

export function accountRoutes(server: HttpServer, options: AccountsOptions): void {
  const { store } = options
  const inline = options.hashing === 'inline'
  const trustProxy = options.trustProxy ?? null
  const limiter = new WindowLimiter({
    limit: options.attemptsPerWindow ?? ACCOUNT_LIMITS.attemptsPerWindow,
    windowMs: ACCOUNT_LIMITS.windowMs,
    maxKeys: ACCOUNT_LIMITS.trackedAddresses,
  })
  const hashPassword = (password: string, res: Response): Promise<string> =>
    inline ? Promise.resolve(hashInline(password)) : options.pool!().run<string>(password, { name: 'hash', signal: res.signal })
  const verifyPassword = (password: string, stored: string, res: Response): Promise<boolean> =>
    inline ? Promise.resolve(verifyInline({ password, stored })) : options.pool!().run<boolean>({ password, stored }, { name: 'verify', signal: res.signal })

  /** The key that signs pre-login CSRF tokens, fetched (or made) once; asked again after a failure. */
  let csrfKeyFetch: Promise<string> | null = null
  const csrfKey = (): Promise<string> => {
    csrfKeyFetch ??= store.secret('csrf-hmac', randomBytes(32).toString('base64url')).catch((err: unknown) => {
      csrfKeyFetch = null
      throw err
    })
    return csrfKeyFetch
  }

  /** The CSRF token of a visitor without a session: the cookie's when this server signed it, or a new one set now. */
  const visitorCsrf = async (req: Request, res: Response): Promise<string> => {
    const key = await csrfKey()
    const existing = cookies(req).get(CSRF_COOKIE)
    if (signedByUs(key, existing)) return existing!
    const fresh = signedToken(key)
    res.appendHeader('Set-Cookie', `${CSRF_COOKIE}=${fresh}; Path=/account; HttpOnly; SameSite=Strict${secureAttribute(req)}`)
    return fresh
  }

  const session = async (req: Request): Promise<{ tokenHash: string; userId: number; username: string; csrf: string } | null> => {
    const raw = cookies(req).get(SESSION_COOKIE)
    if (raw === undefined || !/^[A-Za-z0-9_-]{43}$/.test(raw)) return null
    const tokenHash = sha256(raw)
    const found = await store.findSession(tokenHash, Date.now())
    return found === null ? null : { tokenHash, ...found }
  }

  const startSession = async (req: Request, res: Response, userId: number): Promise<void> => {
    const raw = token()
    await store.createSession({ tokenHash: sha256(raw), userId, csrf: token(), expiresAt: Date.now() + ACCOUNT_LIMITS.sessionTtlMs })
    res.appendHeader(
      'Set-Cookie',
      `${SESSION_COOKIE}=${raw}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${ACCOUNT_LIMITS.sessionTtlMs / 1000}${secureAttribute(req)}`,
    )
  }

  /** Form, CSRF, rate limit and input checks shared by login and register; null when answered. */
  const credentials = async (
    req: Request,
    res: Response,
    action: string,
    button: string,
    title: string,
  ): Promise<{ username: string; password: string } | null> => {
    if (!fromOwnPages(req)) {
      crossSite(res, action)
      return null
    }
    const fields = await readForm(req, res)
    if (fields === null) return null
    const cookie = cookies(req).get(CSRF_COOKIE)
    if (!sameToken(fields.get('csrf') ?? undefined, cookie) || !signedByUs(await csrfKey(), cookie)) {
      page(res, 403, 'Form expired', `<p>This form was not issued to you, or it expired. <a href="${action}">Open it again</a>.</p>`)
      return null
    }
    // Counted only now: a post that fails the CSRF check (a cross-site page's) must not use up
    // the attempts of whoever shares the address.
    const wait = Math.ceil(limiter.take(clientAddress(req, trustProxy), Date.now()) / 1000)
    if (wait > 0) {
      res.setHeader('Retry-After', String(wait))
      page(res, 429, 'Too many attempts', `<p>Too many attempts from your address; try again in ${wait} s.</p>`)
      return null
    }
    const username = fields.get('username') ?? ''
    const password = fields.get('password') ?? ''
    const problem = credentialProblem(username, password)
    if (problem !== null) {
      page(
        res,
        400,
        title,
        form(action, fields.get('csrf')!, button, USERNAME.test(username) && username.length <= ACCOUNT_LIMITS.usernameMax ? username : '', problem),
      )
      return null
    }
    return { username, password }
  }

  server.get('/account/', async (req, res) => {
    const s = await session(req)
    if (s === null) return redirect(res, '/account/login')
    page(
      res,
      200,
      `Hello, ${s.username}`,
      `<p>Only you see this page: you are logged in as <strong>${escapeHtml(s.username)}</strong> (user #${s.userId}).</p>
<form method="post" action="/account/logout"><input type="hidden" name="csrf" value="${escapeHtml(s.csrf)}"><button type="submit">Log out</button></form>`,
    )
  })
  server.get('/account', (_req, res) => redirect(res, '/account/'))

  server.get('/account/login', async (req, res) => {
    if ((await session(req)) !== null) return redirect(res, '/account/')
    page(res, 200, 'Log in', `${form('/account/login', await visitorCsrf(req, res), 'Log in')}<p>No account? <a href="/account/register">Register</a>.</p>`)
  })

  server.post('/account/login', async (req, res) => {
    const given = await credentials(req, res, '/account/login', 'Log in', 'Log in')
    if (given === null) return
    const user = await store.findUser(given.username)
    // An unknown name costs the same scrypt as a wrong password: timing does not tell them apart.
    const ok = await verifyPassword(given.password, user?.passwordHash ?? DUMMY_HASH, res)
    if (user === null || !ok)
      return page(res, 401, 'Log in', form('/account/login', cookies(req).get(CSRF_COOKIE)!, 'Log in', given.username, 'Wrong name or password.'))
    await startSession(req, res, user.id)
    redirect(res, '/account/')
  })

  server.get('/account/register', async (req, res) => {
    page(
      res,
      200,
      'Register',
      `${form('/account/register', await visitorCsrf(req, res), 'Register')}<p>Have an account? <a href="/account/login">Log in</a>.</p>`,
    )
  })

  server.post('/account/register', async (req, res) => {
    const given = await credentials(req, res, '/account/register', 'Register', 'Register')
    if (given === null) return
    const id = await store.createUser(given.username, await hashPassword(given.password, res))
    if (id === null)
      return page(res, 409, 'Register', form('/account/register', cookies(req).get(CSRF_COOKIE)!, 'Register', '', `The name ${given.username} is taken.`))
    await startSession(req, res, id)
    redirect(res, '/account/')
  })

  server.post('/account/logout', async (req, res) => {
    if (!fromOwnPages(req)) return crossSite(res, '/account/')
    const fields = await readForm(req, res)
    if (fields === null) return
    const s = await session(req)
    if (s === null) return redirect(res, '/account/login')
    if (!sameToken(fields.get('csrf') ?? undefined, s.csrf))
      return page(res, 403, 'Form expired', '<p>This form was not issued to you. <a href="/account/">Back</a>.</p>')
    await store.deleteSession(s.tokenHash)
    res.appendHeader('Set-Cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0${secureAttribute(req)}`)
    redirect(res, '/account/login')
  })
}

/** Cookies set over HTTPS carry Secure: a browser then never sends them over cleartext HTTP. */
function secureAttribute(req: Request): string {
  return req.secure ? '; Secure' : ''
}
