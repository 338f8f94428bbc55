// The settings of one site of `petrel serve --config FILE` (docs/sites.md): plain data, which
// crosses to worker processes as it is. cli/site-config.ts reads them from the file and checks
// them; sites.ts serves them.

import type { ProxyRoute } from '../proxy/settings.ts'

/** Status codes a redirect rule may answer with. */
export const REDIRECT_STATUSES = [301, 302, 303, 307, 308] as const
export type RedirectStatus = (typeof REDIRECT_STATUSES)[number]

/** CORS defaults: the methods and the preflight cache time answered when the site names none. */
export const CORS_DEFAULTS = { methods: ['GET', 'HEAD', 'POST'], maxAgeSeconds: 600 } as const

export interface RedirectRule {
  from: string
  to: string
  status: RedirectStatus
}

export interface RewriteRule {
  from: string
  to: string
}

export interface HeaderRule {
  path: string
  /** Field name → value, set on every response whose path matches. */
  set: Record<string, string>
}

export interface CorsRule {
  path: string
  /** Origins answered ("https://app.example.test"), or ["*"] for any (not with credentials). */
  origins: string[]
  credentials: boolean
  methods: string[]
  /** Request header names a preflight may ask for; empty: those the preflight names are echoed. */
  headers: string[]
  maxAgeSeconds: number
}

/** HTTP Basic authentication of a site's paths (basic-auth.ts), checked after redirects and before every other rule. */
export interface SiteAuth {
  /** A pattern as the rules' ("/admin/*" covers /admin too); "/*" is the whole site. */
  path: string
  realm: string
  /** The htpasswd file's absolute name, for messages. */
  htpasswdFile: string
  /** Its text, read and checked by the command line at start and on reload (a worker may not be able to read the file). */
  htpasswd: string
}

/** One site: what `SiteSettings` JSON holds, with paths resolved against the config file's directory. */
export interface SiteSettings {
  /** Lower-case names without a trailing dot; "*.example.test" matches exactly one label in front. */
  hosts: string[]
  /** true: the site for unknown hosts; null (not given): the first site is, unless it says false (then 421). */
  default: boolean | null
  root: string | null
  list: boolean | null
  maxAgeSeconds: number | null
  /** A file under root served (200) for GET/HEAD of extension-less paths with no file, to HTML clients. */
  spa: string | null
  cleanUrls: boolean
  redirects: RedirectRule[]
  rewrites: RewriteRule[]
  headers: HeaderRule[]
  cors: CorsRule | null
  proxy: ProxyRoute[]
  cgiBin: string | null
  auth: SiteAuth | null
  /**
   * On-the-fly compression of the site's files, CGI and proxied responses (as --compress does for
   * a single site); null (not given): as --compress says.
   */
  compress: boolean | null
}
