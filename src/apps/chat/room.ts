// `petrel chat`: the book's chat room (ch. 9.6, 13.6) as a line protocol over TCP that works
// with nc and telnet. One event loop holds the room; every client has a bounded input line and
// a bounded outgoing buffer, so a client that floods or stops reading costs a fixed amount of
// memory and never slows the others: the reader is cut off with a notice.

import net, { type Socket } from 'node:net'

export const CHAT_DEFAULTS = {
  host: '127.0.0.1',
  port: 9000,
  maxUsers: 1024,
  /** Longest line a client may send, in bytes, newline excluded. */
  maxLineBytes: 1024,
  /** Bytes waiting to be sent to one client before it is disconnected as not reading. */
  maxOutgoingBytes: 256 * 1024,
} as const

export interface ChatOptions {
  host?: string
  port?: number
  maxUsers?: number
  maxLineBytes?: number
  maxOutgoingBytes?: number
}

const NICK = /^[A-Za-z0-9_-]{1,32}$/
const HELP = 'commands: /nick NAME, /who, /msg NICK text, /quit'

class Client {
  readonly socket: Socket
  nick: string
  /** Bytes of a line not yet ended by LF. */
  pending = ''
  /** The current line went over the limit: drop bytes until its LF. */
  discarding = false
  gone = false

  constructor(socket: Socket, nick: string) {
    this.socket = socket
    this.nick = nick
  }
}

export class ChatRoom {
  readonly server: net.Server
  private readonly clients = new Map<string, Client>()
  private readonly maxUsers: number
  private readonly maxLineBytes: number
  private readonly maxOutgoingBytes: number
  private guests = 0

  constructor(options: ChatOptions = {}) {
    this.maxUsers = options.maxUsers ?? CHAT_DEFAULTS.maxUsers
    this.maxLineBytes = options.maxLineBytes ?? CHAT_DEFAULTS.maxLineBytes
    this.maxOutgoingBytes = options.maxOutgoingBytes ?? CHAT_DEFAULTS.maxOutgoingBytes
    this.server = net.createServer((socket) => this.join(socket))
  }

  get users(): number {
    return this.clients.size
  }

  listen(host: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen({ host, port }, () => {
        this.server.off('error', reject)
        resolve(this.server.address() as net.AddressInfo)
      })
    })
  }

  close(): Promise<void> {
    for (const client of this.clients.values()) client.socket.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }

  private join(socket: Socket): void {
    socket.on('error', () => {})
    socket.setNoDelay(true)
    if (this.clients.size >= this.maxUsers) {
      socket.end(`! the room is full (${this.maxUsers} users); try again later\r\n`)
      return
    }
    let nick: string
    do nick = `guest${++this.guests}`
    while (this.clients.has(nick))
    const client = new Client(socket, nick)
    this.clients.set(nick, client)
    this.send(client, `* welcome, you are ${nick}; ${HELP}`)
    this.broadcast(client, `* ${nick} joined`)
    socket.setEncoding('utf8')
    socket.on('data', (text: string) => this.receive(client, text))
    socket.on('close', () => this.leave(client, 'left'))
  }

  private receive(client: Client, text: string): void {
    let start = 0
    for (let lf = text.indexOf('\n'); lf >= 0 && !client.gone; lf = text.indexOf('\n', start)) {
      const piece = text.slice(start, lf)
      start = lf + 1
      if (client.discarding) {
        client.discarding = false
        client.pending = ''
        continue
      }
      const line = client.pending + piece
      client.pending = ''
      if (Buffer.byteLength(line) > this.maxLineBytes + 1) this.send(client, `! line too long (over ${this.maxLineBytes} bytes); not sent`)
      else this.command(client, line.endsWith('\r') ? line.slice(0, -1) : line)
    }
    if (client.gone || client.discarding) return
    client.pending += text.slice(start)
    if (Buffer.byteLength(client.pending) > this.maxLineBytes + 1) {
      this.send(client, `! line too long (over ${this.maxLineBytes} bytes); not sent`)
      client.pending = ''
      client.discarding = true
    }
  }

  private command(client: Client, line: string): void {
    if (line === '') return
    if (!line.startsWith('/')) return this.broadcast(client, `${client.nick}: ${line}`)
    const space = line.indexOf(' ')
    const name = space < 0 ? line : line.slice(0, space)
    const rest = space < 0 ? '' : line.slice(space + 1).trim()
    switch (name) {
      case '/nick': {
        if (!NICK.test(rest)) return this.send(client, '! a nickname is 1 to 32 letters, digits, _ or -')
        if (rest === client.nick) return
        if (this.clients.has(rest)) return this.send(client, `! ${rest} is taken`)
        const old = client.nick
        this.clients.delete(old)
        client.nick = rest
        this.clients.set(rest, client)
        this.send(client, `* you are now ${rest}`)
        return this.broadcast(client, `* ${old} is now ${rest}`)
      }
      case '/who':
        return this.send(client, `* ${this.clients.size} here: ${[...this.clients.keys()].sort().join(', ')}`)
      case '/msg': {
        const gap = rest.indexOf(' ')
        const to = gap < 0 ? rest : rest.slice(0, gap)
        const text = gap < 0 ? '' : rest.slice(gap + 1)
        const target = this.clients.get(to)
        if (target === undefined || text === '') return this.send(client, target === undefined ? `! nobody called ${to} is here` : '! usage: /msg NICK text')
        return this.send(target, `${client.nick} (private): ${text}`)
      }
      case '/quit':
        this.send(client, '* bye')
        client.socket.end()
        return this.leave(client, 'left')
      default:
        return this.send(client, `! unknown command ${name}; ${HELP}`)
    }
  }

  private broadcast(from: Client, line: string): void {
    for (const client of this.clients.values()) if (client !== from) this.send(client, line)
  }

  /** Queue a line for `client`; one whose queue is over the limit is not reading: cut it off. */
  private send(client: Client, line: string): void {
    if (client.gone) return
    client.socket.write(`${line}\r\n`)
    if (client.socket.writableLength > this.maxOutgoingBytes) {
      client.socket.destroy()
      this.leave(client, `was disconnected: not reading (over ${this.maxOutgoingBytes} bytes waiting)`)
    }
  }

  private leave(client: Client, why: string): void {
    if (client.gone) return
    client.gone = true
    if (this.clients.get(client.nick) === client) this.clients.delete(client.nick)
    this.broadcast(client, `* ${client.nick} ${why}`)
  }
}
