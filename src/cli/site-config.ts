// The `sites` array of `petrel serve --config FILE`, checked and turned into SiteSettings. Every
// refusal names the JSON path of the value (`sites[1].redirects[0].to`) and what to write instead;
// serve.ts adds the file and turns it into a usage error: exit 2 at start, a refused reload (the
// running sites keep serving) on SIGHUP.

import { statSync } from 'node:fs'
import path from 'node:path'
import { isMountablePrefix, isNormalPath } from '../protocol/http1/target.ts'
import { parseDurationMs } from './args.ts'
import { errorMessage } from '../core/errors.ts'
import { parseProxyRoute, type ProxyRoute } from '../apps/proxy/settings.ts'
import { parseHtpasswd } from '../apps/serve/htpasswd.ts'
import { AUTH_DEFAULTS, realmProblem } from '../apps/serve/auth-limits.ts'
import { readFlagFile } from './tls-flags.ts'
import {
  CORS_DEFAULTS,
  REDIRECT_STATUSES,
  type CorsRule,
  type HeaderRule,
  type RedirectRule,
  type RedirectStatus,
  type RewriteRule,
  type SiteAuth,
  type SiteSettings,
} from '../apps/serve/site-settings.ts'

const SITE_KEYS = [
  'hosts',
  'default',
  'root',
  'list',
  'maxAge',
  'spa',
  'cleanUrls',
  'redirects',
  'rewrites',
  'headers',
  'cors',
  'proxy',
  'cgiBin',
  'auth',
  'compress',
]

/** A refusal of one value: `at` is its JSON path. */
export class SiteConfigError extends Error {
  constructor(at: string, problem: string) {
    super(`${at}: ${problem}`)
  }
}

/** `sites` as read from `file` (JSON.parse's value) → settings; throws SiteConfigError naming the JSON path. */
export function parseSites(value: unknown, file: string): SiteSettings[] {
  const base = path.dirname(path.resolve(file))
  if (!Array.isArray(value) || value.length === 0)
    throw new SiteConfigError('sites', `expected a non-empty array of sites, such as [{"hosts": ["example.test"], "root": "./public"}]`)
  const sites = value.map((site, i) => parseSite(site, `sites[${i}]`, base))
  const seen = new Map<string, string>()
  let defaults = 0
  sites.forEach((site, i) => {
    if (site.default === true) defaults++
    site.hosts.forEach((host, j) => {
      const other = seen.get(host)
      if (other !== undefined) throw new SiteConfigError(`sites[${i}].hosts[${j}]`, `"${host}" is already a host of ${other}; a name belongs to one site`)
      seen.set(host, `sites[${i}]`)
    })
  })
  if (defaults > 1) throw new SiteConfigError(`sites[${sites.findLastIndex((s) => s.default === true)}].default`, 'only one site may be "default": true')
  return sites
}

function parseSite(value: unknown, at: string, base: string): SiteSettings {
  const site = object(value, at, '{"hosts": ["example.test"], "root": "./public"}')
  for (const key of Object.keys(site)) {
    if (!SITE_KEYS.includes(key)) throw new SiteConfigError(`${at}.${key}`, `unknown key; a site takes ${SITE_KEYS.join(', ')}`)
  }
  const hosts = array(site.hosts, `${at}.hosts`).map((h, i) => hostName(h, `${at}.hosts[${i}]`))
  if (hosts.length === 0) throw new SiteConfigError(`${at}.hosts`, 'expected at least one host name, such as ["example.test", "*.example.test"]')
  const root = site.root === undefined ? null : directory(site.root, `${at}.root`, base)
  const spa = site.spa === undefined ? null : relativeFile(site.spa, `${at}.spa`)
  if (spa !== null && root === null) throw new SiteConfigError(`${at}.spa`, 'needs "root": the file is served from the site\'s root')
  const cleanUrls = site.cleanUrls === undefined ? false : boolean(site.cleanUrls, `${at}.cleanUrls`)
  const list = site.list === undefined ? null : boolean(site.list, `${at}.list`)
  const maxAgeSeconds = site.maxAge === undefined ? null : seconds(site.maxAge, `${at}.maxAge`)
  for (const key of ['list', 'maxAge', 'cleanUrls'] as const)
    if (site[key] !== undefined && root === null) throw new SiteConfigError(`${at}.${key}`, 'applies to files: give the site a "root" too')
  return {
    hosts,
    default: site.default === undefined ? null : boolean(site.default, `${at}.default`),
    root,
    list,
    maxAgeSeconds,
    spa,
    cleanUrls,
    redirects: optionalArray(site.redirects, `${at}.redirects`).map((r, i) => redirect(r, `${at}.redirects[${i}]`)),
    rewrites: optionalArray(site.rewrites, `${at}.rewrites`).map((r, i) => rewrite(r, `${at}.rewrites[${i}]`)),
    headers: optionalArray(site.headers, `${at}.headers`).map((r, i) => headerRule(r, `${at}.headers[${i}]`)),
    cors: site.cors === undefined ? null : cors(site.cors, `${at}.cors`),
    proxy: optionalArray(site.proxy, `${at}.proxy`).map((r, i) => proxyRoute(r, `${at}.proxy[${i}]`)),
    cgiBin: site.cgiBin === undefined ? null : directory(site.cgiBin, `${at}.cgiBin`, base),
    auth: site.auth === undefined ? null : auth(site.auth, `${at}.auth`, base, hosts[0]!),
    compress: site.compress === undefined ? null : boolean(site.compress, `${at}.compress`),
  }
}

/**
 * The site's `auth`: the htpasswd file is read and every line checked here, at start and on each
 * reload, so that a bad file stops the start (exit 2) or refuses the reload, naming the file, the
 * line and the user; the realm defaults to the site's first host name.
 */
function auth(value: unknown, at: string, base: string, firstHost: string): SiteAuth {
  const rule = object(value, at, '{"path": "/admin/*", "realm": "admin", "htpasswd": "./users.htpasswd"}')
  keys(rule, at, ['path', 'realm', 'htpasswd'])
  const htpasswdFile = path.resolve(base, string(rule.htpasswd, `${at}.htpasswd`))
  let htpasswd: string
  try {
    htpasswd = readFlagFile('the htpasswd file', htpasswdFile, 'utf8', 'PETREL_ERR_HTPASSWD')
    parseHtpasswd(htpasswd, htpasswdFile)
  } catch (err) {
    throw new SiteConfigError(`${at}.htpasswd`, errorMessage(err))
  }
  const realm = rule.realm === undefined ? firstHost : string(rule.realm, `${at}.realm`)
  const problem = realmProblem(realm)
  if (problem !== null) throw new SiteConfigError(`${at}.realm`, `${JSON.stringify(realm)}: ${problem}`)
  return { path: pattern(rule.path ?? AUTH_DEFAULTS.path, `${at}.path`), realm, htpasswdFile, htpasswd }
}

function redirect(value: unknown, at: string): RedirectRule {
  const rule = object(value, at, '{"from": "/old/*", "to": "/new/:splat", "status": 301}')
  keys(rule, at, ['from', 'to', 'status'])
  const from = pattern(rule.from, `${at}.from`)
  const to = string(rule.to, `${at}.to`)
  // A target is a local path or an absolute http(s) URL: "//host/x" would be read by browsers as another site.
  if (!(to.startsWith('/') && !to.startsWith('//')) && !/^https?:\/\/[^/]/i.test(to))
    throw new SiteConfigError(`${at}.to`, `${JSON.stringify(to)} is neither a path ("/new/:splat") nor an http(s) URL ("https://example.test/:splat")`)
  if (/[\x00-\x20\x7f]/.test(to)) throw new SiteConfigError(`${at}.to`, 'a Location holds no spaces or control characters; percent-encode them')
  // A captured value in the host of an absolute URL would let a request choose where it is sent (an open redirect).
  const authority = /^https?:\/\/([^/]*)/i.exec(to)?.[1] ?? ''
  if (/:[A-Za-z_]/.test(authority))
    throw new SiteConfigError(`${at}.to`, `${JSON.stringify(to)}: a parameter in the host would let the request pick the site it is sent to; name the host`)
  checkNames(from, to, `${at}.to`)
  let status: RedirectStatus = 308
  if (rule.status !== undefined) {
    const known = REDIRECT_STATUSES.find((code) => code === rule.status)
    if (known === undefined)
      throw new SiteConfigError(`${at}.status`, `${JSON.stringify(rule.status)} is not a redirect status; expected one of ${REDIRECT_STATUSES.join(', ')}`)
    status = known
  }
  return { from, to, status }
}

function rewrite(value: unknown, at: string): RewriteRule {
  const rule = object(value, at, '{"from": "/blog/:slug", "to": "/posts/:slug.html"}')
  keys(rule, at, ['from', 'to'])
  const from = pattern(rule.from, `${at}.from`)
  const to = string(rule.to, `${at}.to`)
  if (!to.startsWith('/') || /[\x00-\x20\x7f?#]/.test(to))
    throw new SiteConfigError(
      `${at}.to`,
      `${JSON.stringify(to)}: a rewrite's target is a path that starts with "/", without "?", "#", spaces or control characters`,
    )
  checkNames(from, to, `${at}.to`)
  return { from, to }
}

function headerRule(value: unknown, at: string): HeaderRule {
  const rule = object(value, at, '{"path": "/assets/*", "set": {"Cache-Control": "public, max-age=31536000, immutable"}}')
  keys(rule, at, ['path', 'set'])
  const given = object(rule.set, `${at}.set`, '{"Cache-Control": "no-store"}')
  const set: Record<string, string> = {}
  for (const [name, v] of Object.entries(given)) {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new SiteConfigError(`${at}.set`, `${JSON.stringify(name)} is not a header field name`)
    const lower = name.toLowerCase()
    if (['content-length', 'transfer-encoding', 'connection', 'content-range'].includes(lower))
      throw new SiteConfigError(`${at}.set.${name}`, 'frames the response, which the server does itself; remove it')
    if (typeof v !== 'string' || /[\x00-\x08\x0a-\x1f\x7f]/.test(v))
      throw new SiteConfigError(`${at}.set.${name}`, 'expected a string without control characters')
    set[name] = v
  }
  return { path: pattern(rule.path, `${at}.path`), set }
}

function cors(value: unknown, at: string): CorsRule {
  const rule = object(value, at, '{"path": "/api/*", "origins": ["https://app.example.test"]}')
  keys(rule, at, ['path', 'origins', 'credentials', 'methods', 'headers', 'maxAge'])
  const origins = array(rule.origins, `${at}.origins`).map((o, i) => {
    const text = string(o, `${at}.origins[${i}]`)
    if (text !== '*' && !/^https?:\/\/[^/?#\s]+$/i.test(text))
      throw new SiteConfigError(
        `${at}.origins[${i}]`,
        `${JSON.stringify(text)} is not an origin; write scheme://host[:port] without a path, such as "https://app.example.test", or "*"`,
      )
    return text === '*' ? text : text.toLowerCase()
  })
  if (origins.length === 0) throw new SiteConfigError(`${at}.origins`, 'expected at least one origin')
  const credentials = rule.credentials === undefined ? false : boolean(rule.credentials, `${at}.credentials`)
  // Browsers refuse a credentialed response whose Access-Control-Allow-Origin is "*" (Fetch standard, CORS check).
  if (credentials && origins.includes('*'))
    throw new SiteConfigError(`${at}.origins`, 'with "credentials": true, name the origins: browsers refuse "*" with credentials')
  const token = (v: unknown, where: string): string => {
    const text = string(v, where)
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(text)) throw new SiteConfigError(where, `${JSON.stringify(text)} is not a token`)
    return text
  }
  const methods =
    rule.methods === undefined ? [...CORS_DEFAULTS.methods] : array(rule.methods, `${at}.methods`).map((m, i) => token(m, `${at}.methods[${i}]`).toUpperCase())
  const headers = rule.headers === undefined ? [] : array(rule.headers, `${at}.headers`).map((h, i) => token(h, `${at}.headers[${i}]`).toLowerCase())
  return {
    path: pattern(rule.path ?? '/*', `${at}.path`),
    origins,
    credentials,
    methods,
    headers,
    maxAgeSeconds: rule.maxAge === undefined ? CORS_DEFAULTS.maxAgeSeconds : seconds(rule.maxAge, `${at}.maxAge`),
  }
}

function proxyRoute(value: unknown, at: string): ProxyRoute {
  const rule = object(value, at, '{"path": "/api/", "upstreams": ["http://127.0.0.1:3000"]}')
  keys(rule, at, ['path', 'upstreams'])
  const prefix = string(rule.path, `${at}.path`)
  if (!isMountablePrefix(prefix))
    throw new SiteConfigError(
      `${at}.path`,
      `${JSON.stringify(prefix)}: a prefix is a normalised path of letters, digits, "-", ".", "_", "~" and "/", such as "/api/"`,
    )
  const upstreams = array(rule.upstreams, `${at}.upstreams`).map((u, i) => string(u, `${at}.upstreams[${i}]`))
  if (upstreams.length === 0) throw new SiteConfigError(`${at}.upstreams`, 'expected at least one upstream, such as ["http://127.0.0.1:3000"]')
  try {
    return parseProxyRoute(`${prefix}=${upstreams.join(',')}`)
  } catch (err) {
    throw new SiteConfigError(`${at}.upstreams`, errorMessage(err))
  }
}

/**
 * A rule's path pattern: a normalised path whose segments are literal, `:name` (one segment) or a
 * last `*` (the rest, named `:splat` in a target).
 */
function pattern(value: unknown, at: string): string {
  const text = string(value, at)
  if (!text.startsWith('/')) throw new SiteConfigError(at, `${JSON.stringify(text)}: a pattern starts with "/", such as "/blog/:slug" or "/old/*"`)
  const segments = text.split('/').slice(1)
  const names = new Set<string>()
  segments.forEach((segment, i) => {
    if (segment === '*' && i !== segments.length - 1) throw new SiteConfigError(at, `${JSON.stringify(text)}: "*" must be the last segment`)
    if (segment.startsWith(':')) {
      const name = segment.slice(1)
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name))
        throw new SiteConfigError(at, `${JSON.stringify(segment)}: a parameter is ":" and a name of letters, digits and "_"`)
      if (name === 'splat' || names.has(name)) throw new SiteConfigError(at, `${JSON.stringify(segment)} is named twice (":splat" is the "*")`)
      names.add(name)
    }
  })
  // Requests are matched on their normalised path: a pattern in another spelling would match nothing.
  const literal = segments.map((s) => (s === '*' || s.startsWith(':') ? 'x' : s)).join('/')
  if (!isNormalPath(`/${literal}`))
    throw new SiteConfigError(
      at,
      `${JSON.stringify(text)} is not a normalised path (no "." or ".." segments, no "//", unreserved characters not percent-encoded)`,
    )
  return text
}

/** Every `:name` a target uses is captured by its pattern. */
function checkNames(from: string, to: string, at: string): void {
  const captured = new Set(from.split('/').flatMap((s) => (s === '*' ? ['splat'] : s.startsWith(':') ? [s.slice(1)] : [])))
  for (const match of to.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)) {
    // "https://host:8443/" has a port, not a parameter.
    if (/^\d/.test(match[1]!)) continue
    if (!captured.has(match[1]!))
      throw new SiteConfigError(
        at,
        `":${match[1]}" is not captured by "from" (${from}); it captures ${[...captured].map((n) => `:${n}`).join(', ') || 'nothing'}`,
      )
  }
}

function hostName(value: unknown, at: string): string {
  let name = string(value, at).toLowerCase()
  if (name.endsWith('.')) name = name.slice(0, -1)
  const bare = name.startsWith('*.') ? name.slice(2) : name
  // A name of labels, an IPv4 address, or a bracketed IPv6 address; no port: the port is ignored.
  if (!/^(?:[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/.test(bare) && !/^\[[0-9a-f:.]+\]$/.test(name))
    throw new SiteConfigError(
      at,
      `${JSON.stringify(value)} is not a host name; write "example.test", "*.example.test" (one label in front) or an IP address, without a port`,
    )
  return name
}

function directory(value: unknown, at: string, base: string): string {
  const dir = path.resolve(base, string(value, at))
  let isDir = false
  try {
    isDir = statSync(dir).isDirectory()
  } catch {}
  if (!isDir) throw new SiteConfigError(at, `${dir} is not a directory; give an existing directory (relative to the config file)`)
  return dir
}

function relativeFile(value: unknown, at: string): string {
  const text = string(value, at)
  const normal = path.posix.normalize(`/${text}`)
  if (text.includes('\\') || text.includes('\0') || normal.split('/').some((s) => s === '..') || normal.endsWith('/'))
    throw new SiteConfigError(at, `${JSON.stringify(text)}: expected a file path inside the root, such as "index.html"`)
  return normal
}

function seconds(value: unknown, at: string): number {
  let ms: number | null = null
  if (typeof value === 'string') ms = parseDurationMs(value)
  else if (typeof value === 'number' && Number.isFinite(value) && value >= 0) ms = value * 1000
  if (ms === null) throw new SiteConfigError(at, `${JSON.stringify(value)}: expected a number of seconds or a duration such as "1h"`)
  return Math.floor(ms / 1000)
}

function object(value: unknown, at: string, example: string): Record<string, unknown> {
  if (!isObject(value)) throw new SiteConfigError(at, `expected an object such as ${example}`)
  return value
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function keys(rule: Record<string, unknown>, at: string, allowed: readonly string[]): void {
  for (const key of Object.keys(rule)) if (!allowed.includes(key)) throw new SiteConfigError(`${at}.${key}`, `unknown key; expected ${allowed.join(', ')}`)
}

function array(value: unknown, at: string): unknown[] {
  if (!Array.isArray(value)) throw new SiteConfigError(at, 'expected an array')
  return value
}

function optionalArray(value: unknown, at: string): unknown[] {
  return value === undefined ? [] : array(value, at)
}

function string(value: unknown, at: string): string {
  if (typeof value !== 'string' || value === '')
    throw new SiteConfigError(at, value === undefined ? 'missing; expected a non-empty string' : `${JSON.stringify(value)}: expected a non-empty string`)
  return value
}

function boolean(value: unknown, at: string): boolean {
  if (typeof value !== 'boolean') throw new SiteConfigError(at, `${JSON.stringify(value)}: expected true or false`)
  return value
}
