// `petrel inetd`: a super-server in the manner of xinetd (book ch. 9.8) — one process listening
// for many small services, on TCP and UDP at the same port (ch. 9.7), and starting an external
// program per connection with the socket as its stdin and stdout.
//
// A listener is a socket keyed by (protocol, address, port). `apply()` moves the running server to
// a new list of services: listeners whose key stays are kept and take the new definition for the
// connections that come next, new keys are bound first — any failure there undoes the new ones
// and leaves everything as it was — and only then are the listeners no longer wanted closed. A
// closed listener stops accepting; its connections and programs run on to their natural end, so
// SIGHUP never drops anyone.
//
// Built-in TCP connections each have a timing-wheel timer (core/timers): activity moves the
// deadline later with a plain write, and a connection idle for the service's timeout is closed.
// `instances` bounds the connections of a listener; one more is closed at once, as xinetd does.
// A datagram is answered only when udp-guard.ts admits it: not from a port of ours or below 1024
// (loops), and within the service's answers per second to its address.

import net, { type Socket } from 'node:net'
import dgram from 'node:dgram'
import { spawn, type ChildProcess } from 'node:child_process'
import { Scheduler, WheelTimer } from '../../core/timers/index.ts'
import { WindowLimiter } from '../../core/window-limiter.ts'
import { allowList, permitted } from '../../core/allow-list.ts'
import { listenerKey, type Protocol, type ServiceConfig } from './config.ts'
import { DEFAULT_MAX_CONFIG_BYTES } from '../../core/config-file.ts'
import { answerUdp, CHARGEN_DATAGRAM_BYTES, serveTcp, SERVICE_NAMES, STANDARD_PORTS, type ServiceName } from './services.ts'
import { UdpGuard } from './udp-guard.ts'

export { allowList } from '../../core/allow-list.ts'

export const INETD_DEFAULTS = {
  host: '127.0.0.1',
  /** With no configuration each service listens at 10000 + its standard port: no root needed. */
  portOffset: 10_000,
  /** Connections per service at once. */
  instances: 64,
  idleTimeoutMs: 300_000,
  /** After SIGTERM on stop, programs still running this long get SIGKILL. */
  killGraceMs: 2_000,
  /** Longest stderr line of a program that is logged whole; the rest of a longer one is cut. */
  maxStderrLine: 4096,
  /** UDP answers a service sends to one client address per second (config key udp_rate). */
  udpRate: 20,
  /** Client addresses each UDP service's rate limit remembers; the oldest are forgotten first. */
  udpTrackedAddresses: 4096,
  /** Characters in chargen's answer to a datagram: one line. */
  udpChargenBytes: CHARGEN_DATAGRAM_BYTES,
  /** While UDP datagrams are being dropped, one log line sums them up this often. */
  dropLogIntervalMs: 10_000,
  /** The largest --config file read. */
  maxConfigBytes: DEFAULT_MAX_CONFIG_BYTES,
} as const

/** The window of the UDP rate limit: udpRate counts answers per second. */
const UDP_RATE_WINDOW_MS = 1000

export interface InetdOptions {
  host?: string
  portOffset?: number
  services?: readonly ServiceName[]
  instances?: number
  idleTimeoutMs?: number
  /** Clients allowed (xinetd's only_from), as CIDR blocks or addresses; others are refused. Absent: everyone. */
  onlyFrom?: readonly string[]
  /** UDP answers per second to one client address, per service (the default of config key udp_rate). */
  udpRate?: number
  /** Client addresses each UDP service's rate limit remembers at once (memory: about 120 bytes each for IPv4). */
  udpTrackedAddresses?: number
  /** Characters chargen sends in answer to a datagram, 0 to 512. */
  udpChargenBytes?: number
  /** How often a line sums up the UDP datagrams dropped while drops go on. */
  dropLogIntervalMs?: number
  /** A line per connection and per refusal. */
  log?: (line: string) => void
  /** Clock for the services' answers (tests). */
  now?: () => number
  /** Monotonic clock in ms for timeouts and rate limits; tests inject a fake one. */
  clock?: () => number
}

export interface Listening {
  service: string
  protocol: Protocol
  bind: string
  port: number
}

/** The built-in services as the flags describe them: what runs when there is no --config. */
export function builtinServices(options: InetdOptions = {}): ServiceConfig[] {
  const offset = options.portOffset ?? INETD_DEFAULTS.portOffset
  return (options.services ?? SERVICE_NAMES).map((name) => ({
    name,
    origin: 'flags',
    protocols: ['tcp', 'udp'],
    bind: options.host ?? INETD_DEFAULTS.host,
    port: STANDARD_PORTS[name] + offset,
    builtin: name,
    program: null,
    instances: options.instances ?? INETD_DEFAULTS.instances,
    onlyFrom: options.onlyFrom === undefined ? null : [...options.onlyFrom],
    idleTimeoutMs: options.idleTimeoutMs ?? INETD_DEFAULTS.idleTimeoutMs,
    udpRate: options.udpRate ?? INETD_DEFAULTS.udpRate,
  }))
}

/** Start the built-ins the options name (the no-config case). */
export function startInetd(options: InetdOptions = {}): Promise<Inetd> {
  return Inetd.start(builtinServices(options), options)
}

/** A built-in TCP connection with its idle timer. */
class Tracked {
  readonly socket: Socket
  readonly timer: WheelTimer<Tracked>
  readonly idleMs: number

  constructor(socket: Socket, idleMs: number) {
    this.socket = socket
    this.timer = new WheelTimer(this)
    this.idleMs = idleMs
  }
}

/** One listening socket and the service it serves now. */
class Listener {
  readonly key: string
  readonly protocol: Protocol
  service: ServiceConfig
  allowed: net.BlockList | null
  /**
   * TCP connections (built-in) or programs (external) running now — shared by every listener on
   * this key, so one removed and added back by reloads still counts what the old one started.
   */
  running: { n: number } = { n: 0 }
  tcp: net.Server | null = null
  udp: dgram.Socket | null = null
  /** UDP: answers per client address per second. A reload keeps the counts and takes the new limit. */
  readonly limiter: WindowLimiter

  constructor(protocol: Protocol, service: ServiceConfig, trackedAddresses: number) {
    this.protocol = protocol
    this.key = listenerKey(protocol, service.bind, service.port)
    this.service = service
    this.allowed = service.onlyFrom === null ? null : allowList(service.onlyFrom)
    this.limiter = new WindowLimiter({ limit: service.udpRate, windowMs: UDP_RATE_WINDOW_MS, maxKeys: protocol === 'udp' ? trackedAddresses : 1 })
  }

  swap(service: ServiceConfig): void {
    this.service = service
    this.allowed = service.onlyFrom === null ? null : allowList(service.onlyFrom)
    this.limiter.limit = service.udpRate
  }

  /**
   * Stop accepting; connections already made carry on. Resolves once the listening socket is
   * released — not when its connections end (net.Server's close callback), or a reload would wait
   * on a client that stays.
   */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.tcp !== null) {
        if (this.tcp.listening) this.tcp.close()
        resolve()
        return
      }
      try {
        this.udp!.close(() => resolve())
      } catch {
        resolve()
      }
    })
  }
}

export class Inetd {
  private readonly listeners = new Map<string, Listener>()
  /** Running counts by listener key, kept across reloads (see Listener.running). */
  private readonly runningByKey = new Map<string, { n: number }>()
  private readonly open = new Set<Socket>()
  private readonly programs = new Set<ChildProcess>()
  private readonly scheduler: Scheduler<Tracked>
  private readonly log: (line: string) => void
  private readonly now: () => number
  private readonly guard: UdpGuard
  private readonly udpTrackedAddresses: number
  private readonly udpChargenBytes: number

  private constructor(options: InetdOptions) {
    this.log = options.log ?? (() => {})
    this.now = options.now ?? Date.now
    this.udpTrackedAddresses = options.udpTrackedAddresses ?? INETD_DEFAULTS.udpTrackedAddresses
    this.udpChargenBytes = options.udpChargenBytes ?? INETD_DEFAULTS.udpChargenBytes
    this.scheduler = new Scheduler<Tracked>({
      onExpire: (tracked) => {
        this.log(`${describe(tracked.socket)} idle for ${tracked.idleMs} ms: closed`)
        tracked.socket.destroy()
      },
      ...(options.clock === undefined ? {} : { clock: options.clock }),
    })
    this.guard = new UdpGuard(
      this.scheduler,
      options.clock ?? (() => performance.now()),
      this.log,
      options.dropLogIntervalMs ?? INETD_DEFAULTS.dropLogIntervalMs,
    )
  }

  static async start(services: readonly ServiceConfig[], options: InetdOptions = {}): Promise<Inetd> {
    const inetd = new Inetd(options)
    try {
      await inetd.apply(services)
    } catch (err) {
      await inetd.close()
      throw err
    }
    return inetd
  }

  get listening(): Listening[] {
    return [...this.listeners.values()].map((l) => ({ service: l.service.name, protocol: l.protocol, bind: l.service.bind, port: l.service.port }))
  }

  /** Connections and programs running now, across all listeners (closed ones included). */
  get running(): number {
    return this.open.size + this.programs.size
  }

  /**
   * Serve `services` from now on. Throws (with the running set untouched) when a new address
   * cannot be bound; returns what changed.
   */
  async apply(services: readonly ServiceConfig[]): Promise<{ added: number; kept: number; removed: number }> {
    const wanted = new Map<string, { protocol: Protocol; service: ServiceConfig }>()
    for (const service of services)
      for (const protocol of service.protocols) wanted.set(listenerKey(protocol, service.bind, service.port), { protocol, service })
    // While old and new services both run, a datagram from the port of either is a loop.
    this.guard.setOwnPorts([...this.udpServices(), ...services.filter((s) => s.protocols.includes('udp'))])
    const fresh: Listener[] = []
    try {
      for (const [key, { protocol, service }] of wanted) if (!this.listeners.has(key)) fresh.push(await this.bind(protocol, service))
    } catch (err) {
      await Promise.all(fresh.map((l) => l.close()))
      this.guard.setOwnPorts(this.udpServices())
      throw err
    }
    let kept = 0
    for (const [key, { service }] of wanted) {
      const existing = this.listeners.get(key)
      if (existing !== undefined) {
        existing.swap(service)
        kept++
      }
    }
    const closing: Promise<void>[] = []
    for (const [key, listener] of this.listeners) {
      if (wanted.has(key)) continue
      this.listeners.delete(key)
      this.log(`${listener.service.name} on ${key}: no longer configured, stopped listening (${listener.running.n} still running)`)
      closing.push(listener.close())
    }
    for (const listener of fresh) this.listeners.set(listener.key, listener)
    this.guard.setOwnPorts(this.udpServices())
    await Promise.all(closing)
    return { added: fresh.length, kept, removed: closing.length }
  }

  async close(): Promise<void> {
    const closing = [...this.listeners.values()].map((l) => l.close())
    this.listeners.clear()
    for (const socket of this.open) socket.destroy()
    this.guard.close()
    this.scheduler.close()
    await Promise.all([...closing, ...[...this.programs].map((child) => stopProgram(child))])
  }

  /** The services of the UDP listeners running now. */
  private udpServices(): ServiceConfig[] {
    const services: ServiceConfig[] = []
    for (const listener of this.listeners.values()) if (listener.protocol === 'udp') services.push(listener.service)
    return services
  }

  private async bind(protocol: Protocol, service: ServiceConfig): Promise<Listener> {
    const listener = new Listener(protocol, service, this.udpTrackedAddresses)
    const running = this.runningByKey.get(listener.key) ?? { n: 0 }
    this.runningByKey.set(listener.key, running)
    listener.running = running
    try {
      if (protocol === 'tcp') {
        // Paused: an external program must find every byte the client sent still in the socket.
        const server = net.createServer({ pauseOnConnect: true }, (socket) => this.accept(listener, socket))
        listener.tcp = server
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          server.listen({ host: service.bind, port: service.port }, () => {
            server.off('error', reject)
            resolve()
          })
        })
      } else {
        const udp = dgram.createSocket({ type: net.isIPv6(service.bind) ? 'udp6' : 'udp4' })
        listener.udp = udp
        await new Promise<void>((resolve, reject) => {
          udp.once('error', reject)
          udp.bind(service.port, service.bind, () => {
            udp.off('error', reject)
            resolve()
          })
        })
        // After the bind, the errors a UDP socket reports are answers the kernel would not send.
        udp.on('error', (err) => this.guard.sendFailed(listener.service.name, err))
        udp.on('message', (datagram, peer) => this.answerDatagram(listener, datagram, peer))
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException
      e.message = `${service.name} (${service.origin}) on ${protocol} ${service.bind}:${service.port}: ${e.code === 'EADDRINUSE' ? 'address already in use' : e.message}`
      throw e
    }
    return listener
  }

  private answerDatagram(listener: Listener, datagram: Buffer, peer: dgram.RemoteInfo): void {
    const service = listener.service
    // discard answers nothing, so there is nothing to guard.
    if (service.builtin === null || service.builtin === 'discard') return
    if (!this.guard.admits(service, listener.allowed, listener.limiter, peer)) return
    const answer = answerUdp(service.builtin, datagram, this.now, this.udpChargenBytes)
    if (answer !== null) listener.udp!.send(answer, peer.port, peer.address)
  }

  private accept(listener: Listener, socket: Socket): void {
    socket.on('error', () => {})
    const service = listener.service
    const from = describe(socket)
    if (!permitted(listener.allowed, socket.remoteAddress)) {
      this.log(`tcp ${service.name} from ${from}: refused, not in only_from`)
      socket.destroy()
      return
    }
    if (listener.running.n >= service.instances) {
      this.log(`tcp ${service.name} from ${from}: refused, ${service.instances} instances running`)
      socket.destroy()
      return
    }
    listener.running.n++
    if (service.program !== null) return this.runProgram(listener, service, socket, from)
    this.open.add(socket)
    const tracked = new Tracked(socket, service.idleTimeoutMs)
    this.scheduler.armIn(tracked.timer, tracked.idleMs)
    const touch = (): void => {
      tracked.timer.deadline = this.scheduler.now + tracked.idleMs
    }
    socket.on('data', touch)
    socket.on('drain', touch)
    this.log(`tcp ${service.name} from ${from}: connected`)
    socket.on('close', () => {
      listener.running.n--
      this.open.delete(socket)
      this.scheduler.cancel(tracked.timer)
      this.log(`tcp ${service.name} from ${from}: closed, ${socket.bytesRead} bytes in, ${socket.bytesWritten} out`)
    })
    serveTcp(service.builtin!, socket, this.now)
  }

  /**
   * xinetd's `server`: the program gets the connection as stdin and stdout (the descriptor is
   * duplicated into it; Petrel closes its own copy at once and never reads), stderr to the log.
   * No shell; its own process group, so stopping it reaches anything it started.
   */
  private runProgram(listener: Listener, service: ServiceConfig, socket: Socket, from: string): void {
    const program = service.program!
    const started = performance.now()
    let child: ChildProcess
    try {
      child = spawn(program.path, program.args, {
        stdio: [socket, socket, 'pipe'],
        detached: true,
        env: {
          PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
          REMOTE_HOST: socket.remoteAddress ?? '',
          REMOTE_ADDR: socket.remoteAddress ?? '',
          REMOTE_PORT: String(socket.remotePort ?? ''),
          ...program.env,
        },
        ...(program.user === null ? {} : { uid: program.user.uid, gid: program.user.gid }),
      })
    } catch (err) {
      listener.running.n--
      socket.destroy()
      this.log(`tcp ${service.name} from ${from}: cannot start ${program.path}: ${(err as Error).message}`)
      return
    }
    socket.destroy()
    let done = false
    const finish = (outcome: string): void => {
      if (done) return
      done = true
      listener.running.n--
      this.programs.delete(child)
      this.log(`tcp ${service.name} from ${from}: ${outcome} after ${Math.round(performance.now() - started)} ms`)
    }
    child.on('error', (err) => {
      // A spawn that failed has no pid and emits no 'close' of its own.
      if (child.pid === undefined) finish(`cannot start ${program.path}: ${err.message}`)
    })
    if (child.pid === undefined) return
    this.programs.add(child)
    this.log(`tcp ${service.name} from ${from}: started ${program.path} pid ${child.pid}`)
    this.relayStderr(child, `${service.name}[${child.pid}]`)
    // 'exit', not 'close': a program that left a background process holding its stderr has still
    // ended, and its instance slot is free.
    child.on('exit', (code, signal) => finish(`pid ${child.pid} ${signal === null ? `exited with ${code}` : `killed by ${signal}`}`))
  }

  /** A program's stderr, line by line, to the log; a line longer than the limit is cut. */
  private relayStderr(child: ChildProcess, prefix: string): void {
    let pending = ''
    child.stderr!.setEncoding('utf8')
    child.stderr!.on('data', (text: string) => {
      pending += text
      let lf: number
      while ((lf = pending.indexOf('\n')) >= 0) {
        this.log(`${prefix}: ${pending.slice(0, Math.min(lf, INETD_DEFAULTS.maxStderrLine))}`)
        pending = pending.slice(lf + 1)
      }
      if (pending.length > INETD_DEFAULTS.maxStderrLine) {
        this.log(`${prefix}: ${pending.slice(0, INETD_DEFAULTS.maxStderrLine)} [cut]`)
        pending = ''
      }
    })
    child.stderr!.on('end', () => {
      if (pending !== '') this.log(`${prefix}: ${pending}`)
    })
  }
}

/** SIGTERM to the program's process group, SIGKILL after the grace period; resolves when it is gone. */
function stopProgram(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const signalGroup = (signal: NodeJS.Signals): void => {
      try {
        process.kill(-child.pid!, signal)
      } catch {}
    }
    const kill = setTimeout(() => signalGroup('SIGKILL'), INETD_DEFAULTS.killGraceMs)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    signalGroup('SIGTERM')
  })
}

function describe(socket: Socket): string {
  return `${socket.remoteAddress}:${socket.remotePort}`
}
