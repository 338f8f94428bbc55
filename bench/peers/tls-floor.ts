// Peer: the floor under every HTTPS server built on Node's TLS sockets, Petrel and node:https
// included — net-floor.ts on a node:tls server. It is not an HTTP server: it finds the end of
// each request head (CRLF CRLF) and answers it with a pre-built response, closing after it when
// the request said `Connection: close`. The TLS settings are Node's defaults with the given
// certificate. What it costs per request (and per handshake) is what Node, OpenSSL and the kernel
// cost; a target below it cannot be met by any program on this runtime.
// Usage: node bench/peers/tls-floor.ts PORT CERT KEY [FILE]
//   FILE (optional): its bytes are the body of the answer to GET /<its name> (the static
//   scenario's file, read once at start); every other request gets "Hello, World!".
//   PETREL_TLS_FLOOR_OPTIONS (environment, optional): JSON merged into tls.createServer's
//   options, to measure one OpenSSL setting at a time (docs/tls.md): '{"ecdhCurve":"P-256"}'.

import { Buffer } from 'node:buffer'
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'
import tls from 'node:tls'

const [portText, certFile, keyFile, bodyFile] = process.argv.slice(2)
const port = Number(portText)
if (!Number.isInteger(port) || port <= 0 || certFile === undefined || keyFile === undefined) throw new Error('usage: tls-floor.ts PORT CERT KEY [FILE]')

const END = Buffer.from('\r\n\r\n', 'latin1')
const CLOSE = Buffer.from('\r\nConnection: close', 'latin1')

function response(body: Buffer, contentType: string, closing: boolean): Buffer {
  const head = `HTTP/1.1 200 OK\r\nContent-Type: ${contentType}\r\nContent-Length: ${body.length}\r\n${closing ? 'Connection: close\r\n' : ''}\r\n`
  return Buffer.concat([Buffer.from(head, 'latin1'), body])
}

const HELLO = Buffer.from('Hello, World!', 'latin1')
const answers = { keep: response(HELLO, 'text/plain', false), close: response(HELLO, 'text/plain', true) }
const file = bodyFile === undefined ? null : readFileSync(bodyFile)
const fileAnswers = file === null ? null : { keep: response(file, 'application/octet-stream', false), close: response(file, 'application/octet-stream', true) }
// The request line of the file: "GET /100k.bin " (the floor does not parse; it compares bytes).
const fileLine = bodyFile === undefined ? null : Buffer.from(`GET /${basename(bodyFile)} `, 'latin1')

const extraOptions = JSON.parse(process.env.PETREL_TLS_FLOOR_OPTIONS ?? '{}') as tls.TlsOptions
const server = tls.createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile), ...extraOptions }, (socket) => {
  socket.setNoDelay(true)
  socket.on('data', (chunk: Buffer) => {
    // wrk and petrel bench send one request per write and wait for its answer (no pipelining
    // in this suite), so a head never spans two reads here.
    if (chunk.indexOf(END) === -1) return
    const set = fileLine !== null && chunk.indexOf(fileLine) === 0 ? fileAnswers! : answers
    if (chunk.indexOf(CLOSE) !== -1) socket.end(set.close)
    else socket.write(set.keep)
  })
  socket.on('error', () => socket.destroy())
})
server.on('tlsClientError', () => {})

server.listen(port, '127.0.0.1')
