// `petrel chat --workers N`: one room over N worker processes. Every worker listens on the port
// with SO_REUSEPORT, so the kernel spreads clients over them; the master holds no client. It
// holds the room's directory (who is in, on which worker, the seat limit) and relays events: a
// line a worker publishes goes to every other worker over the IPC channel, and each delivers it
// to its own clients. A worker that dies is replaced (with backoff when it keeps dying); its
// members are dropped from the directory and the others see them leave.
//
// Why a relay through the master rather than a shared ring buffer: a ring in a SharedArrayBuffer
// needs worker threads, and a thread that crashes takes the process with it, where a process
// only loses its own clients. The relay costs one IPC message per line per other worker; the
// chat benchmark (docs/chat.md) measures what that leaves.

import { fork, type ChildProcess } from 'node:child_process'
import type { ChatOptions } from './room.ts'
import { Directory, type Hub, type RoomEvent } from './hub.ts'
import { PetrelError } from '../../core/errors.ts'
import { moduleUrl } from '../../core/module-url.ts'

const WORKER_MAIN = moduleUrl('./worker-main.ts', import.meta.url)

/** A worker that keeps dying waits this long before the next start, doubling up to the maximum. */
const RESTART_DELAY_MS = 100
const MAX_RESTART_DELAY_MS = 10_000
/** A worker that lived longer than this is healthy again: the delay starts over. */
const HEALTHY_AFTER_MS = 10_000
/** After `stop`, a worker still running this long is killed. */
const STOP_GRACE_MS = 3_000

/** The worker's settings: what ChatOptions holds that survives IPC (no hub, no log function). */
export type WorkerSettings = Omit<ChatOptions, 'hub' | 'log' | 'reusePort'> & { host: string; port: number; redis?: string; room?: string }

export type ToChatWorker =
  | { t: 'start'; settings: WorkerSettings }
  | { t: 'ev'; e: RoomEvent }
  | { t: 'res'; id: number; v: unknown }
  | { t: 'stop' }

export type FromChatWorker =
  | { t: 'listening'; port: number }
  | { t: 'failed'; message: string }
  | { t: 'pub'; e: RoomEvent }
  | { t: 'req'; id: number; op: 'join' }
  | { t: 'req'; id: number; op: 'rename'; from: string; to: string }
  | { t: 'req'; id: number; op: 'who' }
  | { t: 'req'; id: number; op: 'exists'; nick: string }
  | { t: 'leave'; nick: string }

interface Worker {
  index: number
  child: ChildProcess
  startedAt: number
  leaving: boolean
  /** Messages sent in a row while its channel's backlog was over Node's threshold. */
  backlogged: number
}

/**
 * Sends to a worker whose channel is closing fail with EPIPE (a worker exiting while the master
 * relays another's departure); the callback takes the error instead of an 'error' event nobody handles.
 */
function ignoreSendError(): void {}

/**
 * A worker that has not read its channel for this many relayed lines in a row is stalled: it is
 * killed (and replaced) rather than let the master queue every line of the room for it.
 */
const MAX_BACKLOGGED_MESSAGES = 10_000

export interface ClusterOptions {
  workers: number
  settings: WorkerSettings
  log: (line: string) => void
}

export class ChatCluster {
  private readonly options: ClusterOptions
  private readonly directory: Directory
  private readonly workers = new Map<number, Worker>()
  private readonly restartDelay = new Map<number, number>()
  private nextId = 1
  private stopping = false
  /** Every worker started once: from then on a worker that fails to start is retried. */
  private running = false
  private readonly respawns = new Set<NodeJS.Timeout>()
  port = 0

  constructor(options: ClusterOptions) {
    this.options = options
    this.directory = new Directory(options.settings.maxUsers ?? Number.MAX_SAFE_INTEGER)
  }

  get pids(): number[] {
    return [...this.workers.values()].map((w) => w.child.pid!)
  }

  /** Start the workers; the first binds (port 0 picks one), the rest join it on its port. */
  async start(): Promise<number> {
    this.port = await this.spawn(0, this.options.settings.port)
    await Promise.all(Array.from({ length: this.options.workers - 1 }, (_, i) => this.spawn(i + 1, this.port)))
    this.running = true
    return this.port
  }

  private respawn(index: number): void {
    if (this.stopping) return
    this.spawn(index, this.port).catch((err: Error) => this.options.log(err.message))
  }

  async stop(): Promise<void> {
    this.stopping = true
    for (const timer of this.respawns) clearTimeout(timer)
    this.respawns.clear()
    await Promise.all([...this.workers.values()].map((w) => this.stopWorker(w)))
  }

  private spawn(index: number, port: number): Promise<number> {
    const child = fork(WORKER_MAIN, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' })
    // Every start is a new node of the directory, so when a worker dies exactly its members go.
    const node = this.nextId++
    const worker: Worker = { index, child, startedAt: Date.now(), leaving: false, backlogged: 0 }
    this.workers.set(node, worker)
    return new Promise((resolve, reject) => {
      let started = false
      child.on('message', (message: FromChatWorker) => {
        switch (message.t) {
          case 'listening':
            started = true
            this.options.log(`worker ${index} (pid ${child.pid}) listening on ${message.port}`)
            return resolve(message.port)
          case 'failed':
            // The worker's message already names what failed and what to do (a listen error).
            return reject(new PetrelError('PETREL_ERR_WORKER_START', message.message))
          case 'pub':
            return this.relay(node, message.e)
          case 'leave':
            return this.directory.leave(node, message.nick)
          case 'req':
            return this.answer(worker, node, message)
        }
      })
      child.on('exit', (code, signal) => {
        this.workers.delete(node)
        for (const nick of this.directory.dropNode(node)) this.relay(node, { line: `* ${nick} left`, except: nick })
        if (!started) {
          reject(new PetrelError('PETREL_ERR_WORKER_START', `worker ${index} exited before listening (${signal ?? `code ${code}`})`))
          // A replacement that failed to start (Redis down a moment) is retried like a crash;
          // only the first start's failure is the caller's to report.
          if (!this.running || this.stopping) return
        } else if (this.stopping || worker.leaving) return
        const lived = Date.now() - worker.startedAt
        const delay = lived > HEALTHY_AFTER_MS ? RESTART_DELAY_MS : Math.min((this.restartDelay.get(index) ?? RESTART_DELAY_MS / 2) * 2, MAX_RESTART_DELAY_MS)
        this.restartDelay.set(index, delay)
        this.options.log(`worker ${index} (pid ${child.pid}) exited (${signal ?? `code ${code}`}); a new one in ${delay} ms`)
        // Not unref'd: while every worker is dead this timer is what keeps the master running.
        const timer = setTimeout(() => {
          this.respawns.delete(timer)
          this.respawn(index)
        }, delay)
        this.respawns.add(timer)
      })
      child.send({ t: 'start', settings: { ...this.options.settings, port } } satisfies ToChatWorker, ignoreSendError)
    })
  }

  /** A line published by `from` to every other worker. */
  private relay(from: number, event: RoomEvent): void {
    const message: ToChatWorker = { t: 'ev', e: event }
    for (const [node, worker] of this.workers) {
      if (node === from || !worker.child.connected) continue
      // send() is false while the channel's backlog is over Node's threshold: the worker is behind.
      if (worker.child.send(message, ignoreSendError)) worker.backlogged = 0
      else if (++worker.backlogged === MAX_BACKLOGGED_MESSAGES) {
        this.options.log(`worker ${worker.index} (pid ${worker.child.pid}) has not read ${MAX_BACKLOGGED_MESSAGES} lines in a row; killing it`)
        worker.child.kill('SIGKILL')
      }
    }
  }

  private answer(worker: Worker, node: number, request: Extract<FromChatWorker, { t: 'req' }>): void {
    let value: unknown
    switch (request.op) {
      case 'join':
        value = this.directory.join(node)
        break
      case 'rename':
        value = this.directory.rename(node, request.from, request.to)
        break
      case 'who':
        value = this.directory.who()
        break
      case 'exists':
        value = this.directory.exists(request.nick)
        break
    }
    if (worker.child.connected) worker.child.send({ t: 'res', id: request.id, v: value } satisfies ToChatWorker, ignoreSendError)
  }

  private stopWorker(worker: Worker): Promise<void> {
    worker.leaving = true
    if (worker.child.exitCode !== null || worker.child.signalCode !== null) return Promise.resolve()
    return new Promise((resolve) => {
      const kill = setTimeout(() => worker.child.kill('SIGKILL'), STOP_GRACE_MS)
      worker.child.once('exit', () => {
        clearTimeout(kill)
        resolve()
      })
      if (worker.child.connected) worker.child.send({ t: 'stop' } satisfies ToChatWorker, ignoreSendError)
      else worker.child.kill('SIGTERM')
    })
  }
}

/** A worker's view of the master's directory and relay, over the IPC channel. */
export class IpcHub implements Hub {
  onEvent: (event: RoomEvent) => void = () => {}
  private readonly waiting = new Map<number, (value: unknown) => void>()
  private nextId = 0

  /** The worker's message handler passes the master's answers and events here. */
  receive(message: ToChatWorker): void {
    if (message.t === 'ev') this.onEvent(message.e)
    else if (message.t === 'res') {
      const resolve = this.waiting.get(message.id)
      this.waiting.delete(message.id)
      resolve?.(message.v)
    }
  }

  private ask<T>(request: DistributiveOmit<Extract<FromChatWorker, { t: 'req' }>, 'id'>): Promise<T> {
    if (!process.connected) return Promise.reject(new Error('the master is gone'))
    const id = ++this.nextId
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (value: unknown) => void)
      process.send!({ ...request, id }, undefined, undefined, ignoreSendError)
    })
  }

  join(): Promise<string | null> {
    return this.ask({ t: 'req', op: 'join' })
  }

  rename(from: string, to: string): Promise<boolean> {
    return this.ask({ t: 'req', op: 'rename', from, to })
  }

  leave(nick: string): void {
    if (process.connected) process.send!({ t: 'leave', nick } satisfies FromChatWorker, undefined, undefined, ignoreSendError)
  }

  who(): Promise<string[]> {
    return this.ask({ t: 'req', op: 'who' })
  }

  exists(nick: string): Promise<boolean> {
    return this.ask({ t: 'req', op: 'exists', nick })
  }

  publish(event: RoomEvent): void {
    if (process.connected) process.send!({ t: 'pub', e: event } satisfies FromChatWorker, undefined, undefined, ignoreSendError)
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
