// Peer: send, the classic Node.js static-file streamer (what Express's static middleware is
// built on), on a bare node:http server. It stats the file on every request and streams it with
// fs.createReadStream, with ETag and Last-Modified.
// Usage: node bench/peers/static-send.ts PORT ROOT

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'

// Loaded with require() rather than `import` so that type-checking the repo does not need
// bench/node_modules, which is only installed when someone runs the benchmarks.
interface SendStream {
  on(event: 'error', listener: (error: Error & { status?: number }) => void): SendStream
  pipe(res: ServerResponse): ServerResponse
}
const require = createRequire(import.meta.url)
const send = require('send') as (req: IncomingMessage, path: string, options: { root: string }) => SendStream

const port = Number(process.argv[2])
const root = process.argv[3]
if (!Number.isInteger(port) || port <= 0 || root === undefined) throw new Error('usage: static-send.ts PORT ROOT')

createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname
  send(req, path, { root })
    .on('error', (error) => {
      res.writeHead(error.status ?? 500, { 'Content-Length': 0 })
      res.end()
    })
    .pipe(res)
}).listen(port, '127.0.0.1')
