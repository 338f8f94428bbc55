// The cleartext listener beside an HTTPS one (`petrel serve --http-port`): every request gets
// 308 Permanent Redirect to the same target on https, so a method and body are kept (RFC 9110
// 15.4.9), as Caddy does. It is an HttpServer of its own, so that the ACME HTTP-01 challenge
// path can be mounted on it ahead of the redirect.

import { createServer, type HttpServer } from '../../server/server.ts'
import type { Request } from '../../server/request.ts'
import type { Response } from '../../server/response.ts'
import type { Limits, Timeouts } from '../../core/limits.ts'

/** A server that redirects everything to https on `httpsPort` (443 is left out of the URL). */
export function redirectToHttps(options: { host: string; limits?: Partial<Limits>; timeouts?: Partial<Timeouts> }, httpsPort: number): HttpServer {
  const portSuffix = httpsPort === 443 ? '' : `:${httpsPort}`
  // The listening address stands in for a Host an HTTP/1.0 client did not send.
  const fallbackHost = options.host.includes(':') ? `[${options.host}]` : options.host
  const server = createServer({ limits: options.limits, timeouts: options.timeouts })
  server.fallback((req: Request, res: Response) => {
    // The parser has checked Host (host[:port], RFC 9112 3.2) and the target: neither can carry
    // a CR, LF, space or another authority into the Location.
    const host = req.header('host')
    const name = host === undefined || host === '' ? fallbackHost : hostName(host)
    // An absolute-form target names its own authority; the redirect keeps only its path and query.
    const target = req.url.startsWith('/') ? req.url : req.pathAndQuery
    res.status(308)
    res.setHeader('Location', `https://${name}${portSuffix}${target}`)
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    res.end('308 Permanent Redirect: use https\n')
  })
  return server
}

/** The name of a Host value, without its port: "example.com:80" → "example.com", "[::1]:80" → "[::1]". */
function hostName(host: string): string {
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1)
  const colon = host.indexOf(':')
  return colon < 0 ? host : host.slice(0, colon)
}
