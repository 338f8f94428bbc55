// The admin listener (`petrel serve --admin HOST:PORT`): a server of its own, on its own
// address, so nothing of it is reachable through the public listener. It serves
//
//   /             the dashboard (assets/dashboard.*, charts by uPlot)
//   /events       Server-Sent Events: the history first, then one Tick (board.ts) a second
//   /api/snapshot the latest Tick as JSON (for `petrel top`)
//   /metrics      Prometheus text
//
// Every request passes the Host check (421) and, with a token, the data paths need it (401):
// see access.ts. The dashboard's files hold nothing of the server and need no token; the page
// asks for the token and sends it with its own requests (assets/dashboard.js).
//
// Once a second the admin brings the board up to date (`refresh`: a single process snapshots
// itself; a master has its workers' reports) and keeps the second as a point of the history, a
// ring of the last five minutes, so that a page opened now draws them at once. The machine's
// figures (every TCP socket of the machine from /proc, among others) cost the serving loop a
// millisecond or more: they are read only while someone looks — once a second while a dashboard
// is open, and per /api/snapshot request. The history's machine-CPU line reads /proc/stat alone.

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { isIPv4, type AddressInfo } from 'node:net'
import type { TlsOptions } from '../server/tls.ts'
import { ERRORS } from '../core/errors.ts'
import { createServer, type Handler } from '../server/server.ts'
import type { Request } from '../server/request.ts'
import type { Response } from '../server/response.ts'
import { AdminToken, Credentials, HostRule } from './access.ts'
import type { MetricsBoard, Second, Tick } from './board.ts'
import { HistoryRing, type HistoryPoint } from './history.ts'
import { prometheusText, PROMETHEUS_CONTENT_TYPE } from './prometheus.ts'
import { CpuMeter, machineBusyPct, SystemSampler, type SystemSnapshot } from './system.ts'

export const ADMIN_DEFAULTS = {
  intervalMs: 1000,
  /** Dashboards (SSE streams) open at once; one more gets 503. */
  maxStreams: 32,
  /** Seconds of history kept for a newly opened dashboard: five minutes. */
  historyPoints: 300,
} as const

/** Where the admin listens and who may read it: what `petrel serve --admin …` sets. */
export interface AdminSettings {
  host: string
  port: number
  /** Host names to answer to besides IP literals, localhost and `host` (a DNS name, a reverse proxy's). */
  allowedHosts?: string[]
  /** The bearer token the data paths need; absent: whoever reaches the address may read them. */
  token?: string
  /** Serve the admin listener over HTTPS. */
  tls?: TlsOptions
}

export interface AdminOptions extends AdminSettings {
  board: MetricsBoard
  /** The server's processes (master and workers, or the one process): for sockets and descriptors. */
  pids: () => number[]
  /** Bring the board up to date (called once a second and before /metrics). */
  refresh?: () => void
  /** Start-up warnings (an open listener off loopback), one line each. */
  log?: (line: string) => void
  intervalMs?: number
  maxStreams?: number
  historyPoints?: number
}

export interface Admin {
  address: AddressInfo
  close(): Promise<void>
}

const requireFromHere = createRequire(import.meta.url)
const ASSETS = new URL('./assets/', import.meta.url)

interface Asset {
  type: string
  body: Buffer
}

function loadAssets(): Map<string, Asset> {
  const asset = (type: string, path: string | URL): Asset => ({ type, body: readFileSync(path) })
  return new Map([
    ['/', asset('text/html; charset=utf-8', new URL('dashboard.html', ASSETS))],
    ['/dashboard.js', asset('text/javascript; charset=utf-8', new URL('dashboard.js', ASSETS))],
    ['/dashboard.css', asset('text/css; charset=utf-8', new URL('dashboard.css', ASSETS))],
    ['/vendor/uPlot.iife.min.js', asset('text/javascript; charset=utf-8', requireFromHere.resolve('uplot/dist/uPlot.iife.min.js'))],
    ['/vendor/uPlot.min.css', asset('text/css; charset=utf-8', requireFromHere.resolve('uplot/dist/uPlot.min.css'))],
  ])
}

/** 127.0.0.0/8 and ::1 (also as an IPv4-mapped IPv6 address). */
export function isLoopbackAddress(address: string): boolean {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address
  return (isIPv4(v4) && v4.startsWith('127.')) || address === '::1'
}

/** One second as the charts draw it. */
function pointOf(second: Second, machineCpuPct: number): HistoryPoint {
  const { rates, totals } = second
  return {
    atMs: second.atMs,
    requestsPerS: rates.requestsPerS,
    clientErrorsPerS: rates.responsesPerS[3] ?? 0,
    serverErrorsPerS: rates.responsesPerS[4] ?? 0,
    latencyP50Ms: rates.latencyMs.p50,
    latencyP90Ms: rates.latencyMs.p90,
    latencyP99Ms: rates.latencyMs.p99,
    connectionsActive: totals.connections.active,
    connectionsIdle: totals.connections.idle,
    serverCpuPct: rates.cpuPct,
    machineCpuPct,
    rssBytes: totals.memory.rss,
    heapUsedBytes: totals.memory.heapUsed,
  }
}

function plain(res: Response, status: number, text: string): void {
  res.status(status)
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.setHeader('Cache-Control', 'no-store')
  res.end(`${status} ${text}\n`)
}

export async function startAdmin(options: AdminOptions): Promise<Admin> {
  const assets = loadAssets()
  const sampler = new SystemSampler()
  const machineCpu = new CpuMeter()
  const refresh = options.refresh ?? (() => {})
  const maxStreams = options.maxStreams ?? ADMIN_DEFAULTS.maxStreams
  const intervalMs = options.intervalMs ?? ADMIN_DEFAULTS.intervalMs
  const history = new HistoryRing<HistoryPoint>(options.historyPoints ?? ADMIN_DEFAULTS.historyPoints)
  const hosts = new HostRule([options.host, ...(options.allowedHosts ?? [])])
  const token = options.token === undefined ? null : new AdminToken(options.token)
  const streams = new Set<Response>()

  /** The latest second with its point; the latest whole tick while dashboards are open. */
  let latestSecond: Second & { point: HistoryPoint }
  let latestTick: Tick | null = null
  const takeSecond = (): void => {
    refresh()
    const second = options.board.second()
    const point = pointOf(second, machineBusyPct(machineCpu.sample()))
    history.push(point)
    latestSecond = { ...second, point }
  }
  const everySecond = (): void => {
    takeSecond()
    if (streams.size === 0) {
      latestTick = null
      return
    }
    latestTick = { ...latestSecond, system: sampler.sample(options.pids()) }
    const event = `data: ${JSON.stringify(latestTick)}\n\n`
    // A dashboard that stops reading is cut off by the server's send timeout (timeouts.sendMs).
    for (const res of streams) if (!res.finished) res.write(event)
  }
  /** The machine now, with rates over about the last interval: after a long quiet, two readings apart. */
  const freshSystem = async (): Promise<SystemSnapshot> => {
    if (Date.now() - sampler.lastSampleAtMs > 2 * intervalMs) {
      sampler.sample(options.pids())
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, intervalMs)))
    }
    return sampler.sample(options.pids())
  }
  /** While dashboards are open the machine is sampled every second already: share that reading. */
  const currentTick = async (): Promise<Tick> => latestTick ?? { ...latestSecond, system: await freshSystem() }
  takeSecond()
  const timer = setInterval(everySecond, intervalMs)
  timer.unref()

  const tooManyStreams = (res: Response): void => {
    res.setHeader('Retry-After', '5')
    plain(res, 503, `Service Unavailable: ${maxStreams} dashboards are open already`)
  }
  const events: Handler = async (req, res) => {
    if (streams.size >= maxStreams) return tooManyStreams(res)
    const startStream = (): void => {
      res.setHeader('Content-Type', 'text/event-stream')
      res.setHeader('Cache-Control', 'no-store')
    }
    if (req.method === 'HEAD') {
      startStream()
      return res.end()
    }
    const first = await currentTick()
    if (res.closed) return
    // Checked again: others may have opened while this one waited for its first tick.
    if (streams.size >= maxStreams) return tooManyStreams(res)
    startStream()
    // The history first, so a new page draws the last minutes at once; a dashboard that
    // reconnects waits 2 s.
    res.write(`retry: 2000\nevent: history\ndata: ${JSON.stringify({ points: history.toArray() })}\n\ndata: ${JSON.stringify(first)}\n\n`)
    streams.add(res)
    res.signal.addEventListener('abort', () => streams.delete(res), { once: true })
  }
  const snapshot: Handler = async (_req, res) => {
    res.setHeader('Cache-Control', 'no-store')
    res.json(await currentTick())
  }
  const metrics: Handler = (_req, res) => {
    refresh()
    res.setHeader('Content-Type', PROMETHEUS_CONTENT_TYPE)
    res.end(prometheusText(options.board.totals(), options.board.processes()))
  }
  /** Path → handler, and whether it needs the token (the dashboard's files do not: they hold no figures). */
  const routes = new Map<string, { handler: Handler; data: boolean }>([
    ['/events', { handler: events, data: true }],
    ['/api/snapshot', { handler: snapshot, data: true }],
    ['/metrics', { handler: metrics, data: true }],
  ])
  for (const [path, { type, body }] of assets) {
    routes.set(path, {
      data: false,
      handler: (_req, res) => {
        res.setHeader('Content-Type', type)
        res.setHeader('Cache-Control', 'no-cache')
        res.end(body)
      },
    })
  }

  /** Every request comes here, whatever its method and target, so that none escapes the checks. */
  const entry = (req: Request, res: Response): void | Promise<void> => {
    if (!hosts.allows(req.header('host'))) return plain(res, 421, `Misdirected Request: ${ERRORS.PETREL_ERR_ADMIN_MISDIRECTED.message}`)
    const route = routes.get(req.path)
    if (route === undefined) return plain(res, 404, `Not Found: ${req.path}`)
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD')
      return plain(res, 405, `Method Not Allowed: ${req.method}; the admin listener only reads`)
    }
    if (route.data && token !== null) {
      const credentials = token.check(req.header('authorization'))
      if (credentials !== Credentials.VALID) {
        // RFC 6750 §3: no error code when no credentials came, invalid_token when they were wrong.
        res.setHeader(
          'WWW-Authenticate',
          credentials === Credentials.WRONG ? 'Bearer realm="petrel admin", error="invalid_token"' : 'Bearer realm="petrel admin"',
        )
        return plain(res, 401, `Unauthorized: ${credentials === Credentials.WRONG ? 'wrong token; ' : ''}${ERRORS.PETREL_ERR_ADMIN_UNAUTHORIZED.message}`)
      }
    }
    return route.handler(req, res)
  }
  const server = createServer({ timeouts: { keepAliveMs: 30_000 }, ...(options.tls === undefined ? {} : { tls: options.tls }) })
  // The mount takes every path that starts with "/", ahead of any route; the fallback the rest
  // (an asterisk-form OPTIONS * has no "/").
  server.mount('/', entry)
  server.fallback(entry)

  let address: AddressInfo
  try {
    address = await server.listen({ host: options.host, port: options.port })
  } catch (err) {
    clearInterval(timer)
    throw err
  }
  if (token === null && !isLoopbackAddress(address.address)) {
    options.log?.(
      `warning: the admin listener on ${options.host}:${address.port} is not on loopback and has no token: whoever reaches it reads this server's figures; give --admin-token-file FILE, or bind it to 127.0.0.1`,
    )
  }
  return {
    address,
    close: async () => {
      clearInterval(timer)
      for (const res of streams) res.abort()
      streams.clear()
      await server.close()
    },
  }
}
