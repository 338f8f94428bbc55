// Peer: sirv, the static-file middleware behind sirv-cli, on a bare node:http server, as
// sirv-cli runs it minus its logging and compression: sirv(root, { dev: false, etag: true }).
// dev: false is its production mode: it walks ROOT once at start-up and caches each file's
// headers, then streams bodies with fs.createReadStream.
// Usage: node bench/peers/static-sirv.ts PORT ROOT

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createRequire } from 'node:module'

// Loaded with require() rather than `import` so that type-checking the repo does not need
// bench/node_modules, which is only installed when someone runs the benchmarks.
type Middleware = (req: IncomingMessage, res: ServerResponse, next: () => void) => void
const require = createRequire(import.meta.url)
const sirv = require('sirv') as (root: string, options: { dev: boolean; etag: boolean }) => Middleware

const port = Number(process.argv[2])
const root = process.argv[3]
if (!Number.isInteger(port) || port <= 0 || root === undefined) throw new Error('usage: static-sirv.ts PORT ROOT')

const serve = sirv(root, { dev: false, etag: true })

createServer((req, res) => {
  serve(req, res, () => {
    res.writeHead(404, { 'Content-Length': 0 })
    res.end()
  })
}).listen(port, '127.0.0.1')
