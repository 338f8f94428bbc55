// The one supervisor of worker processes, as nginx's process cycle: it knows no application. It
// forks a worker module given by URL, waits for it to say it listens (or why it could not, or
// gives up after a start timeout), replaces a worker that dies with one restart-backoff policy,
// and retires workers gracefully with a message, then SIGKILL when they overstay. `petrel serve
// --workers` (master.ts with serve's worker module) and `petrel chat --workers` (chat's
// cluster and worker module) are programs on top of it; what their workers
// say beyond the lifecycle (metrics, room events) goes to the program's `onMessage`.

import { fork, type ChildProcess } from 'node:child_process'
import type { AddressInfo, Socket } from 'node:net'
import { errorMessage, PetrelError, type ErrorCode } from '../core/errors.ts'
import type { FromWorker, StartMessage, ToWorker } from './messages.ts'

/** The restart policy: a worker that keeps dying young waits 100 ms, 200 ms, … up to this (by default). */
export const MAX_RESTART_DELAY_MS = 30_000
/** The first delay of a worker that keeps dying (the first death is replaced at once). */
const FIRST_RESTART_DELAY_MS = 100
/** A worker that served (listened) longer than this is healthy again: the next death in its slot is replaced at once. */
export const HEALTHY_AFTER_MS = 10_000
/** How long a worker may take to say it listens, by default. */
export const DEFAULT_START_TIMEOUT_MS = 15_000

/** A send to a worker whose channel is closing fails (EPIPE): the callback takes it instead of an unhandled 'error'. */
function ignoreSendError(): void {}

export interface SupervisedWorker {
  readonly child: ChildProcess
  /** The lowest number no other live worker has (the `worker` label of its metrics, chat's worker index). */
  readonly slot: number
  /** Listening (or ready for handed-over connections). */
  ready: boolean
  /** Where it listens, as it said; null until then. */
  address: AddressInfo | null
  /** Its other listeners, as it said (RunningWorker.others). */
  others?: AddressInfo[]
  /** Expected to exit: retiring after a reload, or stopping with the supervisor. */
  leaving: boolean
  /** When it said it listens (Date.now()); null before. Health is counted from here, not from the fork. */
  readyAt: number | null
}

export interface SupervisorOptions<Options, Up> {
  /** The worker module to fork: data, so that the supervisor imports no application. */
  workerModule: URL
  /** 'advanced' passes Maps, Sets and Buffers over IPC (chat's room events); JSON by default. */
  serialization?: 'json' | 'advanced'
  /** The start message for a new worker in `slot` (its options are read at each start: a reload changes them). */
  startMessage: (slot: number) => StartMessage<Options>
  /** How long a worker may take to listen before it is killed and its start reported failed. */
  startTimeoutMs?: number
  /** The cap of the restart backoff (MAX_RESTART_DELAY_MS by default). */
  maxRestartDelayMs?: number
  /** The code of a failed start whose worker gave none of its own. */
  startFailureCode: ErrorCode
  /** A message of the program's own (anything but `listening` and `failed`); `handle` is a passed socket. */
  onMessage?: (worker: SupervisedWorker, message: Up, handle: unknown) => void
  /** Any worker's exit, expected or not, before the restart policy acts. */
  onExit?: (worker: SupervisedWorker) => void
  /** A replacement that listens (the program may log it). */
  onReady?: (worker: SupervisedWorker, message: Extract<FromWorker, { type: 'listening' }>) => void
  /** One line for the operator, without a prefix: the program adds its own. */
  log: (line: string) => void
}

export class Supervisor<Options, Up extends { type: string } = never> {
  private readonly config: SupervisorOptions<Options, Up>
  private readonly live = new Set<SupervisedWorker>()
  /**
   * Per slot, the workers that died young in a row; reset by one that served past
   * HEALTHY_AFTER_MS. Per slot, so that one healthy worker's death does not reset the backoff of
   * another that keeps crashing.
   */
  private readonly quickDeaths = new Map<number, number>()
  /** Replacements waiting for their backoff delay: cleared by a stop. */
  private readonly restarts = new Set<NodeJS.Timeout>()
  private stopping = false

  constructor(config: SupervisorOptions<Options, Up>) {
    this.config = config
  }

  get workers(): ReadonlySet<SupervisedWorker> {
    return this.live
  }

  get pids(): number[] {
    return [...this.live].map((w) => w.child.pid!)
  }

  /**
   * Start a worker; resolves once it listens, rejects (PetrelError) when it says it could not,
   * exits first, or overstays the start timeout — then it is killed and not replaced: the caller
   * (a first start, a reload) decides. A replacement started by the restart policy is retried instead.
   */
  start(): Promise<SupervisedWorker> {
    return this.spawn(false)
  }

  private spawn(replacing: boolean): Promise<SupervisedWorker> {
    let slot = 0
    while ([...this.live].some((w) => w.slot === slot)) slot++
    let child: ChildProcess
    try {
      child = fork(this.config.workerModule, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: this.config.serialization ?? 'json' })
    } catch (err) {
      // The system refused the process itself (out of memory or processes): as a crash at once.
      const failure = new PetrelError(this.config.startFailureCode, `could not start a worker: ${errorMessage(err)}`, { cause: err })
      if (replacing) this.scheduleRestart(slot, `could not start a worker (${errorMessage(err)})`, 0)
      return Promise.reject(failure)
    }
    const worker: SupervisedWorker = { child, slot, ready: false, address: null, leaving: false, readyAt: null }
    this.live.add(worker)
    const startTimeoutMs = this.config.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS
    return new Promise((resolve, reject) => {
      // Settled once: a start that failed, or a worker that listened (its later exit is onExit's).
      let settled = false
      // The spawn itself failed (EMFILE, EAGAIN): Node emits 'error' and never 'exit'.
      let spawnFailed = false
      const timer = setTimeout(
        () => fail(new PetrelError(this.config.startFailureCode, `worker ${child.pid} did not start listening within ${startTimeoutMs} ms`)),
        startTimeoutMs,
      )
      const fail = (err: PetrelError): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        // A replacement that failed to start (Redis down a moment, a slow disk) is retried like
        // a crash, with the same backoff; only a start the caller asked for is the caller's to report.
        if (!replacing) worker.leaving = true
        // Reported once the worker is gone, so that a caller saying "nothing changed" is right.
        if (child.exitCode !== null || child.signalCode !== null || spawnFailed) reject(err)
        else {
          child.once('exit', () => reject(err))
          child.kill('SIGKILL')
        }
      }
      child.on('message', (message: FromWorker | Up, handle: unknown) => {
        if (message.type === 'listening') {
          if (settled) return
          settled = true
          const listening = message as Extract<FromWorker, { type: 'listening' }>
          worker.ready = true
          worker.readyAt = Date.now()
          worker.address = listening.address
          worker.others = listening.others
          clearTimeout(timer)
          this.config.onReady?.(worker, listening)
          resolve(worker)
        } else if (message.type === 'failed') {
          // The worker's own error, as the user would have met it in a single process.
          fail(startFailure(message as Extract<FromWorker, { type: 'failed' }>, this.config.startFailureCode))
        } else this.config.onMessage?.(worker, message as Up, handle)
      })
      child.on('exit', (code, signal) => {
        fail(new PetrelError(this.config.startFailureCode, `worker ${child.pid} exited before it listened (${signal ?? `code ${code}`})`))
        this.onExit(worker, code, signal)
      })
      // Without a listener an 'error' would end the supervisor, and every worker with it.
      child.on('error', (err) => {
        if (child.pid !== undefined) return this.config.log(`worker ${child.pid}: ${err.message}`)
        spawnFailed = true
        fail(new PetrelError(this.config.startFailureCode, `could not start a worker: ${err.message}`, { cause: err }))
        this.onExit(worker, null, null, err.message)
      })
      this.tell(worker, this.config.startMessage(slot))
    })
  }

  private onExit(worker: SupervisedWorker, code: number | null, signal: NodeJS.Signals | null, spawnError?: string): void {
    if (!this.live.delete(worker)) return
    this.config.onExit?.(worker)
    if (worker.leaving || this.stopping) return
    // An unexpected death: replace it at once, or after a doubling delay when it keeps dying.
    // Health counts from listening: a replacement killed by its start timeout never served.
    const served = worker.readyAt === null ? 0 : Date.now() - worker.readyAt
    const what = spawnError === undefined ? `worker ${worker.child.pid} exited (${signal ?? `code ${code}`})` : `could not start a worker (${spawnError})`
    this.scheduleRestart(worker.slot, what, served)
  }

  /** The restart policy for `slot`, whose worker is gone after serving `servedMs`: at once, or after a doubling delay. */
  private scheduleRestart(slot: number, what: string, servedMs: number): void {
    const deaths = servedMs > HEALTHY_AFTER_MS ? 1 : (this.quickDeaths.get(slot) ?? 0) + 1
    this.quickDeaths.set(slot, deaths)
    const delay = restartDelayMs(deaths, this.config.maxRestartDelayMs)
    this.config.log(`${what}; replacing it${delay > 0 ? ` in ${delay} ms` : ''}`)
    // Not unref'd: while every worker is dead this timer is what keeps the supervisor running.
    const timer = setTimeout(() => {
      this.restarts.delete(timer)
      if (this.stopping) return
      this.spawn(true).catch((err: PetrelError) => this.config.log(`${err.message} [${err.code}]`))
    }, delay)
    this.restarts.add(timer)
  }

  /**
   * Ask a worker to stop with `message` and resolve once it has exited; SIGKILL (and a line
   * saying so: whatever it still held is lost) when it is still running after `deadlineMs`.
   */
  retire(worker: SupervisedWorker, message: ToWorker<Options>, deadlineMs: number): Promise<void> {
    worker.leaving = true
    const child = worker.child
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.config.log(`worker ${child.pid} did not stop within ${deadlineMs} ms; killed (SIGKILL)`)
        child.kill('SIGKILL')
      }, deadlineMs)
      child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      // A worker whose channel is gone stops on 'disconnect' already; SIGTERM makes sure.
      if (child.connected) child.send(message, ignoreSendError)
      else child.kill('SIGTERM')
    })
  }

  /** Stop replacing workers and retire every one of them. */
  async stopAll(message: ToWorker<Options>, deadlineMs: number): Promise<void> {
    this.stopping = true
    for (const timer of this.restarts) clearTimeout(timer)
    this.restarts.clear()
    await Promise.all([...this.live].map((w) => this.retire(w, message, deadlineMs)))
  }

  /** Send a message to a worker whose channel is open; one that is closing loses it (it is on its way out). */
  tell(worker: SupervisedWorker, message: unknown, handle?: Socket, onSent: (err: Error | null) => void = ignoreSendError): boolean {
    if (!worker.child.connected) return true
    return worker.child.send(message as ToWorker<Options>, handle, undefined, onSent)
  }
}

/** The one restart-backoff policy: the first of a run of young deaths at once, then 100 ms doubling up to the cap. */
export function restartDelayMs(quickDeaths: number, maxMs: number = MAX_RESTART_DELAY_MS): number {
  return quickDeaths <= 1 ? 0 : Math.min(maxMs, FIRST_RESTART_DELAY_MS * 2 ** Math.min(quickDeaths - 2, 30))
}

/**
 * A worker's failed start as an error: with the worker's own code and line when it had one (an
 * address in use reads as it would from a single process), else the program's start-failure code.
 */
function startFailure(failed: Extract<FromWorker, { type: 'failed' }>, fallback: ErrorCode): PetrelError {
  if (failed.code === undefined) return new PetrelError(fallback, failed.message)
  const err = new PetrelError(failed.code)
  err.message = failed.message
  return err
}
