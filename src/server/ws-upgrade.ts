// The route handler that turns a request into a WebSocket (RFC 6455 §4.2): the handshake
// checked (protocol/websocket/handshake.ts), the Origin hook and the route's upgrade() asked,
// permessage-deflate agreed, the 101 written on the socket Response.detach() hands over, and the
// connection made (websocket.ts) and counted with the server's others.

import { DEFAULT_WEBSOCKET, resolveKnobs, type WebSocketLimits } from '../core/limits.ts'
import { InvalidOptionError } from '../core/option-error.ts'
import { acceptKey, handshakeProblem, negotiateDeflate } from '../protocol/websocket/handshake.ts'
import { answerBody } from './answer.ts'
import type { Request } from './request.ts'
import type { Response } from './response.ts'
import type { Handler, HttpServer } from './server.ts'
import { WebSocket, type WebSocketHandlers, type WebSocketRoute } from './websocket.ts'
import { Refusal } from './ws-refusal.ts'

export { Topics } from './ws-topics.ts'

export interface WebSocketOptions extends Partial<WebSocketLimits> {
  /** Offer permessage-deflate (RFC 7692) to clients that ask for it (default false). */
  compress?: boolean
  /** The zlib level of compressed messages (1–9, default 1: fast). */
  compressLevel?: number
  /** Whether a handshake's Origin (undefined without one) may connect; false answers 403. Default: any. */
  allowOrigin?: (origin: string | undefined, req: Request) => boolean
  /**
   * The subprotocol to speak, among those the client offers (Sec-WebSocket-Protocol, in its
   * order); undefined for none. Without this hook the server speaks none: a browser that asked
   * for one then fails the handshake itself.
   */
  protocol?: (offered: readonly string[], req: Request) => string | undefined
}

/** The route handler server.websocket() registers. */
export function upgradeHandler<T>(server: HttpServer, handlers: WebSocketHandlers<T>, options: WebSocketOptions = {}): Handler {
  const { compress = false, compressLevel = 1, allowOrigin, protocol, ...given } = options
  // pingIntervalMs may be 0 (no pings): checked apart from the positive knobs.
  const { pingIntervalMs, ...positive } = given
  const limits: WebSocketLimits = {
    ...resolveKnobs('websocket', DEFAULT_WEBSOCKET, positive),
    pingIntervalMs: pingIntervalMs ?? DEFAULT_WEBSOCKET.pingIntervalMs,
  }
  if (!Number.isInteger(limits.pingIntervalMs) || limits.pingIntervalMs < 0)
    throw new InvalidOptionError(`websocket.pingIntervalMs must be 0 or more, got ${limits.pingIntervalMs}`)
  if (!Number.isInteger(compressLevel) || compressLevel < 1 || compressLevel > 9)
    throw new InvalidOptionError(`websocket.compressLevel must be 1 to 9, got ${compressLevel}`)
  const route: WebSocketRoute<T> = { handlers, limits, compress, compressLevel, protocol }
  return (req, res) => {
    const problem = handshakeProblem({
      method: req.method,
      httpVersion: req.httpVersion,
      upgrade: req.header('upgrade'),
      connection: req.header('connection'),
      key: req.header('sec-websocket-key'),
      version: req.header('sec-websocket-version'),
    })
    if (problem !== null) {
      if (problem.status === 426) {
        res.setHeader('Upgrade', 'websocket')
        res.setHeader('Sec-WebSocket-Version', '13')
      }
      return answer(res, problem.status, problem.why)
    }
    if (allowOrigin !== undefined && !allowOrigin(req.header('origin'), req)) return answer(res, 403, 'this Origin may not open a WebSocket here')
    if (handlers.upgrade === undefined) return accept(server, route, req, res, undefined as T)
    const verdict = handlers.upgrade(req)
    if (!(verdict instanceof Promise)) return decide(server, route, req, res, verdict)
    return verdict.then((v) => decide(server, route, req, res, v))
  }
}

function decide<T>(server: HttpServer, route: WebSocketRoute<T>, req: Request, res: Response, verdict: T | Refusal): void {
  if (verdict instanceof Refusal) return answer(res, verdict.status, verdict.message)
  accept(server, route, req, res, verdict)
}

function answer(res: Response, status: number, why: string): void {
  res.status(status)
  res.setHeader('Content-Type', 'text/plain; charset=utf-8')
  res.end(answerBody(status, why))
}

function accept<T>(server: HttpServer, route: WebSocketRoute<T>, req: Request, res: Response, data: T): void {
  // The client left while upgrade() was deciding: nothing to answer.
  if (res.closed) return
  // A graceful stop began meanwhile: no new connection to hold it up.
  if (server.closing) return answer(res, 503, 'the server is stopping')
  const deflate = route.compress ? negotiateDeflate(req.header('sec-websocket-extensions')) : null
  const offered =
    route.protocol === undefined
      ? undefined
      : (req.header('sec-websocket-protocol') ?? '')
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== '')
  const chosen = offered === undefined ? undefined : route.protocol!(offered!, req)
  if (chosen !== undefined && !offered!.includes(chosen))
    throw new InvalidOptionError(`websocket protocol(): ${JSON.stringify(chosen)} is not among those offered`)
  const key = req.header('sec-websocket-key')!.trim()
  const { socket, head } = res.detach()
  // The client half-closed while upgrade() was deciding: it will never read the answer.
  if (socket.destroyed || socket.readableEnded) return void socket.destroy()
  const extension = deflate === null ? '' : `Sec-WebSocket-Extensions: ${deflate.response}\r\n`
  const subprotocol = chosen === undefined ? '' : `Sec-WebSocket-Protocol: ${chosen}\r\n`
  socket.write(
    `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n${extension}${subprotocol}\r\n`,
  )
  const ws = new WebSocket(server, route, socket, data, deflate?.serverMaxWindowBits ?? 0, chosen ?? '')
  server.connections.add(ws as WebSocket<unknown>)
  ws.start(head)
}
