// Which datagrams a built-in UDP service answers, and a bounded account of those it drops.
//
// A UDP answer goes to whatever source the datagram names, and anyone can forge that source. One
// forged datagram from this server's echo port to its echo port makes echo answer itself for ever;
// from chargen's port to echo, the two answer each other at the speed of the loopback (tens of
// thousands of datagrams a second, a core at 100%). BSD inetd refuses a datagram whose source
// port is that of any built-in UDP service it runs ("loop request REFUSED", check_loop()), and
// xinetd one from a port below 1024 ("Possible Denial of Service attack", bad_port_check()):
// both are where the other end of a loop would be — Petrel's own ports (10000 + the standard port
// by default, so the first check matters most here), and the system's echo, chargen or DNS.
// Petrel does both, then the service's only_from, then a rate limit per client address: a loop
// through some other server's echo on an ordinary port dies at the limit, and a forger aiming
// answers at a victim gets at most `udp_rate` of them a second per service.
//
// Drops are counted, not logged one by one: the first after a quiet spell is logged at once with
// its detail, and while drops go on, one line every interval sums them up. A flood costs the log
// a line per interval, whatever its rate.

import type { BlockList } from 'node:net'
import type { RemoteInfo } from 'node:dgram'
import type { HeapTimer, Scheduler } from '../../core/timers/index.ts'
import type { WindowLimiter } from '../../core/window-limiter.ts'
import { permitted } from '../../core/allow-list.ts'

/** Ports below this are the system's (IPPORT_RESERVED): xinetd answers none of them over UDP. */
export const FIRST_UNRESERVED_PORT = 1024

/** Why a datagram was dropped: an index into the counters. */
const DROP = { loop: 0, reservedPort: 1, onlyFrom: 2, rate: 3, sendFailed: 4 } as const
type Drop = (typeof DROP)[keyof typeof DROP]

/** How each drop count reads in the summary line, by index (sendFailed is said apart). */
const DROP_LABELS = ['from our own service ports (loops)', `from ports below ${FIRST_UNRESERVED_PORT}`, 'not in only_from', 'over udp_rate']

/** The scheduler's one-off timers: all the guard needs of it. */
type Timers = Pick<Scheduler<unknown>, 'setTimeout' | 'clearTimeout'>

/** The part of a UDP listener the guard reads. */
export interface GuardedService {
  readonly name: string
  readonly udpRate: number
}

export class UdpGuard {
  /** Port of each UDP service this server runs, on any address, and its name: the loop check. */
  private ownPorts = new Map<number, string>()
  private readonly counts = [0, 0, 0, 0, 0]
  private summary: HeapTimer | null = null
  private readonly scheduler: Timers
  private readonly clock: () => number
  private readonly log: (line: string) => void
  private readonly intervalMs: number

  constructor(scheduler: Timers, clock: () => number, log: (line: string) => void, intervalMs: number) {
    this.scheduler = scheduler
    this.clock = clock
    this.log = log
    this.intervalMs = intervalMs
  }

  /** The UDP services running (or about to): their ports are never answered. */
  setOwnPorts(services: Iterable<{ name: string; port: number }>): void {
    const ports = new Map<number, string>()
    for (const { name, port } of services) if (!ports.has(port)) ports.set(port, name)
    this.ownPorts = ports
  }

  /** Whether `service` answers the datagram from `peer`; a drop is counted and reported. */
  admits(service: GuardedService, allowed: BlockList | null, limiter: WindowLimiter, peer: RemoteInfo): boolean {
    const port = peer.port
    let drop: Drop
    if (this.ownPorts.has(port)) drop = DROP.loop
    else if (port < FIRST_UNRESERVED_PORT) drop = DROP.reservedPort
    else if (!permitted(allowed, peer.address)) drop = DROP.onlyFrom
    else if (limiter.take(peer.address, this.clock()) > 0) drop = DROP.rate
    else return true
    if (this.summary !== null) {
      this.counts[drop]!++
      return false
    }
    this.report(`udp ${service.name} from ${peer.address}:${port}: dropped, ${this.reason(drop, service, port)}`)
    return false
  }

  /** An answer the kernel refused (no route, a firewall): counted like a drop. */
  sendFailed(service: string, err: Error): void {
    if (this.summary !== null) this.counts[DROP.sendFailed]!++
    else this.report(`udp ${service}: an answer could not be sent: ${err.message}`)
  }

  close(): void {
    if (this.summary !== null) this.scheduler.clearTimeout(this.summary)
    this.summary = null
  }

  private reason(drop: Drop, service: GuardedService, port: number): string {
    switch (drop) {
      case DROP.loop:
        return `its source port is that of ${this.ownPorts.get(port)} on this server (an answer would start a loop)`
      case DROP.reservedPort:
        return `its source port is below ${FIRST_UNRESERVED_PORT}, a system service's (an answer could start a loop)`
      case DROP.onlyFrom:
        return 'not in only_from'
      default:
        return `over udp_rate (${service.udpRate} answers a second to one address)`
    }
  }

  /** Log the first drop of a spell and start summing up the ones after it. */
  private report(line: string): void {
    this.log(`${line}; further drops are summed up every ${this.intervalMs / 1000} s`)
    this.summary = this.scheduler.setTimeout(this.intervalMs, summarize, this)
  }

  /** A summary of the interval just ended; the spell ends with an interval without drops. */
  summarize(): void {
    let dropped = 0
    const parts: string[] = []
    for (let i = 0; i < DROP_LABELS.length; i++) {
      if (this.counts[i] === 0) continue
      dropped += this.counts[i]!
      parts.push(`${this.counts[i]} ${DROP_LABELS[i]}`)
    }
    const failed = this.counts[DROP.sendFailed]!
    this.counts.fill(0)
    if (dropped === 0 && failed === 0) {
      this.summary = null
      return
    }
    const drops = dropped === 0 ? '' : ` dropped ${dropped} datagrams: ${parts.join(', ')}`
    const failures = failed === 0 ? '' : `${dropped === 0 ? '' : ';'} ${failed} answers could not be sent`
    this.log(`udp: in the last ${this.intervalMs / 1000} s,${drops}${failures}`)
    this.summary = this.scheduler.setTimeout(this.intervalMs, summarize, this)
  }
}

function summarize(guard: UdpGuard): void {
  guard.summarize()
}
