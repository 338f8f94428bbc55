// The master process, as nginx's: it serves no requests. It starts N workers, replaces one that
// dies, and acts on signals — which, as in ngx_process_cycle.c, only set flags; one loop
// (`act`) reads the flags and does the work, so a burst of signals never runs two actions at once.
//
//   SIGHUP   reload: load the configuration again, then replace workers one at a time — the
//            new worker listens before the old one stops accepting. A configuration that fails
//            to load leaves the running workers alone.
//   SIGTERM, SIGINT   fast stop: workers cut their connections and exit.
//   SIGQUIT  graceful stop: workers finish in-flight requests (up to timeouts.shutdownMs).
//   SIGUSR1  reopen log files.
//
// Workers listen themselves with reusePort where the kernel has it; elsewhere the master
// accepts (reading nothing) and hands each connection to a worker, round-robin.

import { fork, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import type { ServeOptions } from '../apps/serve/serve.ts'
import { DEFAULT_LIMITS } from '../core/limits.ts'
import type { FromWorker, ToWorker } from './messages.ts'
import { removePidfile, writePidfile } from './pidfile.ts'
import { describeOpenFilesLimit, type RunAs } from './privileges.ts'
import { MetricsBoard } from '../monitor/board.ts'
import { startAdmin, type Admin } from '../monitor/admin.ts'

const WORKER_MAIN = new URL('./worker-main.ts', import.meta.url)

/** A send to a worker whose channel is closing fails (EPIPE): the callback takes it instead of an unhandled 'error'. */
function ignoreSendError(): void {}

export interface MasterOptions {
  workers: number
  options: ServeOptions
  /** Loads the configuration again for a reload; throws when it is invalid. */
  reload: () => Promise<ServeOptions>
  pidFile?: string
  /** How long an idle keep-alive connection of a retiring worker may stay before it is closed. */
  idleGraceMs?: number
  /** The user (and group) workers switch to after binding; null keeps the master's. */
  runAs: RunAs | null
  /** Called once every worker listens (the daemon's parent waits for it). */
  onReady?: () => void
  log: (line: string) => void
}

interface WorkerRecord {
  child: ChildProcess
  /** The lowest number no other live worker has: the `worker` label of its metrics. */
  slot: number
  /** Listening (or ready for handed-over connections). */
  ready: boolean
  /** Expected to exit: retiring after a reload, or stopping with the master. */
  leaving: boolean
  startedAt: number
}

/** A worker that keeps dying is restarted after a delay that doubles up to this. */
const MAX_RESTART_DELAY_MS = 30_000
/** A worker that lived longer than this is considered healthy again. */
const HEALTHY_AFTER_MS = 10_000
/** How long a worker may take to start listening. */
const START_TIMEOUT_MS = 15_000
/** After a stop message, SIGKILL follows this long after shutdownMs. */
const KILL_GRACE_MS = 2_000

export class Master {
  private readonly config: MasterOptions
  private options: ServeOptions
  private readonly workers = new Set<WorkerRecord>()
  /** Where reusePort is not available: the one listening socket, accepted here and handed over. */
  private shared: net.Server | null = null
  private nextWorker = 0
  private reusePort = true
  /** Workers that died young, in a row; reset by one that lived past HEALTHY_AFTER_MS. */
  private quickDeaths = 0
  private readonly flags = { reload: false, quit: false, stop: false, reopen: false }
  private acting = false
  private stopping = false
  private exitResolve: ((code: number) => void) | null = null
  /** With --admin: every worker's figures, and the admin listener serving them. */
  private readonly board = new MetricsBoard()
  private admin: Admin | null = null

  constructor(config: MasterOptions) {
    this.config = config
    this.options = config.options
  }

  /** Start the workers; resolves with the exit code once the master has stopped. */
  async run(): Promise<number> {
    if (this.config.pidFile !== undefined) writePidfile(this.config.pidFile)
    try {
      await this.chooseListenMode()
      for (let i = 0; i < this.config.workers; i++) await this.spawn()
      const where = this.options.admin
      if (where !== undefined) {
        this.admin = await startAdmin({ ...where, board: this.board, pids: () => [process.pid, ...this.pids], log: (line) => this.config.log(`petrel[master]: ${line}`) }).catch((err: Error) => {
          throw new Error(`admin listener ${where.host}:${where.port}: ${err.message}`)
        })
        this.config.log(`petrel[master]: admin (dashboard, /metrics) on http://${where.host}:${this.admin.address.port}/`)
      }
    } catch (err) {
      this.config.log(`petrel[master]: ${(err as Error).message}; stopping`)
      await this.stopAll('stop')
      this.cleanup()
      return 1
    }
    this.config.log(`petrel[master]: ${describeOpenFilesLimit(this.options.limits?.maxConnections ?? DEFAULT_LIMITS.maxConnections)}`)
    this.config.log(`petrel[master]: ${this.config.workers} worker(s) serving http://${this.options.host}:${this.options.port}/ (${this.reusePort ? 'reusePort: each worker listens, the kernel spreads connections' : 'no reusePort here: the master accepts and hands each connection to a worker'}; pid ${process.pid})`)
    this.config.onReady?.()
    for (const [signal, flag] of [['SIGHUP', 'reload'], ['SIGTERM', 'stop'], ['SIGINT', 'stop'], ['SIGQUIT', 'quit'], ['SIGUSR1', 'reopen']] as const) {
      process.on(signal, () => this.raise(flag))
    }
    return new Promise((resolve) => (this.exitResolve = resolve))
  }

  get pids(): number[] {
    return [...this.workers].map((w) => w.child.pid!)
  }

  private raise(flag: keyof Master['flags']): void {
    this.flags[flag] = true
    setImmediate(() => void this.act())
  }

  /** The loop that acts on flags, one action at a time, most drastic first. */
  private async act(): Promise<void> {
    if (this.acting) return
    this.acting = true
    try {
      while (true) {
        const f = this.flags
        if (f.stop || f.quit) {
          const how = f.stop ? 'stop' : 'quit'
          f.stop = f.quit = f.reload = false
          this.config.log(`petrel[master]: ${how === 'stop' ? 'fast stop' : 'graceful stop'}`)
          await this.stopAll(how)
          await this.admin?.close()
          this.cleanup()
          this.exitResolve?.(0)
          return
        }
        if (f.reload) {
          f.reload = false
          await this.rollingReload()
          continue
        }
        if (f.reopen) {
          f.reopen = false
          for (const w of this.workers) this.tell(w, { type: 'reopen' })
          continue
        }
        return
      }
    } finally {
      this.acting = false
    }
  }

  /** reusePort where the kernel has it; else one socket, bound here and handed to every worker. */
  private async chooseListenMode(): Promise<void> {
    const { host } = this.options
    if (process.env.PETREL_LISTEN_MODE !== 'shared' && (await canReusePort(host))) {
      // Workers must agree on the port: a requested 0 is resolved once, here.
      if (this.options.port === 0) this.options = { ...this.options, port: await freePort(host) }
      return
    }
    this.reusePort = false
    // Connections are accepted paused (nothing is read here) and handed to a worker round-robin,
    // as Node's cluster module does by default. A handed-over listening socket would keep
    // accepting in the master too, and Node has no public way to listen without accepting.
    const server = net.createServer({ pauseOnConnect: true }, (socket) => this.handOver(socket))
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host, port: this.options.port, backlog: 511 }, () => resolve())
    })
    this.shared = server
    this.options = { ...this.options, port: (server.address() as net.AddressInfo).port }
  }

  /** Start a worker with the current options; resolves once it listens. */
  private spawn(): Promise<WorkerRecord> {
    const child = fork(WORKER_MAIN, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    let slot = 0
    while ([...this.workers].some((w) => w.slot === slot)) slot++
    const record: WorkerRecord = { child, slot, ready: false, leaving: false, startedAt: Date.now() }
    this.workers.add(record)
    child.on('exit', (code, signal) => this.onExit(record, code, signal))
    return new Promise((resolve, reject) => {
      // Settled once: a start that failed, or a worker that listened (its later exit is onExit's).
      let settled = false
      const timer = setTimeout(() => fail(new Error(`worker ${child.pid} did not start listening within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS)
      const fail = (err: Error): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        record.leaving = true
        child.kill('SIGKILL')
        reject(err)
      }
      child.on('message', (message: FromWorker) => {
        if (message.type === 'listening' && !settled) {
          settled = true
          record.ready = true
          clearTimeout(timer)
          resolve(record)
        } else if (message.type === 'metrics') {
          this.board.update(String(child.pid), message.snapshot)
        } else if (message.type === 'failed') {
          fail(new Error(`worker ${child.pid} could not start: ${message.message}`))
        }
      })
      child.once('exit', () => fail(new Error(`worker ${child.pid} exited before it listened`)))
      const handedOver = this.shared === null ? null : (this.shared.address() as net.AddressInfo)
      child.send({ type: 'start', options: this.options, reusePort: this.reusePort, handedOver, idleGraceMs: this.config.idleGraceMs ?? 1000, runAs: this.config.runAs, worker: slot } satisfies ToWorker, ignoreSendError)
    })
  }

  /** Fallback mode: give an accepted connection to the next ready worker that is not leaving. */
  private handOver(socket: net.Socket): void {
    const ready = [...this.workers].filter((w) => w.ready && !w.leaving && w.child.connected)
    if (ready.length === 0) {
      socket.destroy()
      return
    }
    const worker = ready[this.nextWorker++ % ready.length]!
    worker.child.send({ type: 'connection' } satisfies ToWorker, socket, (err) => {
      if (err) socket.destroy()
    })
  }

  private onExit(record: WorkerRecord, code: number | null, signal: NodeJS.Signals | null): void {
    this.workers.delete(record)
    this.board.retire(String(record.child.pid))
    if (record.leaving || this.stopping) return
    // An unexpected death: replace it at once, or after a doubling delay when it keeps dying.
    const lived = Date.now() - record.startedAt
    this.quickDeaths = lived > HEALTHY_AFTER_MS ? 0 : this.quickDeaths + 1
    // The first death is replaced at once; a worker that keeps dying waits 100 ms, 200 ms, … 30 s.
    const delay = this.quickDeaths <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 100 * 2 ** (this.quickDeaths - 2))
    this.config.log(`petrel[master]: worker ${record.child.pid} exited (${signal ?? `code ${code}`}); replacing it${delay > 0 ? ` in ${delay} ms` : ''}`)
    setTimeout(() => {
      if (this.stopping) return
      this.spawn().catch((err: Error) => this.config.log(`petrel[master]: ${err.message}`))
    }, delay)
  }

  /** New configuration, then each worker replaced by one started with it. */
  private async rollingReload(): Promise<void> {
    let next: ServeOptions
    try {
      next = await this.config.reload()
    } catch (err) {
      this.config.log(`petrel[master]: reload refused, the running workers keep the old configuration: ${(err as Error).message}`)
      return
    }
    if (next.host !== this.options.host || (next.port !== this.options.port && next.port !== 0)) {
      this.config.log('petrel[master]: reload cannot change the listening address; restart the server for that. Other settings are applied.')
    }
    this.options = { ...next, host: this.options.host, port: this.options.port }
    const old = [...this.workers]
    for (const record of old) {
      try {
        await this.spawn()
      } catch (err) {
        this.config.log(`petrel[master]: reload stopped, a new worker failed: ${(err as Error).message}`)
        return
      }
      record.leaving = true
      await this.retire(record, 'quit')
    }
    this.config.log(`petrel[master]: reloaded; workers ${this.pids.join(', ')}`)
  }

  /** Ask a worker to stop and wait for it; SIGKILL when it overstays. */
  private retire(record: WorkerRecord, how: 'quit' | 'stop'): Promise<void> {
    const child = record.child
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
    return new Promise((resolve) => {
      const deadline = (how === 'stop' ? 0 : this.options.timeouts?.shutdownMs ?? 10_000) + KILL_GRACE_MS
      const timer = setTimeout(() => child.kill('SIGKILL'), deadline)
      child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      this.tell(record, { type: how })
    })
  }

  private async stopAll(how: 'quit' | 'stop'): Promise<void> {
    this.stopping = true
    const all = [...this.workers]
    for (const w of all) w.leaving = true
    await Promise.all(all.map((w) => this.retire(w, how)))
  }

  private tell(record: WorkerRecord, message: ToWorker): void {
    if (record.child.connected) record.child.send(message, ignoreSendError)
  }

  private cleanup(): void {
    this.shared?.close()
    if (this.config.pidFile !== undefined) removePidfile(this.config.pidFile)
  }
}

async function canReusePort(host: string): Promise<boolean> {
  const probe = net.createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject)
      probe.listen({ host, port: 0, reusePort: true }, () => resolve())
    })
    return true
  } catch {
    return false
  } finally {
    probe.close()
  }
}

async function freePort(host: string): Promise<number> {
  const probe = net.createServer()
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject)
    probe.listen({ host, port: 0 }, () => resolve())
  })
  const { port } = probe.address() as net.AddressInfo
  await new Promise<void>((resolve) => probe.close(() => resolve()))
  return port
}
