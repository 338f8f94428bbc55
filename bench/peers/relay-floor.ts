// Peer for the proxy suite: the floor under any proxy built on Node's sockets. It is not an HTTP
// proxy: each client connection gets its own upstream connection, and bytes are copied both ways
// as they come ('data' → write), with no parsing, no pool, no headers added. What it costs per
// request is what Node, libuv and the kernel cost for two reads and two writes.
// Usage: node bench/peers/relay-floor.ts PORT UPSTREAM_PORT

import net from 'node:net'

const port = Number(process.argv[2] ?? process.env.PORT)
const upstreamPort = Number(process.argv[3] ?? process.env.UPSTREAM_PORT)
if (!Number.isInteger(port) || port <= 0 || !Number.isInteger(upstreamPort) || upstreamPort <= 0) throw new Error('usage: relay-floor.ts PORT UPSTREAM_PORT')

const server = net.createServer({ noDelay: true }, (client) => {
  const upstream = net.connect({ port: upstreamPort, host: '127.0.0.1', noDelay: true })
  client.on('data', (chunk: Buffer) => {
    if (!upstream.write(chunk)) client.pause()
  })
  upstream.on('data', (chunk: Buffer) => {
    if (!client.write(chunk)) upstream.pause()
  })
  client.on('drain', () => upstream.resume())
  upstream.on('drain', () => client.resume())
  const close = (): void => {
    client.destroy()
    upstream.destroy()
  }
  for (const socket of [client, upstream]) {
    socket.on('error', close)
    socket.on('close', close)
  }
})

server.listen(port, '127.0.0.1')
