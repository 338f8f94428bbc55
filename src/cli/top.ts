// `petrel top [ADMIN]`: the dashboard's figures in the terminal, refreshed every second — the
// server's rates and latency, its processes, and the machine as mpstat, vmstat, ifstat and
// netstat would show it. Reads /api/snapshot of a server started with --admin.
//
// A frame fits the screen: the headline (requests/s, latency, connections) is always on the
// first lines, a line keeps only the fields that fit whole, a table only the columns that fit,
// and a section that does not fit is left out, never wrapped. `renderTop` is a pure function of
// a tick and a screen size, so every size can be tested without a terminal.

import { setTimeout as sleep } from 'node:timers/promises'
import type { Tick } from '../monitor/board.ts'
import { parseHostPort } from './address.ts'
import { adminTokenFlags, adminTokenFromFlags } from './admin-flags.ts'
import { errorMessage } from '../core/errors.ts'
import { defineFlags, parseArgs, formatFlags, TIME_HELP, UsageError, type FlagSpec } from './args.ts'

export const TOP_DEFAULT_ADMIN = '127.0.0.1:8081'

export const TOP_FLAGS = defineFlags([
  { name: 'interval', short: 'n', type: 'duration', valueName: 'TIME', min: 100, description: 'refresh period (default 1s)' },
  { name: 'once', type: 'boolean', description: 'print one frame and exit (1 if the server cannot be reached)' },
  ...adminTokenFlags('send Authorization: Bearer TOKEN, for a server started with --admin-token(-file)'),
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
])

const TOP_USAGE = `Usage: petrel top [ADMIN] [flags]

The figures of a server started with --admin, in the terminal, refreshed every second:
requests/s, latency, connections, CPU and memory per process, and the machine (CPU per core,
memory and run queue, interfaces, this server's TCP sockets by state, open descriptors).
ADMIN is the server's --admin HOST:PORT (or its http:// URL); default ${TOP_DEFAULT_ADMIN}
(what \`npm start\` opens). q quits (Ctrl-C too).
${TIME_HELP}

A frame fits the terminal and follows its resizing; when the output is not a terminal it is
80x24, or $COLUMNS x $LINES. The headline comes first; what does not fit is left out.

Flags:
${formatFlags(TOP_FLAGS)}`

/** Characters per line and lines per screen. */
export interface ScreenSize {
  columns: number
  rows: number
}

export const DEFAULT_SCREEN: ScreenSize = { columns: 80, rows: 24 }

/** Switch to the terminal's alternate screen and hide the cursor, as top(1) does; and back. */
const ENTER_SCREEN = '\x1b[?1049h\x1b[?25l'
const LEAVE_SCREEN = '\x1b[?25h\x1b[?1049l'
/** Cursor home; erase to the end of a line; erase below. */
const HOME = '\x1b[H'
const ERASE_LINE = '\x1b[K'
const ERASE_BELOW = '\x1b[J'

/** ADMIN as `HOST:PORT` (the way --admin reads it) or an http:// URL → the admin's base URL. */
export function adminBaseUrl(text: string): URL {
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(text)) {
    let url: URL | null = null
    try {
      url = new URL(text)
    } catch {}
    if (url === null || url.protocol !== 'http:')
      throw new UsageError(
        'PETREL_ERR_CLI_BAD_ARGUMENT',
        `bad value for ADMIN: ${JSON.stringify(text)}; give the server's --admin HOST:PORT, e.g. ${TOP_DEFAULT_ADMIN}, or an http:// URL`,
      )
    return url
  }
  const { host, port } = parseHostPort('ADMIN', text)
  return new URL(`http://${host.includes(':') ? `[${host}]` : host}:${port}/`)
}

export async function topCommand(argv: readonly string[]): Promise<number> {
  const { flags, positionals } = parseArgs(argv, TOP_FLAGS, 'top')
  if (flags.has('help')) {
    console.log(TOP_USAGE)
    return 0
  }
  if (positionals.length > 1)
    throw new UsageError('PETREL_ERR_CLI_BAD_ARGUMENT', `\`petrel top\` takes one ADMIN address, got ${positionals.length}: ${positionals.join(' ')}`)
  const base = adminBaseUrl(positionals[0] ?? TOP_DEFAULT_ADMIN)
  const token = adminTokenFromFlags(flags)
  const headers: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
  const url = new URL('/api/snapshot', base)
  const intervalMs = flags.get('interval') ?? 1000
  const out = process.stdout
  const tty = out.isTTY === true

  if (flags.has('once')) {
    const frame = await readFrame(url, base, headers, Math.max(2000, intervalMs), undefined)
    // A server that cannot be read is an error like any command's: one line on stderr, not a frame.
    if (frame.problem !== null) {
      console.error(frame.problem)
      return 1
    }
    out.write(`${frame.lines(screenSize()).join('\n')}\n`)
    return 0
  }

  const stop = new AbortController()
  let exitCode = 0
  const quit = (code: number): void => {
    exitCode = code
    stop.abort()
  }
  let frame: Frame | null = null
  const draw = (): void => {
    if (frame === null) return
    const lines = frame.lines(screenSize())
    // In place: home, each line over the old one, the rest erased; no newline after the last
    // line, which would scroll a full screen by one.
    out.write(tty ? `${HOME}${lines.join(`${ERASE_LINE}\n`)}${ERASE_LINE}${ERASE_BELOW}` : `${lines.join('\n')}\n\n`)
  }
  const stopKeys = listenForQuit(tty, quit)
  const onSignal = (signal: NodeJS.Signals): void => quit(signal === 'SIGINT' ? 130 : 143)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  if (tty) {
    out.write(ENTER_SCREEN)
    out.on('resize', draw)
  }
  try {
    while (!stop.signal.aborted) {
      frame = await readFrame(url, base, headers, Math.max(2000, intervalMs), stop.signal)
      if (stop.signal.aborted) break
      draw()
      await sleep(intervalMs, undefined, { signal: stop.signal }).catch(() => {})
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    stopKeys()
    if (tty) {
      out.off('resize', draw)
      out.write(LEAVE_SCREEN)
    }
  }
  return exitCode
}

/** The terminal's size; 80x24 (or $COLUMNS x $LINES) when the output is not a terminal. */
function screenSize(): ScreenSize {
  const out = process.stdout
  if (out.isTTY === true) return { columns: out.columns || DEFAULT_SCREEN.columns, rows: out.rows || DEFAULT_SCREEN.rows }
  const env = (name: string, fallback: number): number => {
    const value = Number(process.env[name])
    return Number.isInteger(value) && value > 0 ? value : fallback
  }
  return { columns: env('COLUMNS', DEFAULT_SCREEN.columns), rows: env('LINES', DEFAULT_SCREEN.rows) }
}

/**
 * q (or Ctrl-C, which a raw terminal delivers as a byte) quits. Keys are read from a terminal
 * only when top draws on it too: a terminal whose output goes elsewhere (`petrel top | less`)
 * belongs to the pager. Input that is not a terminal (a pipe) is read as it is.
 */
function listenForQuit(drawsOnTerminal: boolean, quit: (code: number) => void): () => void {
  const stdin = process.stdin
  const terminal = stdin.isTTY === true
  if (terminal && !drawsOnTerminal) return () => {}
  const onData = (chunk: Buffer): void => {
    for (const byte of chunk) if (byte === 0x71 || byte === 0x51 || byte === 0x03) return quit(0)
  }
  if (terminal) stdin.setRawMode(true)
  stdin.on('data', onData)
  stdin.resume()
  return () => {
    stdin.off('data', onData)
    if (terminal) stdin.setRawMode(false)
    stdin.pause()
  }
}

/** One reading of the admin: lines for any screen size, and whether the server answered. */
interface Frame {
  ok: boolean
  /** Why the server could not be read, as one line; null when it was. */
  problem: string | null
  lines(size: ScreenSize): string[]
}

async function readFrame(url: URL, base: URL, headers: Record<string, string>, timeoutMs: number, stop: AbortSignal | undefined): Promise<Frame> {
  let problem: string
  try {
    const timeout = AbortSignal.timeout(timeoutMs)
    const response = await fetch(url, { headers, signal: stop === undefined ? timeout : AbortSignal.any([stop, timeout]) })
    if (response.ok) {
      // response.json() is untyped; the body is the admin listener's snapshot, which the server
      // of this same Petrel writes from the Tick type.
      const tick: Tick = await response.json()
      return { ok: true, problem: null, lines: (size) => renderTop(tick, base.host, size) }
    }
    await response.body?.cancel()
    problem =
      response.status === 401
        ? `${base.host} wants the admin token (401): give --admin-token-file FILE${headers.authorization === undefined ? '' : '; the one given is not it'}`
        : response.status === 421
          ? `${base.host} does not answer to the name ${base.hostname} (421): use its IP address or localhost, or start the server with --admin-host ${base.hostname}`
          : `cannot read ${url.href}: HTTP ${response.status}`
  } catch (err) {
    const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : errorMessage(err)
    problem = `cannot read ${url.href}: ${cause}; is a server running with --admin ${base.host}?`
  }
  const text = `petrel top: ${problem}`
  return { ok: false, problem: text, lines: (size) => wrapWords(text, size.columns).slice(0, size.rows) }
}

/** A message in lines of at most `columns`, broken between words (a word longer than a line is cut). */
function wrapWords(text: string, columns: number): string[] {
  const lines: string[] = []
  for (const paragraph of text.split('\n')) {
    let line = ''
    for (const word of paragraph.split(' ')) {
      if (line !== '' && line.length + 1 + word.length > columns) {
        lines.push(line)
        line = ''
      }
      line = line === '' ? word.slice(0, columns) : `${line} ${word}`
    }
    lines.push(line)
  }
  return lines
}

const n = (value: number, digits = 0): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-'
const mb = (bytes: number): string => n(bytes / 1048576, 1)
const ms = (value: number | null): string => (value === null ? '-' : `${n(value, 2)} ms`)
const rate = (bytesPerS: number): string => (bytesPerS >= 1048576 ? `${n(bytesPerS / 1048576, 1)} MB/s` : `${n(bytesPerS / 1024, 1)} KB/s`)

function uptime(msUp: number): string {
  const s = Math.floor(msUp / 1000)
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`
}

/** The leading fields that fit in `columns`, two spaces apart; a field is never cut. */
export function fitFields(fields: readonly string[], columns: number): string {
  let line = ''
  for (const field of fields) {
    const next = line === '' ? field : `${line}  ${field}`
    if (next.length > columns) break
    line = next
  }
  return line
}

/** A table's lines with the leading columns that fit (first column left-aligned, the rest right); null when not even the first fits. */
export function fitTable(head: readonly string[], rows: readonly string[][], columns: number): string[] | null {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  let used = 0
  let kept = 0
  for (const width of widths) {
    const next = used + (kept === 0 ? 0 : 2) + width
    if (next > columns) break
    used = next
    kept++
  }
  if (kept === 0) return null
  const line = (cells: readonly string[]): string =>
    cells
      .slice(0, kept)
      .map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(head), ...rows.map(line)]
}

/** Lines below the headline. A long table may be cut to the rows that fit, with a line saying how many are left out. */
interface Section {
  lines: string[] | null
  /** What the rows are ("processes"); absent: all of the section or nothing. */
  rowNoun?: string
}

/** One screen of `petrel top`: at most `size.rows` lines of at most `size.columns` characters, the headline first. */
export function renderTop(tick: Tick, origin: string, size: ScreenSize): string[] {
  const { totals: t, rates: r, system: s } = tick
  const { columns, rows } = size
  const oldest = Math.min(...tick.processes.map((p) => p.startedAtMs))
  const headline = [
    [`requests/s ${n(r.requestsPerS)}`, `latency p50 ${ms(r.latencyMs.p50)}`, `p90 ${ms(r.latencyMs.p90)}`, `p99 ${ms(r.latencyMs.p99)}`],
    [
      `connections ${n(t.connections.active)} (${n(t.connections.idle)} idle, ${n(t.connections.http2)} h2 with ${n(t.connections.streams)} streams, ${n(t.connections.websockets)} ws)`,
      `accepted ${n(t.connections.accepted)}`,
      `rejected ${n(t.connections.rejected)}`,
      `requests ${n(t.requests)}`,
    ],
    [
      `2xx ${n(r.responsesPerS[1] ?? 0)}/s`,
      `3xx ${n(r.responsesPerS[2] ?? 0)}/s`,
      `4xx ${n(r.responsesPerS[3] ?? 0)}/s`,
      `5xx ${n(r.responsesPerS[4] ?? 0)}/s`,
      `in ${rate(r.bytesInPerS)}`,
      `out ${rate(r.bytesOutPerS)}`,
    ],
    [
      `server CPU ${n(r.cpuPct)}%`,
      `RSS ${mb(t.memory.rss)} MB`,
      `heap ${mb(t.memory.heapUsed)} MB`,
      `loop p99 ${n(t.eventLoop.delayP99Ms, 2)} ms`,
      `busy ${n(t.eventLoop.utilization * 100)}%`,
      `timers ${n(t.timers)}`,
      `fds ${n(t.fds)}`,
    ],
    [
      'petrel top',
      origin,
      `${new Date(tick.atMs).toISOString().slice(11, 19)} UTC`,
      `up ${Number.isFinite(oldest) ? uptime(tick.atMs - oldest) : '-'}`,
      `${t.processes} process${t.processes === 1 ? '' : 'es'}`,
    ],
  ]
  const out = headline.slice(0, rows).map((fields) => fitFields(fields, columns))
  const tcpRows = Object.entries(s.tcp).flatMap(([port, states]) =>
    Object.entries(states).map(([state, count]) => [port === 'other' ? 'other' : `:${port}`, state, n(count)]),
  )
  const sections: Section[] = [
    {
      rowNoun: 'processes',
      lines: fitTable(
        ['WORKER', 'PID', 'REQ/S', 'CPU', 'RSS MB', 'HEAP MB', 'CONNS', 'IDLE', 'LOOP P99', 'BUSY', 'TIMERS', 'FDS', 'UP'],
        tick.processes.map((p) => [
          p.worker === null ? 'single' : String(p.worker),
          String(p.pid),
          n(p.requestsPerS),
          `${n(p.cpuPct)}%`,
          mb(p.memory.rss),
          mb(p.memory.heapUsed),
          n(p.connections.active),
          n(p.connections.idle),
          n(p.eventLoop.delayP99Ms, 2),
          `${n(p.eventLoop.utilization * 100)}%`,
          n(p.timers),
          n(p.fds),
          uptime(p.atMs - p.startedAtMs),
        ]),
        columns,
      ),
    },
    {
      rowNoun: 'cores',
      lines: fitTable(
        ['CPU (mpstat)', 'USER', 'SYS', 'IOWAIT', 'IDLE'],
        s.cpus.map((c) => [c.name === 'cpu' ? 'all' : c.name, `${n(c.userPct, 1)}%`, `${n(c.systemPct, 1)}%`, `${n(c.iowaitPct, 1)}%`, `${n(c.idlePct, 1)}%`]),
        columns,
      ),
    },
    { rowNoun: 'socket states', lines: fitTable(['TCP (netstat)', 'STATE', 'SOCKETS'], tcpRows, columns) },
    {
      lines: [
        fitFields(
          [
            'memory (vmstat)',
            `total ${n(s.memory.totalKb / 1024)} MB`,
            `available ${n(s.memory.availableKb / 1024)} MB`,
            `swap used ${n((s.memory.swapTotalKb - s.memory.swapFreeKb) / 1024)} MB`,
          ],
          columns,
        ),
        fitFields(
          [
            `load ${s.load.map((l) => n(l, 2)).join(' ')}`,
            `r ${s.running}`,
            `b ${s.blocked}`,
            `cs/s ${n(s.contextSwitchesPerS)}`,
            `in/s ${n(s.interruptsPerS)}`,
            `forks/s ${n(s.forksPerS)}`,
          ],
          columns,
        ),
      ],
    },
    {
      rowNoun: 'interfaces',
      lines: fitTable(
        ['INTERFACE (ifstat)', 'RX', 'TX', 'RX PKT/S', 'TX PKT/S'],
        s.interfaces.map((i) => [i.name, rate(i.rxBytesPerS), rate(i.txBytesPerS), n(i.rxPacketsPerS), n(i.txPacketsPerS)]),
        columns,
      ),
    },
    { lines: [fitFields(['open descriptors (lsof)', ...s.fds.map((f) => `pid ${f.pid}: ${n(f.open)}`)], columns)] },
  ]
  for (const section of sections) {
    const lines = section.lines
    // A blank line before each section; a section whose lines all came out empty says nothing.
    const free = rows - out.length - 1
    if (free <= 0) break
    if (lines === null || lines.every((line) => line === '')) continue
    if (lines.length <= free) {
      out.push('', ...lines)
      continue
    }
    // The head, at least one row and the "more" line: cut the table there, and the screen is full.
    if (section.rowNoun === undefined || free < 3) continue
    const more = fitFields([`+${lines.length - (free - 1)} more ${section.rowNoun}`, '(a taller terminal shows them)'], columns)
    if (more === '') continue
    out.push('', ...lines.slice(0, free - 1), more)
    break
  }
  return out
}
