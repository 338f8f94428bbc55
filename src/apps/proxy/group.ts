// An upstream group (one `--proxy PREFIX=URL,…`, as nginx's upstream block): the balancer that
// picks the upstream tried first (round-robin, or least connections), passive health (an upstream
// whose connection failed is skipped for failTimeoutMs) and active health checks (GET healthPath
// every healthIntervalMs when a path is given).

import type { Buffer } from 'node:buffer'
import type { ProxyRoute, ProxySettings } from './settings.ts'
import { connectTimer, openUpstreamSocket, readyEvent, Upstream, upstreamResponseParser } from './upstream.ts'

export class UpstreamGroup {
  readonly prefix: string
  /** Starts log lines about this group. */
  readonly label: string
  readonly upstreams: Upstream[]
  private readonly settings: ProxySettings
  private next = 0
  private healthTimer: NodeJS.Timeout | null = null
  /** A round of checks is under way: the next tick does not start another beside it. */
  private checking = false

  constructor(route: ProxyRoute, settings: ProxySettings) {
    this.prefix = route.prefix
    this.label = `proxy ${route.prefix}`
    this.upstreams = route.upstreams.map((u) => new Upstream(u))
    this.settings = settings
    if (settings.healthPath !== null && settings.healthIntervalMs > 0) {
      this.healthTimer = setInterval(() => void this.checkHealth(), settings.healthIntervalMs)
      this.healthTimer.unref()
    }
  }

  /**
   * The upstreams to try: all of them, or the healthy ones when some are out and some are not.
   * Nothing is allocated while all are healthy.
   */
  pool(): readonly Upstream[] {
    const now = Date.now()
    const all = this.upstreams
    for (let i = 0; i < all.length; i++) {
      if (!all[i]!.healthy(now)) {
        const healthy = all.filter((u) => u.healthy(now))
        return healthy.length > 0 ? healthy : all
      }
    }
    return all
  }

  /** The balancer's pick in `pool`: tried first, then the ones after it, in order. */
  pick(pool: readonly Upstream[]): number {
    if (this.settings.balance !== 'least-conn') return this.next++ % pool.length
    let least = Infinity
    let tied = 0
    for (const u of pool) {
      if (u.active < least) {
        least = u.active
        tied = 1
      } else if (u.active === least) tied++
    }
    // Ties go round-robin, so equal upstreams share the load.
    let skip = this.next++ % tied
    for (let i = 0; i < pool.length; i++) {
      if (pool[i]!.active === least && skip-- === 0) return i
    }
    return 0
  }

  /** One round of active checks (none without a healthPath, or while the last round still runs). */
  async checkHealth(): Promise<void> {
    const path = this.settings.healthPath
    if (path === null || this.checking) return
    this.checking = true
    await Promise.all(
      this.upstreams.map(async (u) => {
        const ok = await probe(u, path, this.settings)
        const wasOut = !u.healthy(Date.now())
        u.down = !ok
        // A passing check also lifts a passive mark: the upstream answers again.
        if (ok) u.failedUntil = 0
        if (ok === !wasOut) return
        this.settings.log(`proxy ${this.prefix}: upstream ${u.origin} is ${ok ? 'up again' : `down (GET ${path} failed)`}`)
      }),
    )
    this.checking = false
  }

  close(): void {
    if (this.healthTimer !== null) clearInterval(this.healthTimer)
    for (const u of this.upstreams) u.closeIdle()
  }
}

/**
 * One GET to the health path on a fresh connection (TLS for an https upstream, its certificate
 * checked as for a request: an upstream whose certificate is refused is down): true for a 2xx, read as strictly as an
 * exchange's response, within healthTimeoutMs from the start (a timer, not socket.setTimeout,
 * so an upstream that trickles bytes cannot hold a check open).
 */
function probe(u: Upstream, path: string, settings: ProxySettings): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = openUpstreamSocket(u, settings)
    const parser = upstreamResponseParser(settings)
    const timer = connectTimer(settings.healthTimeoutMs, () => done(false))
    const done = (ok: boolean): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(ok)
    }
    socket.on('error', () => done(false))
    socket.on('close', () => done(parser.finish() && parser.status >= 200 && parser.status < 300))
    socket.on('data', (chunk: Buffer) => {
      parser.execute(chunk, 0, chunk.length)
      if (parser.errorCode !== null) done(false)
      else if (parser.complete) done(parser.status >= 200 && parser.status < 300)
    })
    socket.on(readyEvent(u), () => socket.write(`GET ${path} HTTP/1.1\r\nHost: ${u.hostField}\r\nConnection: close\r\nUser-Agent: petrel-health-check\r\n\r\n`))
  })
}
