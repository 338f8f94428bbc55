// Access logs in the two shapes operators feed to their tools: nginx/Apache "combined", and one
// JSON object per line. A record is formatted to a string and handed to a LogFile, which batches
// it; nothing here does I/O.
//
// Values that come from the client (request line, Referer, User-Agent) are escaped as nginx's
// ngx_http_log_escape does (core/log-escape.ts): `"`, `\`, control characters and bytes from 0x7F
// up become `\xHH`, so a hostile header can neither end the quoted field nor start a forged line.
//
// Example:
//   const log = new AccessLog(new LogFile('/var/log/petrel/access.log'), 'combined')
//   log.record({ remoteAddress: '203.0.113.9', method: 'GET', url: '/', httpVersion: '1.1',
//     status: 200, bodyBytes: 612, startedAtMs, endedAtMs: Date.now() })

import type { LogFile } from '../core/log-file.ts'
import { escapeLogValue } from '../core/log-escape.ts'
import { pad2, PerSecondFormat } from '../core/time-format.ts'

export interface AccessLogEntry {
  remoteAddress?: string
  method: string
  /** The request target as sent. */
  url: string
  /** '1.1' (as Request.httpVersion gives it) or 'HTTP/1.1'. */
  httpVersion: string
  status: number
  /** Body bytes sent, without the head (nginx's $body_bytes_sent). */
  bodyBytes: number
  referer?: string
  userAgent?: string
  /** Milliseconds since the epoch; the logged time is the end, as in nginx. */
  startedAtMs: number
  endedAtMs: number
}

export type AccessLogFormat = 'combined' | 'json'

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

const timeLocal = new PerSecondFormat(
  (d) =>
    `${pad2(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())} +0000`,
)

/** `26/Nov/2026:14:03:05 +0000` — nginx's $time_local, always in UTC. */
export function formatTimeLocal(ms: number): string {
  return timeLocal.format(ms)
}

function protocolOf(httpVersion: string): string {
  return httpVersion.startsWith('HTTP/') ? httpVersion : 'HTTP/' + httpVersion
}

function orDash(value: string | undefined): string {
  return value === undefined || value === '' ? '-' : escapeLogValue(value)
}

/** `$remote_addr - - [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"` */
export function formatCombined(entry: AccessLogEntry): string {
  // A request that failed before its line was parsed has no method; nginx logs "-" for it too.
  const request = entry.method === '' ? '-' : escapeLogValue(`${entry.method} ${entry.url} ${protocolOf(entry.httpVersion)}`)
  return (
    `${orDash(entry.remoteAddress)} - - [${formatTimeLocal(entry.endedAtMs)}] "${request}" ` +
    `${entry.status} ${entry.bodyBytes} "${orDash(entry.referer)}" "${orDash(entry.userAgent)}"`
  )
}

/** One JSON object per line; absent values are null. JSON.stringify keeps newlines escaped. */
export function formatJson(entry: AccessLogEntry): string {
  return JSON.stringify({
    time: new Date(entry.endedAtMs).toISOString(),
    remote_addr: entry.remoteAddress ?? null,
    method: entry.method,
    uri: entry.url,
    protocol: protocolOf(entry.httpVersion),
    status: entry.status,
    bytes: entry.bodyBytes,
    referer: entry.referer ?? null,
    user_agent: entry.userAgent ?? null,
    // Microsecond precision at most: finer digits of a float difference are noise.
    duration_ms: Math.round(Math.max(0, entry.endedAtMs - entry.startedAtMs) * 1000) / 1000,
  })
}

/** The JSON format's "lines were lost" line, so a JSON log stays parseable line by line. */
export function jsonDroppedLine(count: number): string {
  return JSON.stringify({ time: new Date().toISOString(), petrel_dropped_lines: count })
}

export class AccessLog {
  readonly file: LogFile
  readonly format: AccessLogFormat
  private readonly formatter: (entry: AccessLogEntry) => string

  constructor(file: LogFile, format: AccessLogFormat = 'combined') {
    this.file = file
    this.format = format
    this.formatter = format === 'json' ? formatJson : formatCombined
  }

  record(entry: AccessLogEntry): void {
    this.file.write(this.formatter(entry))
  }
}
