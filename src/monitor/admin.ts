// The admin listener (`petrel serve --admin HOST:PORT`): a server of its own, on its own
// address, so nothing of it is reachable through the public listener. It serves
//
//   /             the dashboard (assets/dashboard.*, charts by uPlot)
//   /events       Server-Sent Events: one Tick (board.ts) a second
//   /api/snapshot the latest Tick as JSON (for `petrel top`)
//   /metrics      Prometheus text
//
// A tick asks for fresh figures (`refresh`: a single process snapshots itself; a master has them
// from its workers) and reads the machine. Ticks are taken only while someone looks — once a
// second while a dashboard is open, and per /api/snapshot request — because reading /proc (every
// TCP socket of the machine, among others) costs the serving loop a millisecond or more, which
// would show in the tail latency of a server nobody is watching.

import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import { createServer } from '../server/server.ts'
import type { Response } from '../server/response.ts'
import type { MetricsBoard, Tick } from './board.ts'
import { prometheusText, PROMETHEUS_CONTENT_TYPE } from './prometheus.ts'
import { SystemSampler } from './system.ts'

export const ADMIN_DEFAULTS = {
  intervalMs: 1000,
  /** Dashboards (SSE streams) open at once; one more gets 503. */
  maxStreams: 32,
} as const

export interface AdminOptions {
  host: string
  port: number
  board: MetricsBoard
  /** The server's processes (master and workers, or the one process): for sockets and descriptors. */
  pids: () => number[]
  /** Bring the board up to date (called before each tick and before /metrics). */
  refresh?: () => void
  intervalMs?: number
  maxStreams?: number
}

export interface Admin {
  address: AddressInfo
  /** The latest tick (a fresh one if none was taken yet). */
  latest(): Tick
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

export async function startAdmin(options: AdminOptions): Promise<Admin> {
  const assets = loadAssets()
  const sampler = new SystemSampler()
  const refresh = options.refresh ?? (() => {})
  const maxStreams = options.maxStreams ?? ADMIN_DEFAULTS.maxStreams
  const streams = new Set<Response>()
  const intervalMs = options.intervalMs ?? ADMIN_DEFAULTS.intervalMs
  let latest: Tick | null = null
  const takeTick = (): Tick => {
    refresh()
    latest = options.board.tick(sampler.sample(options.pids()))
    return latest
  }
  /** A tick whose rates cover about the last interval: after a long quiet, two readings apart. */
  const freshTick = async (): Promise<Tick> => {
    if (latest === null || Date.now() - latest.atMs > 2 * intervalMs) {
      takeTick()
      await new Promise((resolve) => setTimeout(resolve, Math.min(500, intervalMs)))
    }
    return takeTick()
  }
  let timer: NodeJS.Timeout | null = null
  const broadcast = (): void => {
    const event = `data: ${JSON.stringify(takeTick())}\n\n`
    // A dashboard that stops reading is cut off by the server's send timeout (timeouts.sendMs).
    for (const res of streams) if (!res.finished) res.write(event)
  }

  const server = createServer({ timeouts: { keepAliveMs: 30_000 } })
  for (const [path, { type, body }] of assets) {
    server.get(path, (_req, res) => {
      res.setHeader('Content-Type', type)
      res.setHeader('Cache-Control', 'no-cache')
      res.end(body)
    })
  }
  server.get('/metrics', (_req, res) => {
    refresh()
    res.setHeader('Content-Type', PROMETHEUS_CONTENT_TYPE)
    res.end(prometheusText(options.board.totals(), options.board.processes()))
  })
  server.get('/api/snapshot', async (_req, res) => {
    res.setHeader('Cache-Control', 'no-store')
    res.json(await freshTick())
  })
  server.get('/events', async (_req, res) => {
    if (streams.size >= maxStreams) {
      res.setHeader('Retry-After', '5')
      return res.status(503).end(`503: ${maxStreams} dashboards are open already\n`)
    }
    const first = await freshTick()
    if (res.closed) return
    // Checked again: others may have opened while this one waited for its first tick.
    if (streams.size >= maxStreams) {
      res.setHeader('Retry-After', '5')
      return res.status(503).end(`503: ${maxStreams} dashboards are open already\n`)
    }
    res.setHeader('Content-Type', 'text/event-stream')
    res.setHeader('Cache-Control', 'no-store')
    // A dashboard that reconnects waits 2 s.
    res.write(`retry: 2000\ndata: ${JSON.stringify(first)}\n\n`)
    streams.add(res)
    timer ??= setInterval(broadcast, intervalMs)
    res.signal.addEventListener('abort', () => {
      streams.delete(res)
      if (streams.size === 0 && timer !== null) {
        clearInterval(timer)
        timer = null
      }
    }, { once: true })
  })

  const address = await server.listen({ host: options.host, port: options.port })
  return {
    address,
    latest: () => latest ?? takeTick(),
    close: async () => {
      if (timer !== null) clearInterval(timer)
      for (const res of streams) res.abort()
      streams.clear()
      await server.close()
    },
  }
}
