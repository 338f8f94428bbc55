// Peer: Node's own HTTP server, the baseline Petrel must beat on the same runtime.
// Usage: node bench/peers/node-http.ts PORT   (or PORT=… in the environment)

import { createServer } from 'node:http'

const port = Number(process.argv[2] ?? process.env.PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: node-http.ts PORT')

const PLAINTEXT = 'Hello, World!'

const server = createServer((req, res) => {
  if (req.url === '/plaintext') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': PLAINTEXT.length })
    res.end(PLAINTEXT)
  } else if (req.url === '/json') {
    // Serialised per request on purpose: that is the work the TechEmpower json test measures.
    const body = JSON.stringify({ message: 'Hello, World!' })
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
    res.end(body)
  } else {
    res.writeHead(404, { 'Content-Length': 0 })
    res.end()
  }
})

server.listen(port, '127.0.0.1')
