// `petrel chat --workers N`: one room over N worker processes. Every worker listens on the port
// with SO_REUSEPORT, so the kernel spreads clients over them; the master holds no client. It
// holds the room's directory (who is in, on which worker, the seat limit) and relays events: a
// line a worker publishes goes to every other worker over the IPC channel, and each delivers it
// to its own clients. The workers' lifecycle is the supervisor's (process/supervisor.ts), the
// same as `petrel serve --workers`: a start timeout, a worker that dies replaced at once and with
// a doubling delay when it keeps dying, a stop that retires them then kills what overstays. A
// dead worker's members are dropped from the directory and the others see them leave.
//
// Why a relay through the master rather than a shared ring buffer: a ring in a SharedArrayBuffer
// needs worker threads, and a thread that crashes takes the process with it, where a process
// only loses its own clients. The relay costs one IPC message per line per other worker; the
// chat benchmark (docs/chat.md) measures what that leaves.

import type { ChatOptions } from './room.ts'
import { Directory, type Hub, type RoomEvent } from './hub.ts'
import { PetrelError } from '../../core/errors.ts'
import { moduleUrl } from '../../core/module-url.ts'
import { Supervisor, type SupervisedWorker } from '../../process/supervisor.ts'

/** The chat worker module the supervisor forks. */
const CHAT_WORKER_MODULE = moduleUrl('./worker.ts', import.meta.url)

/** The chat cluster's cap of the restart backoff (the supervisor's default is 30 s). */
const CHAT_MAX_RESTART_DELAY_MS = 10_000

/** After `stop`, a worker still running this long is killed (a worker bounds its own close at 2 s). */
const STOP_GRACE_MS = 3_000

/** The worker's settings: what ChatOptions holds that survives IPC (no hub, no log function). */
export type WorkerSettings = Omit<ChatOptions, 'hub' | 'log' | 'reusePort'> & {
  host: string
  port: number
  redis?: string
  room?: string
  /** The cap of the Redis reconnect backoff (RedisHub's maxReconnectMs). */
  redisMaxReconnectMs?: number
  /** The chat page and its WebSocket (web.ts) on this port; none when absent. */
  httpPort?: number
}

/** The room's own messages to a worker; the lifecycle (start, stop) is process/messages.ts's. */
export type ToChatWorker =
  /** A line another worker published, to deliver to this worker's clients. */
  | { type: 'event'; event: RoomEvent }
  /** The directory's answer to the worker's request `id`. */
  | { type: 'answer'; id: number; value: unknown }

export type FromChatWorker =
  | { type: 'publish'; event: RoomEvent }
  | { type: 'request'; id: number; op: 'join' }
  | { type: 'request'; id: number; op: 'rename'; from: string; to: string }
  | { type: 'request'; id: number; op: 'who' }
  | { type: 'request'; id: number; op: 'exists'; nick: string }
  | { type: 'leave'; nick: string }

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
  /** How long a worker may take to listen (its hub to connect): then it is killed and reported. */
  startTimeoutMs?: number
  log: (line: string) => void
}

export class ChatCluster {
  private readonly options: ClusterOptions
  private readonly directory: Directory
  private readonly supervisor: Supervisor<WorkerSettings, FromChatWorker>
  /** Per worker: messages sent in a row while its channel's backlog was over Node's threshold. */
  private readonly backlogged = new Map<SupervisedWorker, number>()
  port = 0
  /** The web side's port (the first worker binds it, as the room's); undefined without one. */
  httpPort: number | undefined

  constructor(options: ClusterOptions) {
    this.options = options
    this.port = options.settings.port
    this.httpPort = options.settings.httpPort
    this.directory = new Directory(options.settings.maxUsers ?? Number.MAX_SAFE_INTEGER)
    this.supervisor = new Supervisor<WorkerSettings, FromChatWorker>({
      workerModule: CHAT_WORKER_MODULE,
      serialization: 'advanced',
      // A room a worker short waits at most this long once the cause is gone (a Redis back after
      // its own reconnect, capped at 5 s): the cap the chat cluster had before the one supervisor.
      maxRestartDelayMs: CHAT_MAX_RESTART_DELAY_MS,
      // The first worker binds (port 0 picks one); every later one, replacements too, joins its port.
      startMessage: (slot) => ({
        type: 'start',
        options: { ...this.options.settings, port: this.port, httpPort: this.httpPort },
        reusePort: true,
        handedOver: null,
        idleGraceMs: 0,
        runAs: null,
        worker: slot,
      }),
      startTimeoutMs: options.startTimeoutMs,
      startFailureCode: 'PETREL_ERR_CHAT_WORKER_START',
      onReady: (worker, message) => this.options.log(`worker ${worker.slot} (pid ${worker.child.pid}) listening on ${message.address.port}`),
      onMessage: (worker, message) => this.receive(worker, message),
      onExit: (worker) => {
        // Every start is a new node of the directory (its pid), so when a worker dies exactly its members go.
        this.backlogged.delete(worker)
        const node = worker.child.pid!
        for (const nick of this.directory.dropNode(node)) this.relay(node, { line: `* ${nick} left`, except: nick })
      },
      log: options.log,
    })
  }

  get pids(): number[] {
    return this.supervisor.pids
  }

  /** Start the workers; the first binds (port 0 picks one), the rest join it on its port. */
  async start(): Promise<number> {
    const first = await this.supervisor.start()
    this.port = first.address!.port
    if (this.httpPort !== undefined) this.httpPort = first.others![0]!.port
    await Promise.all(Array.from({ length: this.options.workers - 1 }, () => this.supervisor.start()))
    return this.port
  }

  /** Retire every worker (their clients are told the room closes); SIGKILL for one that overstays. */
  stop(): Promise<void> {
    return this.supervisor.stopAll({ type: 'stop' }, STOP_GRACE_MS)
  }

  private receive(worker: SupervisedWorker, message: FromChatWorker): void {
    const node = worker.child.pid!
    switch (message.type) {
      case 'publish':
        return this.relay(node, message.event)
      case 'leave':
        return this.directory.leave(node, message.nick)
      case 'request':
        return this.answer(worker, node, message)
    }
  }

  /** A line published by `from` to every other worker. */
  private relay(from: number, event: RoomEvent): void {
    const message: ToChatWorker = { type: 'event', event }
    for (const worker of this.supervisor.workers) {
      if (worker.child.pid === from || !worker.child.connected) continue
      // send() is false while the channel's backlog is over Node's threshold: the worker is behind.
      if (worker.child.send(message, ignoreSendError)) this.backlogged.delete(worker)
      else {
        const behind = (this.backlogged.get(worker) ?? 0) + 1
        this.backlogged.set(worker, behind)
        if (behind === MAX_BACKLOGGED_MESSAGES) {
          this.options.log(
            new PetrelError(
              'PETREL_ERR_CHAT_WORKER_STALLED',
              `worker ${worker.slot} (pid ${worker.child.pid}) has not read ${MAX_BACKLOGGED_MESSAGES} lines in a row; killing it`,
            ).message,
          )
          worker.child.kill('SIGKILL')
        }
      }
    }
  }

  private answer(worker: SupervisedWorker, node: number, request: Extract<FromChatWorker, { type: 'request' }>): void {
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
    this.supervisor.tell(worker, { type: 'answer', id: request.id, value } satisfies ToChatWorker)
  }
}

/** A worker's view of the master's directory and relay, over the IPC channel. */
export class IpcHub implements Hub {
  onEvent: (event: RoomEvent) => void = () => {}
  private readonly waiting = new Map<number, (value: unknown) => void>()
  private nextId = 0

  /** The worker's message handler passes the master's answers and events here. */
  receive(message: ToChatWorker): void {
    if (message.type === 'event') this.onEvent(message.event)
    else if (message.type === 'answer') {
      const resolve = this.waiting.get(message.id)
      this.waiting.delete(message.id)
      resolve?.(message.value)
    }
  }

  private ask<T>(request: DistributiveOmit<Extract<FromChatWorker, { type: 'request' }>, 'id'>): Promise<T> {
    if (!process.connected) return Promise.reject(new Error('the master is gone'))
    const id = ++this.nextId
    return new Promise((resolve) => {
      this.waiting.set(id, resolve as (value: unknown) => void)
      process.send!({ ...request, id }, undefined, undefined, ignoreSendError)
    })
  }

  join(): Promise<string | null> {
    return this.ask({ type: 'request', op: 'join' })
  }

  rename(from: string, to: string): Promise<boolean> {
    return this.ask({ type: 'request', op: 'rename', from, to })
  }

  leave(nick: string): void {
    if (process.connected) process.send!({ type: 'leave', nick } satisfies FromChatWorker, undefined, undefined, ignoreSendError)
  }

  who(): Promise<string[]> {
    return this.ask({ type: 'request', op: 'who' })
  }

  exists(nick: string): Promise<boolean> {
    return this.ask({ type: 'request', op: 'exists', nick })
  }

  publish(event: RoomEvent): void {
    if (process.connected) process.send!({ type: 'publish', event } satisfies FromChatWorker, undefined, undefined, ignoreSendError)
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never
