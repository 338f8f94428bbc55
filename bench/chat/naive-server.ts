// The reference point for the chat suite: a chat room as it is usually first written on
// node:net — every line written to every other client with its own socket.write() (one string
// built per recipient and one system call each), no output bounds, no coalescing. Same wire
// format as petrel chat, so the same generator drives both.
//
// Usage: node bench/chat/naive-server.ts PORT

import net from 'node:net'

const port = Number(process.argv[2])
const clients = new Set<{ socket: net.Socket; nick: string }>()
let guests = 0

net
  .createServer((socket) => {
    const client = { socket, nick: `guest${++guests}` }
    clients.add(client)
    socket.write(`* welcome, you are ${client.nick}\r\n`)
    for (const other of clients) if (other !== client) other.socket.write(`* ${client.nick} joined\r\n`)
    let pending = ''
    socket.setEncoding('utf8')
    socket.on('data', (text: string) => {
      const lines = (pending + text).split('\n')
      pending = lines.pop()!
      for (const line of lines) {
        for (const other of clients) if (other !== client) other.socket.write(`${client.nick}: ${line}\r\n`)
      }
    })
    socket.on('error', () => {})
    socket.on('close', () => clients.delete(client))
  })
  .listen(port, '127.0.0.1', () => console.log(`listening on ${port}`))
