// `petrel chat`: the book's chat room (ch. 9.6, 13.6) as a line protocol over TCP that works
// with nc and telnet. One event loop holds this node's clients; the hub (hub.ts) holds the room
// beyond them — the other workers, or other instances through Redis.
//
// Bounds: every client has a bounded input line and a bounded outgoing queue, so a client that
// floods or stops reading costs a fixed amount of memory and never slows the others — the
// reader is cut off with a notice. Output is coalesced: lines for a client within one turn of
// the event loop leave in one write, and a broadcast line is encoded once for all its readers.

import { Buffer } from 'node:buffer'
import net, { type Socket } from 'node:net'
import { LocalHub, nickKey, type Hub, type RoomEvent } from './hub.ts'
import { TcpLink, WsLink, type Link } from './links.ts'
import type { WebSocket } from '../../server/websocket.ts'
import { hostPort, systemFailure } from '../../core/system-failure.ts'

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
  /** The room beyond this process; default: none (LocalHub with maxUsers). */
  hub?: Hub
  /** Listen with SO_REUSEPORT (workers share the port). */
  reusePort?: boolean
  /** Warnings (a hub that fails). */
  log?: (line: string) => void
}

const NICK = /^[A-Za-z0-9_-]{1,32}$/
/**
 * Characters a terminal acts on rather than shows: C0 controls but TAB (CR rewinds the line, ESC
 * starts a sequence that can move the cursor, recolour or retitle, BEL rings), DEL, and the C1
 * controls (U+0080–U+009F; U+009B is a CSI to terminals that take 8-bit controls). They are
 * removed from every line a client sends, so nobody can forge or hide lines on another's screen.
 */
const TERMINAL_CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/g
/** What an event's line may hold beyond a client's line: "[PM] ", a 32-byte name, ": " and the like. */
const EVENT_OVERHEAD_BYTES = 64
/** A client turned away (room full, hub down) has this long to close before it is cut. */
const REFUSED_GRACE_MS = 5_000
const HELP = 'commands: /nick NAME, /who, /msg NICK text, /quit'
const PARTIAL_DELIVERY = '! the rest of the room is unreachable: only the people on this node got that line'
const CRLF = '\r\n'

export class Client {
  /** A TCP socket or a WebSocket (links.ts). */
  readonly link: Link
  /** Empty until the hub gave a seat. */
  nick = ''
  /** Bytes of a line not yet ended by LF. */
  pending = ''
  /** The current line went over the limit: drop bytes until its LF. */
  discarding = false
  gone = false
  /** Waiting for the hub: later lines wait in `backlog` (reading is paused meanwhile). */
  busy = true
  backlog: string[] = []
  /** Output of this turn, written together by the room's flush. */
  out: Buffer[] = []
  outBytes = 0

  constructor(link: Link) {
    this.link = link
  }
}

export class ChatRoom {
  readonly server: net.Server
  /** This node's members by nickKey(). */
  private readonly clients = new Map<string, Client>()
  private readonly hub: Hub
  private readonly maxUsers: number
  private readonly maxLineBytes: number
  private readonly maxOutgoingBytes: number
  private readonly reusePort: boolean
  private readonly log: (line: string) => void
  /** Every client connected and not yet gone (joined, joining or being turned away), for close(). */
  private readonly links = new Set<Link>()
  /** Clients with output waiting for the flush at the end of this turn. */
  private dirty: Client[] = []
  private flushQueued = false
  private readonly flushBound = (): void => this.flush()

  constructor(options: ChatOptions = {}) {
    this.maxUsers = options.maxUsers ?? CHAT_DEFAULTS.maxUsers
    this.maxLineBytes = options.maxLineBytes ?? CHAT_DEFAULTS.maxLineBytes
    this.maxOutgoingBytes = options.maxOutgoingBytes ?? CHAT_DEFAULTS.maxOutgoingBytes
    this.reusePort = options.reusePort ?? false
    this.log = options.log ?? (() => {})
    this.hub = options.hub ?? new LocalHub(this.maxUsers)
    this.hub.onEvent = (event) => this.fromHub(event)
    this.server = net.createServer({ pauseOnConnect: true }, (socket) => this.join(socket))
  }

  /** Clients held by this node. */
  get users(): number {
    return this.clients.size
  }

  listen(host: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      // A worker process sends this error to its master as text: it must say what to do already.
      const onListenError = (err: Error): void => reject(systemFailure(err, `listen on ${hostPort(host, port)}`) ?? err)
      this.server.once('error', onListenError)
      this.server.listen({ host, port, reusePort: this.reusePort }, () => {
        this.server.off('error', onListenError)
        resolve(this.server.address() as net.AddressInfo)
      })
    })
  }

  /** Stop accepting and drop this node's clients (their nicknames are released). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()))
    for (const client of [...this.clients.values()]) {
      client.link.destroy()
      this.leave(client, 'left')
    }
    // Those still joining or being turned away too: the server's close waits for every socket.
    for (const link of this.links) link.destroy()
    await closed
    await this.hub.close()
  }

  /** A TCP client (nc, telnet): its lines are read once it has a seat. */
  private join(socket: Socket): void {
    socket.on('error', () => {})
    socket.setNoDelay(true)
    const link = new TcpLink(socket)
    const client = this.connect(link, () => {
      socket.setEncoding('utf8')
      socket.on('data', (text: string) => this.receive(client, text))
    })
    socket.on('close', () => this.disconnected(client))
  }

  /**
   * A WebSocket client (the chat page): one text message per line, read from the start — lines
   * that come before its seat wait, as lines do while the hub answers. The route's message and
   * close handlers pass them on with message() and disconnected().
   */
  joinWebSocket(ws: WebSocket<unknown>): Client {
    return this.connect(new WsLink(ws), () => {})
  }

  /** A WebSocket message: a line (or several, split at LF like a TCP client's). */
  message(client: Client, text: string): void {
    this.receive(client, text.endsWith('\n') ? text : `${text}\n`)
  }

  disconnected(client: Client): void {
    this.links.delete(client.link)
    this.leave(client, 'left')
  }

  private connect(link: Link, startReading: () => void): Client {
    this.links.add(link)
    const client = new Client(link)
    // Nothing is read until the client has a seat (ready() resumes): a client cannot pile lines
    // up while the hub answers (a TCP socket is accepted paused already).
    link.pause()
    this.hub.join().then(
      (nick) => {
        if (nick === null) return this.refuse(client, `! the room is full (${this.maxUsers} users); try again later`)
        client.nick = nick
        if (client.gone) return this.hub.leave(nick)
        this.clients.set(nickKey(nick), client)
        this.send(client, this.encode(`* welcome, you are ${nick}; ${HELP}`))
        this.broadcast(client, `* ${nick} joined`)
        startReading()
        this.ready(client)
      },
      (err: Error) => this.unavailable(client, err),
    )
    return client
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
      if (Buffer.byteLength(line) > this.maxLineBytes + 1) this.send(client, this.encode(`! line too long (over ${this.maxLineBytes} bytes); not sent`))
      else if (client.busy) client.backlog.push(withoutControls(line))
      else this.command(client, withoutControls(line))
    }
    if (client.gone || client.discarding) return
    client.pending += text.slice(start)
    if (Buffer.byteLength(client.pending) > this.maxLineBytes + 1) {
      this.send(client, this.encode(`! line too long (over ${this.maxLineBytes} bytes); not sent`))
      client.pending = ''
      client.discarding = true
    }
  }

  /** The hub answered: run the lines that waited, then read again. */
  private ready(client: Client): void {
    client.busy = false
    while (!client.busy && !client.gone && client.backlog.length > 0) this.command(client, client.backlog.shift()!)
    if (!client.busy && !client.gone) client.link.resume()
  }

  /**
   * Hold `client`'s input until `work` settles. `abandoned` undoes what the work did when the
   * client left meanwhile (a rename that went through must not leave the new name in the room).
   */
  private wait<T>(client: Client, work: Promise<T>, then: (value: T) => void, abandoned?: (value: T) => void): void {
    client.busy = true
    client.link.pause()
    work.then(
      (value) => {
        if (client.gone) return abandoned?.(value)
        then(value)
        this.ready(client)
      },
      (err: Error) => this.unavailable(client, err),
    )
  }

  private unavailable(client: Client, err: Error): void {
    this.log(`hub: ${err.message}`)
    const line = `! the room is unavailable (${err.message}); try again`
    if (client.nick === '') return this.refuse(client, line)
    if (client.gone) return
    this.reply(client, line)
    this.ready(client)
  }

  /** Turn away a client that has no seat: one line, then close. */
  private refuse(client: Client, line: string): void {
    if (client.gone) return
    client.gone = true
    client.link.end(this.encode(line), REFUSED_GRACE_MS)
  }

  private command(client: Client, line: string): void {
    if (line === '') return
    if (line.charCodeAt(0) !== 0x2f /* / */) {
      this.broadcast(client, `${client.nick}: ${line}`)
      // Nothing is queued for a hub that is down (it would grow with the outage): the line went to
      // this node's clients only, and its sender learns so instead of believing everyone read it.
      if (this.hub.reachesOthers?.() === false) this.reply(client, PARTIAL_DELIVERY)
      return
    }
    const space = line.indexOf(' ')
    const name = space < 0 ? line : line.slice(0, space)
    const rest = space < 0 ? '' : line.slice(space + 1).trim()
    switch (name) {
      case '/nick': {
        if (!NICK.test(rest)) return this.reply(client, '! a nickname is 1 to 32 letters, digits, _ or -')
        if (rest === client.nick) return
        const old = client.nick
        return this.wait(
          client,
          this.hub.rename(old, rest),
          (renamed) => {
            if (!renamed) return this.reply(client, `! ${rest} is taken`)
            this.clients.delete(nickKey(old))
            client.nick = rest
            this.clients.set(nickKey(rest), client)
            this.reply(client, `* you are now ${rest}`)
            this.broadcast(client, `* ${old} is now ${rest}`)
          },
          (renamed) => {
            // Left while the hub renamed: its leave went out under the old name, so the new one goes too.
            if (renamed) this.hub.leave(rest)
          },
        )
      }
      case '/who':
        return this.wait(client, this.hub.who(), (nicks) => this.reply(client, `* ${nicks.length} here: ${nicks.join(', ')}`))
      case '/msg': {
        const gap = rest.indexOf(' ')
        const to = gap < 0 ? rest : rest.slice(0, gap)
        const text = gap < 0 ? '' : rest.slice(gap + 1)
        if (to === '' || text === '') return this.reply(client, '! usage: /msg NICK text')
        const line = `${client.nick} (private): ${text}`
        const local = this.clients.get(nickKey(to))
        if (local !== undefined) return this.send(local, this.encode(line))
        return this.wait(client, this.hub.exists(to), (exists) => {
          if (exists) this.hub.publish({ line, to })
          else this.reply(client, `! nobody called ${to} is here`)
        })
      }
      case '/quit':
        this.reply(client, '* bye')
        this.flushClient(client)
        client.link.end(null, REFUSED_GRACE_MS)
        return this.leave(client, 'left')
      default:
        return this.reply(client, `! unknown command ${name}; ${HELP}`)
    }
  }

  private reply(client: Client, line: string): void {
    this.send(client, this.encode(line))
  }

  /** A line from `from` to everyone else, here and elsewhere. */
  private broadcast(from: Client, line: string): void {
    const event: RoomEvent = { line, except: from.nick }
    this.deliver(event, this.encode(line))
    this.hub.publish(event)
  }

  /**
   * An event from the hub: another node's line, which that node cleaned already — but anyone who
   * can publish on the room's Redis channel can send anything, so it is cleaned again here and
   * bounded (a line, plus a sender's name and the few bytes around it).
   */
  private fromHub(event: RoomEvent): void {
    const line = event.line.replace(TERMINAL_CONTROLS, '')
    if (Buffer.byteLength(line) > this.maxLineBytes + EVENT_OVERHEAD_BYTES) {
      this.log(`an event from the hub is longer than a line may be (${this.maxLineBytes} bytes and a name); dropped`)
      return
    }
    this.deliver(event, this.encode(line))
  }

  /** An event to this node's clients; `bytes` is its line, encoded once for all of them. */
  private deliver(event: RoomEvent, bytes: Buffer): void {
    if (event.to !== undefined) {
      const client = this.clients.get(nickKey(event.to))
      if (client !== undefined) this.send(client, bytes)
      return
    }
    const except = event.except === undefined ? undefined : this.clients.get(nickKey(event.except))
    for (const client of this.clients.values()) if (client !== except) this.send(client, bytes)
  }

  private encode(line: string): Buffer {
    return Buffer.from(line + CRLF)
  }

  /** Queue bytes for `client`; one whose queue is over the limit is not reading: cut it off. */
  private send(client: Client, bytes: Buffer): void {
    if (client.gone) return
    client.out.push(bytes)
    client.outBytes += bytes.length
    if (client.link.queued + client.outBytes > this.maxOutgoingBytes) {
      client.link.destroy()
      this.leave(client, `was disconnected: not reading (over ${this.maxOutgoingBytes} bytes waiting)`)
      return
    }
    if (client.out.length === 1) this.dirty.push(client)
    if (!this.flushQueued) {
      this.flushQueued = true
      setImmediate(this.flushBound)
    }
  }

  private flush(): void {
    this.flushQueued = false
    const dirty = this.dirty
    this.dirty = []
    for (const client of dirty) this.flushClient(client)
  }

  private flushClient(client: Client): void {
    if (client.out.length === 0) return
    if (!client.gone) client.link.write(client.out, client.outBytes)
    client.out = []
    client.outBytes = 0
  }

  private leave(client: Client, why: string): void {
    if (client.gone) return
    client.gone = true
    client.out = []
    client.outBytes = 0
    if (client.nick === '') return
    const key = nickKey(client.nick)
    if (this.clients.get(key) === client) this.clients.delete(key)
    this.hub.leave(client.nick)
    this.broadcast(client, `* ${client.nick} ${why}`)
  }
}

/** A received line as it may be relayed: its CR (of a CRLF) and every terminal control but TAB gone. */
function withoutControls(line: string): string {
  TERMINAL_CONTROLS.lastIndex = 0
  return TERMINAL_CONTROLS.test(line) ? line.replace(TERMINAL_CONTROLS, '') : line
}
