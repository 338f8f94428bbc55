// The error log, in nginx's error_log shape:
//   2026/11/26 14:03:05 [warn] 1234#0: message
// date and time (UTC here, so lines from several hosts sort together), level, pid and thread
// (always 0: one loop per process). Messages below the configured level cost one comparison.
//
// Example:
//   const log = new ErrorLog(new LogFile('/var/log/petrel/error.log'), 'warn')
//   log.warn('upstream is slow')
//   log.error(err)   // with its stack, unless it is a known condition (see describeError)

import { PetrelError } from './errors.ts'
import type { LogFile } from './log-file.ts'
import { pad2, PerSecondFormat } from './time-format.ts'

export type ErrorLogLevel = 'debug' | 'info' | 'warn' | 'error'

const LEVEL_RANK = { debug: 0, info: 1, warn: 2, error: 3 } as const satisfies Record<ErrorLogLevel, number>

export interface ErrorLogOptions {
  /** Process id in each line. Default: process.pid. */
  pid?: number
  /** Clock in epoch milliseconds. Default: Date.now. */
  now?: () => number
}

const errorTime = new PerSecondFormat(
  (d) =>
    `${d.getUTCFullYear()}/${pad2(d.getUTCMonth() + 1)}/${pad2(d.getUTCDate())} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`,
)

/** `2026/11/26 14:03:05`, UTC. */
export function formatErrorTime(ms: number): string {
  return errorTime.format(ms)
}

/**
 * Control characters in a message (CR, LF, ESC …, DEL and the C1 controls U+0080–U+009F, which
 * some terminals take as ESC sequences) become `\xHH`, so that text that came from a client cannot
 * forge a log line or drive a terminal. Tabs are kept, and so is other non-ASCII text.
 */
export function escapeMessage(message: string): string {
  return message.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => '\\x' + c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0'))
}

/**
 * The text logged for an Error. A PetrelError answered with its own HTTP status (an upstream that
 * failed: 502) is a known condition, not a bug, and its message says what to do: it is one line,
 * `[CODE] message` — a stack would only show where Petrel noticed it. Anything else is logged with
 * its stack (name, message, frames), then its cause's, if any.
 */
export function describeError(err: Error): string {
  if (err instanceof PetrelError && err.status >= 400) return `[${err.code}] ${err.message}`
  let text = err.stack ?? `${err.name}: ${err.message}`
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && !text.includes(code)) text = `[${code}] ${text}`
  if (err.cause instanceof Error) text += '\nCaused by: ' + describeError(err.cause)
  return text
}

/** describeError() as a log shows it: each line escaped (an error's message may quote a client). */
export function escapedError(err: Error): string {
  return describeError(err).split('\n').map(escapeMessage).join('\n')
}

export function formatErrorLine(timeMs: number, level: ErrorLogLevel, pid: number, message: string): string {
  return `${formatErrorTime(timeMs)} [${level}] ${pid}#0: ${message}`
}

export class ErrorLog {
  readonly file: LogFile
  readonly level: ErrorLogLevel
  private readonly threshold: number
  private readonly pid: number
  private readonly now: () => number

  constructor(file: LogFile, level: ErrorLogLevel = 'error', options: ErrorLogOptions = {}) {
    this.file = file
    this.level = level
    this.threshold = LEVEL_RANK[level]
    this.pid = options.pid ?? process.pid
    this.now = options.now ?? Date.now
  }

  /** True when messages of this level are written; lets a caller skip building a costly message. */
  isEnabled(level: ErrorLogLevel): boolean {
    return LEVEL_RANK[level] >= this.threshold
  }

  debug(message: string): void {
    if (this.threshold <= LEVEL_RANK.debug) this.write('debug', escapeMessage(message))
  }

  info(message: string): void {
    if (this.threshold <= LEVEL_RANK.info) this.write('info', escapeMessage(message))
  }

  warn(message: string): void {
    if (this.threshold <= LEVEL_RANK.warn) this.write('warn', escapeMessage(message))
  }

  /**
   * An Error is logged as describeError says: with its stack, which spans several lines by design,
   * unless it is a known condition. `context` (e.g. the request, `GET /x`) goes first.
   */
  error(message: string | Error, context?: string): void {
    const text = typeof message === 'string' ? escapeMessage(message) : escapedError(message)
    this.write('error', context === undefined ? text : `${escapeMessage(context)}: ${text}`)
  }

  private write(level: ErrorLogLevel, message: string): void {
    this.file.write(formatErrorLine(this.now(), level, this.pid, message))
  }
}
