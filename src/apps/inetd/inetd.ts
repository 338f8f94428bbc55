// `petrel inetd`: a super-server in the manner of xinetd (book ch. 9.8) — one process listening
// for many small services, on TCP and UDP at the same port (ch. 9.7).
//
// Each TCP connection gets a timing-wheel timer (core/timers): activity moves its deadline later
// with a plain write, and a connection idle for `idleTimeoutMs` is closed. `instances` bounds
// the connections of each service; one more is closed at once, as xinetd does.

import net, { type Socket } from 'node:net'
import dgram from 'node:dgram'
import { isIPv6 } from 'node:net'
import { Scheduler, WheelTimer } from '../../core/timers/index.ts'
import { answerUdp, serveTcp, SERVICE_NAMES, STANDARD_PORTS, type ServiceName } from './services.ts'

export const INETD_DEFAULTS = {
  host: '127.0.0.1',
  /** With no configuration each service listens at 10000 + its standard port: no root needed. */
  portOffset: 10_000,
  /** Connections per service at once. */
  instances: 64,
  idleTimeoutMs: 300_000,
} as const

export interface InetdOptions {
  host?: string
  portOffset?: number
  services?: readonly ServiceName[]
  instances?: number
  idleTimeoutMs?: number
  /** Clients allowed (xinetd's only_from), as CIDR blocks or addresses; others are refused. Absent: everyone. */
  onlyFrom?: readonly string[]
  /** A line per connection and per refusal. */
  log?: (line: string) => void
  /** Clock for the services' answers (tests). */
  now?: () => number
}

export interface Listening {
  service: ServiceName
  protocol: 'tcp' | 'udp'
  port: number
}

export interface Inetd {
  listening: Listening[]
  close(): Promise<void>
}

/** A TCP connection with its idle timer. */
class Tracked {
  readonly socket: Socket
  readonly timer: WheelTimer<Tracked>

  constructor(socket: Socket) {
    this.socket = socket
    this.timer = new WheelTimer(this)
  }
}

export async function startInetd(options: InetdOptions = {}): Promise<Inetd> {
  const host = options.host ?? INETD_DEFAULTS.host
  const offset = options.portOffset ?? INETD_DEFAULTS.portOffset
  const instances = options.instances ?? INETD_DEFAULTS.instances
  const idleMs = options.idleTimeoutMs ?? INETD_DEFAULTS.idleTimeoutMs
  const log = options.log ?? (() => {})
  const allowed = options.onlyFrom === undefined ? null : allowList(options.onlyFrom)
  const permitted = (address: string | undefined): boolean => {
    if (allowed === null) return true
    if (address === undefined) return false
    // An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d; it is checked as IPv4.
    const plain = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address
    return allowed.check(plain, isIPv6(plain) ? 'ipv6' : 'ipv4')
  }
  const now = options.now ?? Date.now
  const scheduler = new Scheduler<Tracked>({
    onExpire: (tracked) => {
      log(`${describe(tracked.socket)} idle for ${idleMs} ms: closed`)
      tracked.socket.destroy()
    },
  })
  const servers: net.Server[] = []
  const sockets: dgram.Socket[] = []
  const open = new Set<Socket>()
  const listening: Listening[] = []
  try {
    for (const service of options.services ?? SERVICE_NAMES) {
      const port = STANDARD_PORTS[service] + offset
      let active = 0
      const server = net.createServer((socket) => {
        socket.on('error', () => {})
        if (!permitted(socket.remoteAddress)) {
          log(`tcp ${service} from ${describe(socket)}: refused, not in only_from`)
          socket.destroy()
          return
        }
        if (active >= instances) {
          log(`tcp ${service} from ${describe(socket)}: refused, ${instances} instances running`)
          socket.destroy()
          return
        }
        active++
        open.add(socket)
        const tracked = new Tracked(socket)
        scheduler.armIn(tracked.timer, idleMs)
        const touch = (): void => {
          tracked.timer.deadline = scheduler.now + idleMs
        }
        socket.on('data', touch)
        socket.on('drain', touch)
        const from = describe(socket)
        log(`tcp ${service} from ${from}: connected`)
        socket.on('close', () => {
          active--
          open.delete(socket)
          scheduler.cancel(tracked.timer)
          log(`tcp ${service} from ${from}: closed, ${socket.bytesRead} bytes in, ${socket.bytesWritten} out`)
        })
        serveTcp(service, socket, now)
      })
      servers.push(server)
      await listen(server, host, port)
      listening.push({ service, protocol: 'tcp', port })

      const udp = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' })
      udp.on('error', (err) => log(`udp ${service}: ${err.message}`))
      udp.on('message', (datagram, peer) => {
        if (!permitted(peer.address)) return
        const answer = answerUdp(service, datagram, now)
        if (answer !== null) udp.send(answer, peer.port, peer.address)
      })
      sockets.push(udp)
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject)
        udp.bind(port, host, () => {
          udp.off('error', reject)
          resolve()
        })
      })
      listening.push({ service, protocol: 'udp', port })
    }
  } catch (err) {
    await closeAll(servers, sockets, open, scheduler)
    throw err
  }
  return { listening, close: () => closeAll(servers, sockets, open, scheduler) }
}

/**
 * A net.BlockList of the allowed clients. Throws a RangeError naming the entry that is neither an
 * address nor a CIDR block.
 */
export function allowList(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList()
  for (const entry of entries) {
    const [address, bits] = entry.split('/')
    const family = isIPv6(address!) ? 'ipv6' : net.isIPv4(address!) ? 'ipv4' : null
    const prefix = bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits)
    if (family === null || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv6' ? 128 : 32) || (bits !== undefined && !/^\d+$/.test(bits))) {
      throw new RangeError(`${JSON.stringify(entry)} is not an address or CIDR block (e.g. 127.0.0.1, 10.0.0.0/8, ::1)`)
    }
    list.addSubnet(address!, prefix, family)
  }
  return list
}

function describe(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`
}

function listen(server: net.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host, port }, () => {
      server.off('error', reject)
      resolve()
    })
  })
}

async function closeAll(servers: net.Server[], sockets: dgram.Socket[], open: Set<Socket>, scheduler: Scheduler<Tracked>): Promise<void> {
  for (const socket of open) socket.destroy()
  scheduler.close()
  await Promise.all([
    ...servers.map((server) => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))),
    ...sockets.map((socket) => new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve())
      } catch {
        resolve()
      }
    })),
  ])
}
