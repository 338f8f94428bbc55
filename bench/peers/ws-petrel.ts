// Peer of the ws suite: Petrel's WebSocket server (server.websocket) from this repository's
// source, the routes every ws peer serves: /echo (each message sent back as it came), /sub
// (subscribed to the topic "room" on open) and /pub (each message published to "room" with
// server.publish). No compression, the defaults otherwise, but for maxConnections: the
// fan-out and memory scenarios hold 10,000 WebSockets and more, the limit's default.
// Usage: node bench/peers/ws-petrel.ts PORT   (or PORT=… in the environment)

import { createServer } from '../../src/index.ts'

const port = Number(process.argv[2] ?? process.env.PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: ws-petrel.ts PORT')

const server = createServer({ limits: { maxConnections: 50_000 } })
server.websocket('/echo', { message: (ws, data, binary) => ws.send(data, { binary }) })
server.websocket('/sub', { open: (ws) => ws.subscribe('room') })
server.websocket('/pub', { message: (_ws, data, binary) => server.publish('room', data, { binary }) })
await server.listen({ port, host: '127.0.0.1', backlog: 4096 })
