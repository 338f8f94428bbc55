// Peer: the floor under every server built on Node's `net.Socket`, Petrel and node:http
// included. It is not an HTTP server: it finds the end of each request head (CRLF CRLF) and
// answers each with the same pre-built response — no parsing, no routing, no timers, no
// per-request object. What it costs per request is what Node, libuv and the kernel cost for one
// read and one write; a target below it cannot be met by any program on this runtime.
// Usage: node bench/peers/net-floor.ts PORT   (or PORT=… in the environment)

import { Buffer } from 'node:buffer'
import net from 'node:net'

const port = Number(process.argv[2] ?? process.env.PORT)
if (!Number.isInteger(port) || port <= 0) throw new Error('usage: net-floor.ts PORT')

const END = Buffer.from('\r\n\r\n', 'latin1')
const CLOSE = Buffer.from('\r\nConnection: close', 'latin1')

// The head a real server sends, Date included (refreshed once a second, as Petrel and nginx do).
let date = ''
let answers: string[] = []
function refresh(): void {
  date = new Date().toUTCString()
  answers = []
}
refresh()
setInterval(refresh, 1000).unref()

function answer(closing: boolean): string {
  return `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: ${date}\r\nContent-Length: 13\r\n${closing ? 'Connection: close\r\n' : ''}\r\nHello, World!`
}

/** `count` answers in one string, built once per count per second. */
function answersFor(count: number): string {
  return (answers[count] ??= answer(false).repeat(count))
}

const server = net.createServer({ noDelay: true }, (socket) => {
  // How many bytes of CRLF CRLF the previous read ended with: a head may end across reads.
  let matched = 0
  socket.on('data', (chunk: Buffer) => {
    let count = 0
    let from = 0
    if (matched > 0) {
      let m = matched
      while (from < chunk.length && m < 4 && chunk[from] === END[m]) {
        m++
        from++
      }
      if (m === 4) count++
      else from = 0
    }
    for (let i = chunk.indexOf(END, from); i !== -1; i = chunk.indexOf(END, i + 4)) {
      count++
      from = i + 4
    }
    matched = 0
    for (let k = Math.min(3, chunk.length - from); k > 0; k--) {
      if (chunk.indexOf(END.subarray(0, k), chunk.length - k) === chunk.length - k) {
        matched = k
        break
      }
    }
    if (count === 0) return
    if (chunk.indexOf(CLOSE) !== -1) {
      // wrk's Connection: close scenario: one request per connection.
      socket.end(answer(true))
      return
    }
    socket.write(answersFor(count), 'latin1')
  })
  socket.on('error', () => socket.destroy())
})

server.listen(port, '127.0.0.1')
