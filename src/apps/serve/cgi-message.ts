// CGI/1.1's translations (RFC 3875), pure: no processes, no sockets. A URL under /cgi-bin/
// becomes the script's name and PATH_INFO; a request becomes the script's environment (the
// meta-variables); the head a script prints becomes a status, fields and a Location. The gateway
// that runs scripts with them is cgi.ts.

import type { Buffer } from 'node:buffer'
import type { Request } from '../../server/request.ts'
import { escapeLogValue } from '../../core/log-escape.ts'

export const CGI_PREFIX = '/cgi-bin/'

/** Request field names that become HTTP_* meta-variables (names arrive lower-cased). */
const ENV_FIELD_NAME = /^[a-z0-9-]+$/

/** What the URL names: the script and PATH_INFO, or the status that answers the request. */
export type CgiTarget = { name: string; pathInfo: string } | { status: 400 | 404 }

/** Split the percent-encoded path after /cgi-bin/ into the script's name and PATH_INFO. */
export function parseCgiPath(urlPath: string): CgiTarget {
  const rest = urlPath.slice(CGI_PREFIX.length)
  const slash = rest.indexOf('/')
  const first = slash < 0 ? rest : rest.slice(0, slash)
  if (first === '') return { status: 404 }
  let name: string
  try {
    name = decodeURIComponent(first)
  } catch {
    return { status: 400 }
  }
  if (name.includes('/') || name.includes('\\') || name.includes('\0')) return { status: 400 }
  if (name.startsWith('.')) return { status: 404 }
  let pathInfo = ''
  if (slash >= 0) {
    for (const raw of rest.slice(slash + 1).split('/')) {
      let segment: string
      try {
        segment = decodeURIComponent(raw)
      } catch {
        return { status: 400 }
      }
      if (segment.includes('/') || segment.includes('\\') || segment.includes('\0') || segment === '..' || segment === '.') return { status: 400 }
      pathInfo += `/${segment}`
    }
  }
  return { name, pathInfo }
}

/** The parsed head a script printed. */
export interface CgiHead {
  status: number
  reason: string
  /** Whether the script printed a Status field. */
  statusGiven: boolean
  /** [name, value] in the order printed, Status and Location excluded. */
  fields: Array<[string, string]>
  location: string | null
}

/** Parse a script's head (the bytes before its blank line), or say why it is not one. */
export function parseCgiHead(text: string): CgiHead | string {
  const head: CgiHead = { status: 200, reason: '', statusGiven: false, fields: [], location: null }
  for (const line of text.split(/\r?\n/)) {
    if (line === '') continue
    const colon = line.indexOf(':')
    if (colon <= 0) return `malformed header line ${quoted(line.slice(0, 80))}`
    const name = line.slice(0, colon).trim()
    const value = line.slice(colon + 1).trim()
    const lower = name.toLowerCase()
    if (lower === 'status') {
      // 1xx is not a final status: sent as one it would desynchronise the client (RFC 9110 §15.2).
      const m = /^([2-5]\d\d)(?:\s+(.*))?$/.exec(value)
      if (m === null) return `malformed Status ${quoted(value.slice(0, 80))}`
      head.status = Number(m[1])
      head.reason = m[2] ?? ''
      head.statusGiven = true
    } else if (lower === 'location') {
      head.location = value
    } else {
      head.fields.push([name, value])
    }
  }
  // RFC 3875 §6.2.3: a client redirect is a 302 unless the script says otherwise.
  if (head.location !== null && !head.location.startsWith('/') && !head.statusGiven) head.status = 302
  return head
}

/** Where the script's head ends: after the first blank line (LF LF or CRLF CRLF), or null. */
export function headEnd(buf: Buffer): { headLength: number; bodyStart: number } | null {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== 0x0a) continue
    if (buf[i + 1] === 0x0a) return { headLength: i, bodyStart: i + 2 }
    if (buf[i + 1] === 0x0d && buf[i + 2] === 0x0a) return { headLength: i, bodyStart: i + 3 }
  }
  return null
}

/** RFC 3875 §4.1: the meta-variables, and a PATH so that shell scripts find their tools. */
export function metaVariables(
  req: Request,
  name: string,
  pathInfo: string,
  body: Buffer | null,
  server: { serverPort(): number; software: string },
): NodeJS.ProcessEnv {
  const host = req.header('host') ?? ''
  const serverName = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.split(':')[0]!
  const env: NodeJS.ProcessEnv = {
    PATH: '/usr/local/bin:/usr/bin:/bin',
    GATEWAY_INTERFACE: 'CGI/1.1',
    SERVER_SOFTWARE: server.software,
    SERVER_NAME: serverName,
    SERVER_PORT: String(server.serverPort()),
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    REQUEST_METHOD: req.method,
    SCRIPT_NAME: `${CGI_PREFIX}${name}`,
    PATH_INFO: pathInfo,
    QUERY_STRING: req.search,
    REMOTE_ADDR: req.remoteAddress ?? '',
    REMOTE_PORT: req.remotePort === undefined ? '' : String(req.remotePort),
    // Not in RFC 3875, but what scripts look for (Apache and nginx's fastcgi_params set them).
    REQUEST_SCHEME: req.secure ? 'https' : 'http',
  }
  if (req.secure) env.HTTPS = 'on'
  const length = body !== null ? body.length : req.head.contentLength
  if (length >= 0 && (length > 0 || req.method === 'POST')) env.CONTENT_LENGTH = String(length)
  const type = req.header('content-type')
  if (type !== undefined) env.CONTENT_TYPE = type
  for (const [field, value] of Object.entries(req.headers)) {
    // Content-Length and -Type are above; Proxy must never become HTTP_PROXY ("httpoxy").
    if (field === 'content-length' || field === 'content-type' || field === 'proxy') continue
    // Only names of letters, digits and '-' are passed, as Apache and nginx do: `X_Real-IP` and
    // `X.Real.IP` would otherwise arrive as HTTP_X_REAL_IP beside (or over) a proxy's X-Real-IP.
    if (!ENV_FIELD_NAME.test(field)) continue
    env[`HTTP_${field.toUpperCase().replaceAll('-', '_')}`] = value
  }
  return env
}

/** Text a script printed, quoted for a log line. */
export function quoted(text: string): string {
  return `"${escapeLogValue(text)}"`
}

/** The gateway's limits (cgi.ts): here, so that the command line can show them without loading the gateway. */
export const CGI_DEFAULTS = {
  maxProcesses: 16,
  queueLength: 64,
  timeoutMs: 30_000,
  /** Largest head a script may print before its body. */
  maxHeadBytes: 64 * 1024,
  /** Longest internal-redirect chain (a script's local Location that leads to another). */
  maxRedirects: 10,
  /** Seconds a client is told to wait when the queue is full. */
  retryAfterSeconds: 1,
  /**
   * Of each of a script's stdout and stderr, the most bytes in flight between the spawner and
   * the server and not yet handed on (to a client that keeps up, or to the error log). Two pipe
   * reads: one crosses the channel while the next is read.
   */
  outputWindowBytes: 128 * 1024,
} as const
