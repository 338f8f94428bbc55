// The master process, as nginx's: it serves no requests and knows no application. A program
// (`petrel serve`) gives it the worker module to run and its options, whose
// type is the master's type parameter; the master starts N workers through the supervisor
// (supervisor.ts: start timeout, restart backoff, retire then SIGKILL), and acts on signals (signals.ts: a handler only sets a flag, one loop acts on them):
//
//   SIGHUP   reload: load the configuration again, then replace workers one at a time — the
//            new worker listens before the old one stops accepting. A configuration that fails
//            to load leaves the running workers alone. A new listening address is bound by the
//            first new worker (or the master's shared socket); if it cannot be, the reload is
//            refused.
//   SIGTERM, SIGINT   fast stop: workers cut their connections and exit.
//   SIGQUIT  graceful stop: workers finish in-flight requests (up to timeouts.shutdownMs).
//   SIGUSR1  reopen log files: the master (still root) creates them and gives them to the
//            workers' user first, then every worker reopens them.
//
// Workers listen themselves with reusePort where the kernel has it; elsewhere the master
// accepts (reading nothing) and hands each connection to a worker, round-robin.

import { hostPort, systemFailure } from '../core/system-failure.ts'
import net from 'node:net'
import { PetrelError } from '../core/errors.ts'
import { DEFAULT_LIMITS } from '../core/limits.ts'
import { prepareLogFile } from '../core/log-file.ts'
import { HandOverListener } from './listener.ts'
import type { MetricsReport, ToWorker } from './messages.ts'
import { removePidfile, writePidfile } from './pidfile.ts'
import { describeOpenFilesLimit, lookupUser, type RunAs } from './privileges.ts'
import { planReload, refusedReloadLine, type ProgramOptions } from './reload.ts'
import { SignalLoop } from './signals.ts'
import { Supervisor, type SupervisedWorker } from './supervisor.ts'
import type { MetricsBoard } from '../monitor/board.ts'
import type { Admin } from '../monitor/admin.ts'

export interface MasterOptions<Options extends ProgramOptions> {
  /** The program's worker module (it calls process/worker.ts runWorker): data, so the master imports no application. */
  workerModule: URL
  workers: number
  /** How long a worker may take to listen (supervisor.ts's default when absent). */
  startTimeoutMs?: number
  options: Options
  /**
   * The options one worker starts with, made at its start from the master's: for what changes
   * with time or must not stay in the master's copy (serve's current ticket secret). Default:
   * the options as they are.
   */
  workerOptions?: (options: Options) => Options
  /** Loads the configuration again for a reload; throws when it is invalid. */
  reload: () => Promise<Options>
  pidFile?: string
  /** How long an idle keep-alive connection of a retiring worker may stay before it is closed. */
  idleGraceMs?: number
  /** The user (and group) workers switch to after binding; null keeps the master's. */
  runAs: RunAs | null
  /** Called once every worker listens (the daemon's parent waits for it). */
  onReady?: () => void
  log: (line: string) => void
}

/** After a stop message, SIGKILL follows this long after shutdownMs. */
const KILL_GRACE_MS = 2_000

export class Master<Options extends ProgramOptions> {
  private readonly config: MasterOptions<Options>
  /** What workers are started with; a requested port 0 is already resolved to one port here. */
  private options: Options
  /** The address as the configuration asks for it (port 0 included): a reload compares with this. */
  private configured: { host: string; port: number }
  private readonly supervisor: Supervisor<Options, MetricsReport>
  /** Where reusePort is not available: the one listening socket, accepted here and handed over. */
  private shared: HandOverListener | null = null
  private nextWorker = 0
  private reusePort = true
  private readonly signals: SignalLoop
  private stopping = false
  private exitResolve: ((code: number) => void) | null = null
  /** With --admin: every worker's figures (loaded only then, as the admin is). */
  private board: MetricsBoard | null = null
  private admin: Admin | null = null
  /** The workers' user id, when the master is root and hands log files over to them. */
  private readonly logOwnerUid: number | undefined

  constructor(config: MasterOptions<Options>) {
    this.config = config
    this.options = config.options
    this.supervisor = new Supervisor<Options, MetricsReport>({
      workerModule: config.workerModule,
      startMessage: (slot) => ({
        type: 'start',
        options: this.config.workerOptions === undefined ? this.options : this.config.workerOptions(this.options),
        reusePort: this.reusePort,
        handedOver: this.shared === null ? null : this.shared.address,
        idleGraceMs: this.config.idleGraceMs ?? 1000,
        runAs: this.config.runAs,
        worker: slot,
      }),
      startTimeoutMs: config.startTimeoutMs,
      startFailureCode: 'PETREL_ERR_WORKER_START',
      onMessage: (worker, message) => {
        if (message.type === 'metrics') this.board?.update(String(worker.child.pid), message.snapshot)
      },
      onExit: (worker) => this.board?.retire(String(worker.child.pid)),
      log: (line) => this.config.log(`petrel[master]: ${line}`),
    })
    this.configured = { host: config.options.host, port: config.options.port }
    this.signals = new SignalLoop({
      reload: () => this.rollingReload(),
      reopen: async () => this.reopen(),
      stop: (how) => this.stop(how),
      stopInterruptsReload: true,
    })
    const uid = config.runAs === null || process.getuid?.() !== 0 ? undefined : lookupUser(config.runAs.user)?.uid
    this.logOwnerUid = uid === 0 ? undefined : uid
  }

  /** Start the workers; resolves with the exit code once the master has stopped. Start-up failures reject (PetrelError). */
  async run(): Promise<number> {
    this.signals.listen()
    let pidfileWritten = false
    try {
      if (this.config.pidFile !== undefined) {
        writePidfile(this.config.pidFile)
        pidfileWritten = true
      }
      this.prepareLogs(this.options)
      await this.chooseListenMode()
      for (let i = 0; i < this.config.workers; i++) await this.supervisor.start()
      const where = this.options.admin
      if (where !== undefined) {
        const [{ MetricsBoard }, { startAdmin }] = await Promise.all([import('../monitor/board.ts'), import('../monitor/admin.ts')])
        const board = (this.board = new MetricsBoard())
        this.admin = await startAdmin({
          ...where,
          board,
          pids: () => [process.pid, ...this.pids],
          log: (line) => this.config.log(`petrel[master]: ${line}`),
        }).catch((err: Error) => {
          throw (
            systemFailure(err, `open the admin listener on ${hostPort(where.host, where.port)}`) ??
            new PetrelError('PETREL_ERR_LISTEN', `admin listener ${hostPort(where.host, where.port)}: ${err.message}`, { cause: err })
          )
        })
        this.config.log(
          `petrel[master]: admin (dashboard, /metrics) on ${where.tls === undefined ? 'http' : 'https'}://${hostPort(where.host, this.admin.address.port)}/`,
        )
      }
    } catch (err) {
      // The caller tells the error (one line, as for a single process); the workers stop first.
      await this.stopAll('stop')
      await this.shared?.close()
      this.signals.dispose()
      if (pidfileWritten) removePidfile(this.config.pidFile!)
      throw err
    }
    this.config.log(`petrel[master]: ${describeOpenFilesLimit(this.options.limits?.maxConnections ?? DEFAULT_LIMITS.maxConnections)}`)
    this.config.log(
      `petrel[master]: ${this.config.workers} worker(s) serving ${this.options.tls === undefined ? 'http' : 'https'}://${this.options.host}:${this.options.port}/ (${this.reusePort ? 'reusePort: each worker listens, the kernel spreads connections' : 'no reusePort here: the master accepts and hands each connection to a worker'}; pid ${process.pid})`,
    )
    this.config.onReady?.()
    this.signals.start()
    return new Promise((resolve) => (this.exitResolve = resolve))
  }

  get pids(): number[] {
    return this.supervisor.pids
  }

  private async stop(how: 'quit' | 'stop'): Promise<void> {
    if (this.stopping) {
      // A fast stop during a graceful one: the workers cut what they still finish.
      this.config.log('petrel[master]: fast stop')
      for (const w of this.supervisor.workers) this.supervisor.tell(w, { type: 'stop' } satisfies ToWorker<Options>)
      return
    }
    this.config.log(`petrel[master]: ${how === 'stop' ? 'fast stop' : 'graceful stop'}`)
    await this.stopAll(how)
    await this.admin?.close()
    this.cleanup()
    this.exitResolve?.(0)
  }

  /**
   * The log files, opened (created if need be) by the master and made the workers' user's when
   * the master is root: workers that gave root up could not create or open them on a reopen.
   */
  private prepareLogs(options: Options): void {
    if (this.logOwnerUid === undefined) return
    for (const file of [options.logs?.accessLog, options.logs?.errorLog]) if (file !== undefined) prepareLogFile(file, this.logOwnerUid)
  }

  private reopen(): void {
    try {
      this.prepareLogs(this.options)
    } catch (err) {
      // The workers still try; each keeps its old file when the path cannot be opened, and says so.
      this.config.log(`petrel[master]: reopen: ${(err as Error).message}`)
    }
    for (const w of this.supervisor.workers) this.supervisor.tell(w, { type: 'reopen' } satisfies ToWorker<Options>)
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
    this.shared = await this.listenShared(this.options)
    this.options = { ...this.options, port: this.shared.address.port }
  }

  /**
   * The fallback's socket. Connections are accepted paused (nothing is read here) and handed to
   * a worker round-robin, as Node's cluster module does by default. A handed-over listening
   * socket would keep accepting in the master too, and Node has no public way to listen
   * without accepting.
   */
  private listenShared(options: Options): Promise<HandOverListener> {
    return HandOverListener.open({
      host: options.host,
      port: options.port,
      pauseOnConnect: true,
      onConnection: (socket) => this.handOver(socket),
      onAcceptError: (err) => this.config.log(`petrel[master]: ${err.message}`),
    })
  }

  /** Fallback mode: give an accepted connection to the next ready worker that is not leaving. */
  private handOver(socket: net.Socket): void {
    const ready = [...this.supervisor.workers].filter((w) => w.ready && !w.leaving && w.child.connected)
    if (ready.length === 0) {
      socket.destroy()
      return
    }
    const worker = ready[this.nextWorker++ % ready.length]!
    this.supervisor.tell(worker, { type: 'connection' } satisfies ToWorker<Options>, socket, (err) => {
      if (err) socket.destroy()
    })
  }

  /**
   * New configuration, then each worker replaced by one started with it. A stop interrupts it
   * (SignalHandlers.stopInterruptsReload): after each step that waits, a stop under way ends it.
   */
  private async rollingReload(): Promise<void> {
    const refuse = (why: string): void => this.config.log(`petrel[master]: ${refusedReloadLine('the running workers keep the old configuration', why)}`)
    const plan = await planReload(this.config.reload, this.options, this.configured, (line) => this.config.log(`petrel[master]: ${line}`), refuse)
    if (plan === null || this.stopping) return
    const before = { options: this.options, shared: this.shared }
    let options = plan.moved ? plan.options : { ...plan.options, host: this.options.host, port: this.options.port }
    try {
      this.prepareLogs(options)
      if (plan.moved && this.shared !== null) {
        // The new socket first: if the address is taken, nothing has changed yet.
        this.shared = await this.listenShared(options)
        options = { ...options, port: this.shared.address.port }
      } else if (plan.moved && options.port === 0) {
        options = { ...options, port: await freePort(options.host) }
      }
    } catch (err) {
      refuse((err as Error).message)
      return
    }
    if (this.stopping) {
      if (this.shared !== before.shared) void this.shared?.close()
      this.shared = before.shared
      return
    }
    this.options = options
    const old = [...this.supervisor.workers]
    for (const [i, record] of old.entries()) {
      // An old worker that died meanwhile was replaced by the restart policy, with the new options.
      if (!this.supervisor.workers.has(record)) continue
      try {
        await this.supervisor.start()
      } catch (err) {
        // A stop retired the worker that was starting: not the reload's failure to report.
        if (this.stopping) return
        if (i === 0) {
          // Nothing was replaced yet (with reusePort this is where a new address turns out taken).
          this.options = before.options
          if (this.shared !== before.shared) {
            void this.shared?.close()
            this.shared = before.shared
          }
          refuse((err as Error).message)
        } else {
          // Some workers run the new configuration: it is the one in force (a replacement
          // worker starts with it), and a later reload compares with it.
          this.configured = plan.configured
          if (this.shared !== before.shared) void before.shared?.close()
          this.config.log(`petrel[master]: reload stopped, a new worker failed: ${(err as PetrelError).message} [${(err as PetrelError).code}]`)
        }
        return
      }
      if (this.stopping) return
      // The old worker's own shutdown timeout, not the new configuration's: its requests run under the old one.
      await this.retire(record, 'retire', before.options)
      if (this.stopping) return
    }
    // An old worker that died while its successor was starting was replaced twice, by the policy
    // and by this loop: one too many, for good, unless retired.
    const serving = [...this.supervisor.workers].filter((w) => !w.leaving)
    for (const extra of serving.slice(this.config.workers)) await this.retire(extra, 'retire')
    let moved = ''
    if (plan.moved) {
      this.configured = plan.configured
      moved = `; now on ${options.tls === undefined ? 'http' : 'https'}://${options.host}:${options.port}/, the old address is closed`
      // The master's old socket, in the fallback mode: its connections were handed over long ago.
      if (this.shared !== before.shared) void before.shared?.close()
    }
    this.config.log(`petrel[master]: reloaded; workers ${this.pids.join(', ')}${moved}`)
  }

  /** Ask a worker to stop and wait for it; SIGKILL when it overstays its shutdown timeout and a grace. */
  private retire(worker: SupervisedWorker, how: 'quit' | 'stop' | 'retire', options: Options = this.options): Promise<void> {
    return this.supervisor.retire(worker, { type: how }, this.retireDeadlineMs(how, options))
  }

  private retireDeadlineMs(how: 'quit' | 'stop' | 'retire', options: Options = this.options): number {
    return (how === 'stop' ? 0 : (options.timeouts?.shutdownMs ?? 10_000)) + KILL_GRACE_MS
  }

  private stopAll(how: 'quit' | 'stop'): Promise<void> {
    this.stopping = true
    return this.supervisor.stopAll({ type: how }, this.retireDeadlineMs(how))
  }

  private cleanup(): void {
    void this.shared?.close()
    this.signals.dispose()
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
