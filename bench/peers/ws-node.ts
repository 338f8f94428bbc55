// Peer of the ws suite: the `ws` package (bench/node_modules) on node:http, written as its
// README does: a WebSocketServer per route (noServer, the upgrade routed by path), /echo sends
// each message back, /sub joins a set of subscribers, /pub loops over that set (`ws` has no
// topics). ws uses bufferutil (masking) when it loads, as an application's install would.
// Usage: node bench/peers/ws-node.ts PORT   (or PORT=… in the environment)

import { createServer } from 'node:http'
import { WebSocketServer, type WebSocket } from 'ws'

const port = Number(process.argv[2] ?? process.env.PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: ws-node.ts PORT')

const options = { noServer: true, perMessageDeflate: false, clientTracking: false }
const echo = new WebSocketServer(options)
const sub = new WebSocketServer(options)
const pub = new WebSocketServer(options)
const room = new Set<WebSocket>()

echo.on('connection', (ws) => {
  ws.on('message', (data, binary) => ws.send(data, { binary }))
})
sub.on('connection', (ws) => {
  room.add(ws)
  ws.on('close', () => room.delete(ws))
})
pub.on('connection', (ws) => {
  ws.on('message', (data, binary) => {
    for (const client of room) client.send(data, { binary })
  })
})

const routes = new Map([
  ['/echo', echo],
  ['/sub', sub],
  ['/pub', pub],
])
const server = createServer((_req, res) => {
  res.writeHead(426, { 'Content-Length': 0 })
  res.end()
})
server.on('upgrade', (req, socket, head) => {
  const route = routes.get(req.url ?? '')
  if (route === undefined) return void socket.destroy()
  route.handleUpgrade(req, socket, head, (ws) => route.emit('connection', ws, req))
})
server.listen({ port, host: '127.0.0.1', backlog: 4096 })
