// Peer of the ws suite: Bun.serve's WebSocket (uWebSockets inside, in Zig and C++), run by the
// bun binary from the npm package `bun`, as bench/peers/bun.ts is. Routes as every ws peer:
// /echo sends each message back, /sub subscribes to "room" on open, /pub publishes each message
// to "room" (server.publish). No compression; backpressureLimit raised from its 16 MiB as uWS's
// is, so that nothing published is dropped.
// Usage: bun bench/peers/ws-bun.ts PORT   (or PORT=… in the environment)

// Just the part of Bun's API used here, so that the repo's tsc (Node types only) can check this file.
interface BunWebSocket {
  readonly data: { route: string }
  send(data: string | Uint8Array, compress?: boolean): number
  subscribe(topic: string): void
}
interface BunServer {
  upgrade(request: Request, options: { data: { route: string } }): boolean
  publish(topic: string, data: string | Uint8Array, compress?: boolean): number
}
interface BunServeOptions {
  port: number
  hostname: string
  fetch(request: Request, server: BunServer): Response | undefined
  websocket: {
    perMessageDeflate: boolean
    backpressureLimit: number
    maxPayloadLength: number
    open(ws: BunWebSocket): void
    message(ws: BunWebSocket, message: string | Uint8Array): void
  }
}
declare const Bun: { serve(options: BunServeOptions): BunServer }

const port = Number(process.argv[2] ?? process.env.PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: ws-bun.ts PORT')

const ROUTES = new Set(['/echo', '/sub', '/pub'])

const server = Bun.serve({
  port,
  hostname: '127.0.0.1',
  fetch(request, server) {
    const route = new URL(request.url).pathname
    if (ROUTES.has(route) && server.upgrade(request, { data: { route } })) return undefined
    return new Response('Upgrade Required', { status: 426 })
  },
  websocket: {
    perMessageDeflate: false,
    backpressureLimit: 64 * 1024 * 1024,
    maxPayloadLength: 1024 * 1024,
    open(ws) {
      if (ws.data.route === '/sub') ws.subscribe('room')
    },
    message(ws, message) {
      if (ws.data.route === '/echo') ws.send(message)
      else if (ws.data.route === '/pub') server.publish('room', message)
    },
  },
})
