// `petrel proxy`: a forward proxy (the book's ch. 4 squid): clients send absolute-form requests
// (`GET http://host/path HTTP/1.1`) and CONNECT host:port for tunnels (TLS). It goes only where
// the allow-list says — by default nowhere — so it is never an open proxy. Requests are relayed
// by the reverse proxy's Relay and Exchange (exchange.ts: keep-alive per destination, streaming
// both ways, hop-by-hop fields dropped, 502/504), and a CONNECT ends in the same Tunnel as an
// Upgrade (tunnel.ts); names are resolved once per `dnsTtlMs` and cached.

import { Buffer } from 'node:buffer'
import net from 'node:net'
import { lookup } from 'node:dns/promises'
import { PetrelError } from '../../core/errors.ts'
import { createServer, type HttpServer } from '../../server/server.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { Relay } from './exchange.ts'
import { InvalidOptionError } from '../../core/option-error.ts'
import { nonNegative, proxySettings, type ProxyOptions, type ProxySettings } from './settings.ts'
import { closeTunnels, Tunnel } from './tunnel.ts'
import { connectTimer, Upstream } from './upstream.ts'

/** Nothing from the destination yet when a CONNECT tunnel starts. */
const EMPTY = Buffer.alloc(0)

export const FORWARD_DEFAULTS = {
  host: '127.0.0.1',
  port: 3128,
  dnsTtlMs: 60_000,
  /** Destinations whose idle connections are kept at once; the least recently used go first. */
  maxDestinations: 256,
  /** A tunnel with no bytes either way for this long is closed. */
  tunnelIdleMs: 300_000,
} as const

/** "host:port", "*.example.com:443", "host:*"; a bare host means port 80 and 443. */
export interface AllowRule {
  host: string
  /** Matches subdomains too ("*.example.com"). */
  wildcard: boolean
  /** null: any port. */
  ports: number[] | null
}

export function parseAllowRule(text: string): AllowRule {
  const colon = text.lastIndexOf(':')
  const hasPort = colon > 0 && !text.endsWith(']') && /^(\d+|\*)$/.test(text.slice(colon + 1))
  let host = (hasPort ? text.slice(0, colon) : text).toLowerCase().replace(/^\[(.*)\]$/, '$1')
  const portText = hasPort ? text.slice(colon + 1) : null
  const wildcard = host.startsWith('*.')
  if (wildcard) host = host.slice(2)
  if (host === '' || !/^[a-z0-9.:-]+$/.test(host)) throw new InvalidOptionError(`${JSON.stringify(text)}: expected HOST[:PORT], *.DOMAIN[:PORT] or HOST:*`)
  const port = portText === null || portText === '*' ? null : Number(portText)
  if (port !== null && (port < 1 || port > 65535)) throw new InvalidOptionError(`${JSON.stringify(text)}: port out of range`)
  return { host, wildcard, ports: portText === '*' ? null : port === null ? [80, 443] : [port] }
}

export function allowed(rules: readonly AllowRule[], host: string, port: number): boolean {
  const h = host
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
  return rules.some((r) => (r.ports === null || r.ports.includes(port)) && (h === r.host || (r.wildcard && h.endsWith(`.${r.host}`))))
}

/** Names resolved once per TTL (with /etc/hosts, as the system resolver does); failures cached briefly. */
export class DnsCache {
  private readonly entries = new Map<string, { address: string; until: number } | { error: Error; until: number }>()
  private readonly ttlMs: number

  constructor(ttlMs: number) {
    this.ttlMs = ttlMs
  }

  async resolve(host: string): Promise<string> {
    if (net.isIP(host) !== 0) return host
    const now = Date.now()
    const hit = this.entries.get(host)
    if (hit !== undefined && hit.until > now) {
      if ('error' in hit) throw hit.error
      return hit.address
    }
    if (this.entries.size >= 10_000) this.entries.delete(this.entries.keys().next().value!)
    try {
      const { address } = await lookup(host)
      this.entries.set(host, { address, until: now + this.ttlMs })
      return address
    } catch (err) {
      const error = new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `cannot resolve ${host}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      this.entries.set(host, { error, until: now + Math.min(this.ttlMs, 5_000) })
      throw error
    }
  }
}

export interface ForwardProxyOptions extends Omit<ProxyOptions, 'balance' | 'healthPath' | 'healthIntervalMs' | 'healthTimeoutMs'> {
  allow: readonly AllowRule[]
  dnsTtlMs?: number
  tunnelIdleMs?: number
  /** A graceful stop (`close('quit')`) lets requests and tunnels run this long, then cuts them (default timeouts.shutdownMs). */
  shutdownMs?: number
}

export class ForwardProxy {
  readonly server: HttpServer
  private readonly rules: readonly AllowRule[]
  private readonly settings: ProxySettings
  private readonly dns: DnsCache
  private readonly tunnelIdleMs: number
  /** Upstreams by "address:port", most recently used last. */
  private readonly destinations = new Map<string, Upstream>()

  constructor(options: ForwardProxyOptions) {
    this.rules = options.allow
    this.settings = proxySettings({ ...options, healthIntervalMs: 0 })
    this.dns = new DnsCache(nonNegative('dnsTtlMs', options.dnsTtlMs, FORWARD_DEFAULTS.dnsTtlMs))
    this.tunnelIdleMs = nonNegative('tunnelIdleMs', options.tunnelIdleMs, FORWARD_DEFAULTS.tunnelIdleMs)
    this.server = createServer(options.shutdownMs === undefined ? {} : { timeouts: { shutdownMs: options.shutdownMs } })
    this.server.fallback((req, res) => (req.method === 'CONNECT' ? this.tunnel(req, res) : this.relay(req, res)))
  }

  /**
   * 'stop' cuts every connection and tunnel at once. 'quit' stops accepting, lets the requests in
   * flight finish and the tunnels run for up to the server's timeouts.shutdownMs, then cuts what
   * is left, as `petrel serve` does on SIGQUIT. A tunnel has left HTTP, but the listener's close
   * still waits for its socket, so the close resolves when the last tunnel ends or is cut.
   */
  async close(how: 'quit' | 'stop' = 'stop'): Promise<void> {
    let cut: NodeJS.Timeout | null = null
    if (how === 'stop') closeTunnels(this.settings.tunnels)
    else {
      cut = setTimeout(closeTunnels, this.server.timeouts.shutdownMs, this.settings.tunnels)
      cut.unref()
    }
    for (const u of this.destinations.values()) u.closeIdle()
    await this.server.close({ destroy: how === 'stop' })
    if (cut !== null) clearTimeout(cut)
    closeTunnels(this.settings.tunnels)
    // Last: a tunnel's idle timeout runs on these timers while it may still be open.
    this.settings.timers.close()
  }

  private forbid(what: string): never {
    this.settings.log(`proxy: ${what}: not in the allow-list`)
    throw new PetrelError('PETREL_ERR_PROXY_FORBIDDEN', `${what} is not in this proxy's allow-list`)
  }

  private destination(address: string, port: number): Upstream {
    const key = `${address}:${port}`
    let u = this.destinations.get(key)
    if (u !== undefined) {
      this.destinations.delete(key)
    } else {
      u = new Upstream(`http://${net.isIPv6(address) ? `[${address}]` : address}:${port}`)
      if (this.destinations.size >= FORWARD_DEFAULTS.maxDestinations) {
        const [oldestKey, oldest] = this.destinations.entries().next().value!
        oldest.closeIdle()
        this.destinations.delete(oldestKey)
      }
    }
    this.destinations.set(key, u)
    return u
  }

  /** An absolute-form request: relayed to the origin in origin-form. */
  private async relay(req: Request, res: Response): Promise<void> {
    let url: URL
    try {
      url = new URL(req.url)
    } catch {
      res.status(400).end('400 Bad Request: a proxy request needs an absolute URL (GET http://host/path)\n')
      return
    }
    if (url.protocol !== 'http:') {
      res.status(400).end(`400 Bad Request: this proxy relays http:// only; use CONNECT for ${url.protocol}//\n`)
      return
    }
    const port = url.port === '' ? 80 : Number(url.port)
    if (!allowed(this.rules, url.hostname, port)) return this.forbid(`${url.hostname}:${port}`)
    const address = await this.dns.resolve(url.hostname.replace(/^\[(.*)\]$/, '$1'))
    const upstream = this.destination(address, port)
    // The origin gets origin-form and the URL's own Host (RFC 9112 §3.2.2), whatever Host the client sent.
    // One destination: a stale keep-alive connection is the one failure worth a second try.
    new Relay(this.settings, req, res, [upstream], 0, { target: `${url.pathname}${url.search}`, host: url.host, label: 'proxy' }).start()
  }

  /** CONNECT host:port: a TCP tunnel, after the allow-list and a connection that succeeded. */
  private async tunnel(req: Request, res: Response): Promise<void> {
    const target = req.url
    const colon = target.lastIndexOf(':')
    const host = target.slice(0, colon).replace(/^\[(.*)\]$/, '$1')
    const port = Number(target.slice(colon + 1))
    if (colon <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
      res.status(400).end('400 Bad Request: CONNECT needs host:port\n')
      return
    }
    if (!allowed(this.rules, host, port)) return this.forbid(`${host}:${port}`)
    const address = await this.dns.resolve(host)
    const remote = await new Promise<net.Socket>((resolve, reject) => {
      const socket = net.connect({ host: address, port, noDelay: true })
      const timer = connectTimer(this.settings.connectTimeoutMs, () => {
        socket.destroy()
        reject(new PetrelError('PETREL_ERR_UPSTREAM_TIMEOUT', `no connection to ${host}:${port} within ${this.settings.connectTimeoutMs} ms`))
      })
      socket.once('connect', () => {
        clearTimeout(timer)
        resolve(socket)
      })
      socket.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        reject(new PetrelError('PETREL_ERR_UPSTREAM_FAILED', `${host}:${port}: ${err.code ?? err.message}`))
      })
    })
    if (res.closed) return void remote.destroy()
    const { socket, head } = res.detach()
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    new Tunnel(socket, remote, head, EMPTY, { idleTimeoutMs: this.tunnelIdleMs, tunnels: this.settings.tunnels, upstreamReadsItself: false })
  }
}
