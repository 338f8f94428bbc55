// Sites (virtual hosts) of `petrel serve --config FILE`: the request's Host picks a site, and the
// site's rules answer it in a fixed order (docs/sites.md): redirects, auth, headers and CORS,
// rewrites, proxy, CGI, files (clean URLs), SPA fallback. Settings are checked in site-settings.ts; this file
// is what runs per request.

import { Buffer } from 'node:buffer'
import { stat } from 'node:fs/promises'
import type { Handler } from '../../server/server.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { answerBody } from '../../server/answer.ts'
import { normalizePath } from '../../protocol/http1/target.ts'
import { CGI_PREFIX } from './cgi-message.ts'
import { resolveUrlPath } from './static.ts'
import type { CorsRule, SiteSettings } from './site-settings.ts'
import type { BasicAuth } from './basic-auth.ts'

/** One segment of a compiled pattern: literal text, one captured segment, or the captured rest. */
const SegmentKind = { LITERAL: 0, PARAM: 1, SPLAT: 2 } as const
type SegmentKind = (typeof SegmentKind)[keyof typeof SegmentKind]

interface Segment {
  kind: SegmentKind
  /** The literal text, or the parameter's name ("splat" for "*"). */
  text: string
}

/** "/blog/:slug" compiled; match() walks the path with indexOf, no regex and no split. */
export class PathPattern {
  private readonly segments: Segment[]
  readonly names: string[]
  /** [":name", index of its value], longest names first, so ":slug" is not taken for ":s" followed by "lug". */
  private readonly fillOrder: Array<readonly [string, number]>

  constructor(pattern: string) {
    this.segments = pattern
      .split('/')
      .slice(1)
      .map((s) =>
        s === '*'
          ? { kind: SegmentKind.SPLAT, text: 'splat' }
          : s.startsWith(':')
            ? { kind: SegmentKind.PARAM, text: s.slice(1) }
            : { kind: SegmentKind.LITERAL, text: s },
      )
    this.names = this.segments.filter((s) => s.kind !== SegmentKind.LITERAL).map((s) => s.text)
    this.fillOrder = this.names.map((name, i) => [`:${name}`, i] as const).sort((a, b) => b[0].length - a[0].length)
  }

  /** Whether `path` matches; the captured values (still percent-encoded, as in the path) are pushed onto `values`. */
  match(path: string, values: string[] | null): boolean {
    const segments = this.segments
    let start = 1
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i]!
      if (segment.kind === SegmentKind.SPLAT) {
        if (start > path.length) return false
        values?.push(path.slice(start))
        return true
      }
      if (start > path.length) return false
      let end = path.indexOf('/', start)
      if (end < 0) end = path.length
      if (segment.kind === SegmentKind.LITERAL) {
        if (end - start !== segment.text.length || !path.startsWith(segment.text, start)) return false
      } else {
        if (end === start) return false
        values?.push(path.slice(start, end))
      }
      start = end + 1
    }
    return start === path.length + 1
  }

  /** `target` with each ":name" replaced by its captured value. */
  fill(target: string, values: readonly string[]): string {
    let out = target
    for (const [name, i] of this.fillOrder) out = out.replaceAll(name, values[i]!)
    return out
  }
}

/** Host names compiled to bytes: matched against the request's Host field where it lies, without a string. */
class HostMatcher {
  private readonly exact: Buffer[]
  /** ".example.test" for "*.example.test". */
  private readonly suffixes: Buffer[]

  constructor(hosts: readonly string[]) {
    this.exact = hosts.filter((h) => !h.startsWith('*.')).map((h) => Buffer.from(h, 'latin1'))
    this.suffixes = hosts.filter((h) => h.startsWith('*.')).map((h) => Buffer.from(h.slice(1), 'latin1'))
  }

  /** Whether buf[start, end) (a host without port or trailing dot) is one of the names, ignoring ASCII case. */
  matches(buf: Uint8Array, start: number, end: number): boolean {
    const length = end - start
    for (let i = 0; i < this.exact.length; i++) {
      const name = this.exact[i]!
      if (name.length === length && equalsIgnoringCase(buf, start, name)) return true
    }
    for (let i = 0; i < this.suffixes.length; i++) {
      const suffix = this.suffixes[i]!
      // One label in front, as for certificates (RFC 6125 6.4.3): "a.example.test", not "a.b.example.test".
      if (length <= suffix.length || !equalsIgnoringCase(buf, end - suffix.length, suffix)) continue
      if (!hasDot(buf, start, end - suffix.length)) return true
    }
    return false
  }
}

function hasDot(buf: Uint8Array, start: number, end: number): boolean {
  for (let p = start; p < end; p++) if (buf[p] === 0x2e) return true
  return false
}

function equalsIgnoringCase(buf: Uint8Array, start: number, lower: Buffer): boolean {
  for (let k = 0; k < lower.length; k++) {
    let c = buf[start + k]!
    if (c >= 0x41 && c <= 0x5a) c += 0x20
    if (c !== lower[k]) return false
  }
  return true
}

/** What a site needs from the server around it: the handlers made for it (one proxy, one CGI gateway per site). */
export interface SiteParts {
  files: Handler | null
  cgi: Handler | null
  /** The proxy's groups by prefix, longest first, with the handler for each. */
  proxy: Array<{ prefix: string; handle: Handler }>
  /** The site's HTTP Basic authentication, or null: a site without `auth` pays nothing for it. */
  auth: BasicAuth | null
}

class CompiledSite {
  readonly hosts: HostMatcher
  readonly settings: SiteSettings
  readonly redirects: Array<{ pattern: PathPattern; to: string; status: number }>
  readonly rewrites: Array<{ pattern: PathPattern; to: string }>
  readonly headers: Array<{ pattern: PathPattern; set: Array<[string, string]> }>
  readonly cors: { pattern: PathPattern; rule: CorsRule; methods: string; headers: string } | null
  readonly parts: SiteParts

  constructor(settings: SiteSettings, parts: SiteParts) {
    this.settings = settings
    this.hosts = new HostMatcher(settings.hosts)
    this.redirects = settings.redirects.map((r) => ({ pattern: new PathPattern(r.from), to: r.to, status: r.status }))
    this.rewrites = settings.rewrites.map((r) => ({ pattern: new PathPattern(r.from), to: r.to }))
    this.headers = settings.headers.map((r) => ({ pattern: new PathPattern(r.path), set: Object.entries(r.set) }))
    const cors = settings.cors
    this.cors = cors === null ? null : { pattern: new PathPattern(cors.path), rule: cors, methods: cors.methods.join(', '), headers: cors.headers.join(', ') }
    this.parts = { ...parts, proxy: [...parts.proxy].sort((a, b) => b.prefix.length - a.prefix.length) }
  }
}

/**
 * The handler that answers every request of a server with sites: the site whose hosts name the
 * request's Host, else the default site (`"default": true`, or the first), answers it.
 * `makeParts` gives each site its file server, CGI gateway and proxy.
 */
export function siteHandler(settings: readonly SiteSettings[], makeParts: (site: SiteSettings) => SiteParts): Handler {
  const sites = settings.map((s) => new CompiledSite(s, makeParts(s)))
  // The site that says "default": true; else the first, unless it says "default": false.
  const fallback = sites.find((s) => s.settings.default === true) ?? (sites[0]?.settings.default === false ? null : (sites[0] ?? null))
  return (req, res) => {
    const site = siteFor(sites, req) ?? fallback
    if (site === null) {
      res.status(421).end(answerBody(421, 'this server has no site for the Host of the request'))
      return
    }
    return answerSite(site, req, res)
  }
}

/** The site whose hosts name the request's host (port and a trailing dot left out), or null. */
function siteFor(sites: readonly CompiledSite[], req: Request): CompiledSite | null {
  const head = req.head
  const start = head.hostStart
  if (start < 0) return null
  const buf = head.buf
  let end = head.hostEnd
  // The port: after the last ":" outside an IPv6 literal's brackets.
  for (let p = end - 1; p > start; p--) {
    const c = buf[p]!
    if (c === 0x3a) {
      end = p
      break
    }
    if (c < 0x30 || c > 0x39) break
  }
  if (end > start && buf[end - 1] === 0x2e) end--
  for (let i = 0; i < sites.length; i++) if (sites[i]!.hosts.matches(buf, start, end)) return sites[i]!
  return null
}

/**
 * Captured values of the rule being tried: one array for every request, emptied before each use
 * (nothing between a match and the use of its values waits).
 */
const captured: string[] = []

function answerSite(site: CompiledSite, req: Request, res: Response): void | Promise<void> {
  const path = req.path
  const values = captured
  for (const rule of site.redirects) {
    values.length = 0
    if (!rule.pattern.match(path, values)) continue
    let location = rule.pattern.fill(rule.to, values)
    // One leading slash only: "//evil.example/" would be a protocol-relative URL (an open redirect).
    if (location.startsWith('//')) location = `/${location.replace(/^\/+/, '')}`
    const search = req.search
    if (search !== '' && !location.includes('?')) location += `?${search}`
    res.setHeader('Location', location)
    res.status(rule.status).end()
    return
  }
  const auth = site.parts.auth
  if (auth === null) return answerAuthorised(site, req, res)
  // A CORS preflight never carries credentials (the Fetch standard forbids them), so behind auth
  // it could only ever get 401 and the browser would refuse the real request: an allowed origin's
  // preflight is answered here, telling nothing but the CORS rule. Anything else goes to auth.
  if (site.cors !== null && req.method === 'OPTIONS' && req.header('access-control-request-method') !== undefined && site.cors.pattern.match(path, null)) {
    setHeaderRules(site, path, res)
    if (answerCors(site.cors, req, res)) return
  }
  const allowed = auth.check(req, res)
  if (allowed === true) return answerAuthorised(site, req, res)
  if (allowed === false) return
  // The password is being checked on the thread pool; a closure only on this path, which costs a hash anyway.
  return allowed.then((ok) => (ok ? answerAuthorised(site, req, res) : undefined))
}

/** The rules after auth: headers and CORS, rewrites, then the proxy, CGI, files and SPA steps. */
function answerAuthorised(site: CompiledSite, req: Request, res: Response): void | Promise<void> {
  const path = req.path
  const values = captured
  setHeaderRules(site, path, res)
  if (site.cors !== null && site.cors.pattern.match(path, null) && answerCors(site.cors, req, res)) return
  for (const rule of site.rewrites) {
    values.length = 0
    if (!rule.pattern.match(path, values)) continue
    // The result is normalised as a request's path is: a ".." in a captured value cannot climb
    // above "/" (refused), and the file server refuses encoded slashes left in a segment.
    const filled = Buffer.from(rule.pattern.fill(rule.to, values), 'latin1')
    const normal = normalizePath(filled, 0, filled.length)
    if (typeof normal === 'string') {
      res.status(400).end(answerBody(400, 'the rewritten path climbs above "/" or is malformed'))
      return
    }
    req.rewrite(normal.toString('latin1'))
    // A rewrite into the protected paths is checked too: "/open/*" → "/admin/:splat" must not
    // serve /admin's files without a password. (Credentials already checked are remembered.)
    const auth = site.parts.auth
    if (auth !== null) {
      const allowed = auth.check(req, res)
      if (allowed === false) return
      if (allowed !== true) return allowed.then((ok) => (ok ? answerFromParts(site, req, res, true) : undefined))
    }
    return answerFromParts(site, req, res, true)
  }
  return answerFromParts(site, req, res, false)
}

/** The fields of every header rule whose path matches (later rules over earlier ones). */
function setHeaderRules(site: CompiledSite, path: string, res: Response): void {
  for (const rule of site.headers) {
    if (!rule.pattern.match(path, null)) continue
    for (const [name, value] of rule.set) res.setHeader(name, value)
  }
}

/** The CORS fields of an allowed origin; true when the request was a preflight, answered here (204). */
function answerCors(cors: NonNullable<CompiledSite['cors']>, req: Request, res: Response): boolean {
  const origin = req.header('origin')
  if (origin === undefined) return false
  const rule = cors.rule
  const any = rule.origins[0] === '*' && rule.origins.length === 1
  if (!any && !rule.origins.includes(origin.toLowerCase())) return false
  res.setHeader('Access-Control-Allow-Origin', any ? '*' : origin)
  // The answer differs by Origin: a cache must not give one origin's answer to another.
  if (!any) res.appendHeader('Vary', 'Origin')
  if (rule.credentials) res.setHeader('Access-Control-Allow-Credentials', 'true')
  const asked = req.header('access-control-request-method')
  if (req.method !== 'OPTIONS' || asked === undefined) return false
  res.setHeader('Access-Control-Allow-Methods', cors.methods)
  const askedHeaders = req.header('access-control-request-headers')
  // Without a configured list, the headers the preflight names are allowed (as Caddy's and the cors package's default).
  const headers = cors.headers !== '' ? cors.headers : askedHeaders
  if (headers !== undefined && headers !== '') res.setHeader('Access-Control-Allow-Headers', headers)
  res.setHeader('Access-Control-Max-Age', rule.maxAgeSeconds)
  res.status(204).end()
  return true
}

/**
 * The proxy, CGI, files and SPA steps; `rewritten`: a rewrite rule chose the path, which the
 * clean-URL redirect then leaves alone. Synchronous unless the file system must be asked.
 */
function answerFromParts(site: CompiledSite, req: Request, res: Response, rewritten: boolean): void | Promise<void> {
  const parts = site.parts
  const path = req.path
  for (const proxy of parts.proxy) if (path.startsWith(proxy.prefix)) return proxy.handle(req, res)
  if (parts.cgi !== null && path.startsWith(CGI_PREFIX)) return parts.cgi(req, res)
  const files = parts.files
  const root = site.settings.root
  if (files === null || root === null) {
    res.status(404).end(answerBody(404, 'this site serves no files'))
    return
  }
  const settings = site.settings
  const readOnly = req.method === 'GET' || req.method === 'HEAD'
  if (readOnly && (settings.cleanUrls || settings.spa !== null)) {
    const last = path.slice(path.lastIndexOf('/') + 1)
    if (settings.cleanUrls && !rewritten && last.endsWith('.html')) {
      // The clean URL is the one to link to: /about.html → /about, /docs/index.html → /docs/.
      const clean = last === 'index.html' ? path.slice(0, -last.length) : path.slice(0, -'.html'.length)
      const search = req.search
      res.setHeader('Location', search === '' ? clean : `${clean}?${search}`)
      res.status(308).end()
      return
    }
    if (last !== '' && !last.includes('.')) return answerExtensionless(settings, root, files, req, res)
  }
  return files(req, res)
}

/** An extension-less path: NAME.html with clean URLs, else the SPA's file when nothing is there, else the path itself. */
async function answerExtensionless(settings: SiteSettings, root: string, files: Handler, req: Request, res: Response): Promise<void> {
  const path = req.path
  if (settings.cleanUrls && (await isFile(root, `${path}.html`))) {
    req.rewrite(`${path}.html`)
  } else if (settings.spa !== null && acceptsHtml(req) && !(await exists(root, path))) {
    req.rewrite(settings.spa)
  }
  return files(req, res)
}

async function isFile(root: string, urlPath: string): Promise<boolean> {
  const resolved = resolveUrlPath(root, urlPath)
  if (!('file' in resolved)) return false
  try {
    return (await stat(resolved.file)).isFile()
  } catch {
    return false
  }
}

async function exists(root: string, urlPath: string): Promise<boolean> {
  const resolved = resolveUrlPath(root, urlPath)
  // A path the file server refuses (400, or a hidden dotfile) is answered by it, not by the SPA.
  if (!('file' in resolved)) return true
  try {
    await stat(resolved.file)
    return true
  } catch {
    return false
  }
}

/** Whether Accept names text/html: a browser's page navigation does; fetch(), scripts and images do not. */
function acceptsHtml(req: Request): boolean {
  const accept = req.header('accept')
  return accept !== undefined && accept.toLowerCase().includes('text/html')
}
