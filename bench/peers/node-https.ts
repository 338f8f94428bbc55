// Peer: Node's own HTTPS server, the baseline Petrel must beat on the same runtime: /plaintext
// answered from memory, any other path served from ROOT with fs (a stat for Content-Length, then
// a read stream piped to the response), as a plain node:https file server would.
// Usage: node bench/peers/node-https.ts PORT CERT KEY ROOT

import { createReadStream, readFileSync, stat } from 'node:fs'
import { createServer } from 'node:https'
import { join, normalize } from 'node:path'

const [portText, certFile, keyFile, root] = process.argv.slice(2)
const port = Number(portText)
if (!Number.isInteger(port) || port <= 0 || certFile === undefined || keyFile === undefined || root === undefined) {
  throw new Error('usage: node-https.ts PORT CERT KEY ROOT')
}

const PLAINTEXT = 'Hello, World!'

const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) => {
  const url = req.url ?? '/'
  if (url === '/plaintext') {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': PLAINTEXT.length })
    res.end(PLAINTEXT)
    return
  }
  const path = join(root, normalize(decodeURIComponent(url.split('?')[0] ?? '/')))
  if (!path.startsWith(root)) {
    res.writeHead(403, { 'Content-Length': 0 }).end()
    return
  }
  stat(path, (err, stats) => {
    if (err !== null || !stats.isFile()) {
      res.writeHead(404, { 'Content-Length': 0 }).end()
      return
    }
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': stats.size })
    createReadStream(path).pipe(res)
  })
})

server.listen(port, '127.0.0.1')
