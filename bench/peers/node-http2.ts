// Peer: Node's own HTTP/2 server, the baseline Petrel's HTTP/2 must beat on the same runtime:
// node:http2's core API (the 'stream' event, not the HTTP/1-style compatibility layer, which
// costs more), over TLS with ALPN h2 (createSecureServer) or on cleartext by prior knowledge
// (createServer). /plaintext is answered from memory; any other path is a file under ROOT, with a
// stat for Content-Length and a read stream piped to the stream, as bench/peers/node-https.ts does
// on HTTP/1.1. (Not `stream.respondWithFile`, node:http2's own way: on Node 26.10 it crashes the
// process, SIGSEGV, when a client goes away with files under way, as h2load does at the end of
// every run.)
// Usage: node bench/peers/node-http2.ts PORT ROOT [CERT KEY]

import { createReadStream, readFileSync, stat } from 'node:fs'
import http2 from 'node:http2'
import { join, normalize } from 'node:path'
import { pipeline } from 'node:stream'

const [portText, root, certFile, keyFile] = process.argv.slice(2)
const port = Number(portText)
if (!Number.isInteger(port) || port <= 0 || root === undefined || (certFile === undefined) !== (keyFile === undefined)) {
  throw new Error('usage: node-http2.ts PORT ROOT [CERT KEY]')
}

const PLAINTEXT = 'Hello, World!'
const ROOT: string = root

function onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
  const url = headers[':path'] ?? '/'
  if (url === '/plaintext') {
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': PLAINTEXT.length })
    stream.end(PLAINTEXT)
    return
  }
  const path = join(ROOT, normalize(decodeURIComponent(url.split('?')[0] ?? '/')))
  if (!path.startsWith(ROOT)) {
    stream.respond({ ':status': 403, 'content-length': 0 }, { endStream: true })
    return
  }
  stat(path, (err, stats) => {
    if (stream.destroyed) return
    if (err !== null || !stats.isFile()) {
      stream.respond({ ':status': 404, 'content-length': 0 }, { endStream: true })
      return
    }
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', 'content-length': stats.size })
    // pipeline, not pipe: a stream the client resets also closes the file.
    pipeline(createReadStream(path), stream, () => {})
  })
}

const server =
  certFile === undefined
    ? http2.createServer().on('stream', onStream)
    : http2.createSecureServer({ cert: readFileSync(certFile), key: readFileSync(keyFile!) }).on('stream', onStream)
server.on('sessionError', () => {})

server.listen(port, '127.0.0.1')
