// The reverse proxy (`petrel serve --proxy /api/=http://a:3000,http://b:3001`): requests under a
// prefix go to an upstream group, as nginx's proxy_pass with an upstream block does. The rooms:
//
// - settings.ts: defaults, options and their checks, the --proxy route syntax (all the CLI loads).
// - group.ts: the upstream group — balancing (round-robin, or least connections: fewest exchanges
//   in flight), passive health (an upstream whose connection fails is skipped for `failTimeoutMs`)
//   and active health checks (only when a `healthPath` is given: `GET healthPath` every
//   `healthIntervalMs`; an upstream that does not answer 2xx is down until it does). When every
//   upstream is out, they are all tried anyway (better a 502 than none).
// - upstream.ts: one upstream and its connections (TCP, or TLS for an https:// upstream, pooled
//   alike) — kept alive, at most `keepAlive` idle ones,
//   each closed after `idleTimeoutMs` idle; reused only after a response that allows it. The
//   upstream is read into pooled 64 KiB buffers (nginx's proxy_buffers) that go back to the pool
//   when the client's socket has taken their bytes, so a large response makes no garbage and
//   memory per exchange is bounded by the sockets' buffers, whatever the size of the response.
// - upstream-tls.ts: the client side of TLS to https upstreams — the trusted CAs (the system's
//   and `upstreamCa`), SNI from the host name, and a sentence for each refused certificate.
// - fields.ts: the field rules — hop-by-hop fields (Connection and the fields it names,
//   Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade, Proxy-*) are dropped both ways;
//   X-Forwarded-For (appended), X-Forwarded-Proto, X-Forwarded-Host and Forwarded are added; Host
//   is passed through; request fields whose names hold `_` are dropped unless
//   `underscoresInHeaders` (nginx's default); an Upgrade keeps only the `upgradeProtocols`
//   (websocket by default: h2c and the rest are dropped, so the request goes up as plain HTTP).
// - exchange.ts: a request's way through the group's upstreams (retries) and one attempt on one
//   connection, bodies streamed both ways with backpressure; 502 and 504.
// - tunnel.ts: when the upstream answers 101 to an allowed Upgrade, both connections leave HTTP and
//   are joined by the same tunnel as the forward proxy's CONNECT.

import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import { Relay } from './exchange.ts'
import { UpstreamGroup } from './group.ts'
import { proxySettings, type ProxyOptions, type ProxyRoute, type ProxySettings } from './settings.ts'
import { closeTunnels } from './tunnel.ts'
import { insecureWarning, upstreamTlsContext } from './upstream-tls.ts'

export class ReverseProxy {
  readonly groups: UpstreamGroup[]
  private readonly settings: ProxySettings

  constructor(routes: readonly ProxyRoute[], options: ProxyOptions = {}) {
    this.settings = proxySettings(options)
    this.groups = routes.map((r) => new UpstreamGroup(r, this.settings))
    if (this.groups.some((g) => g.upstreams.some((u) => u.secure))) {
      // Made now rather than on the first request, which would wait for it.
      upstreamTlsContext(this.settings)
      if (this.settings.upstreamTlsInsecure) this.settings.log(insecureWarning('proxy'))
    }
  }

  /** Relay the request to the group; when no upstream could answer, the response fails with 502 or 504. */
  handle(group: UpstreamGroup, req: Request, res: Response): void {
    const pool = group.pool()
    new Relay(this.settings, req, res, pool, group.pick(pool), { label: group.label }).start()
  }

  /** Stop the health checks, close idle upstream connections and every open tunnel. */
  close(): void {
    for (const g of this.groups) g.close()
    closeTunnels(this.settings.tunnels)
    this.settings.timers.close()
  }
}
