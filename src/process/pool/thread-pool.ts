// The logic unit as a thread pool (book ch. 8.5, 14, 15): CPU-heavy work leaves the event loop
// for worker threads, and the loop goes on answering everything else — half-sync/half-async,
// with the queue in between bounded.
//
// Piscina does the pooling (it is the field's standard, kept by Node.js collaborators): a
// bounded queue, transfer lists, cancellation through AbortSignal — a queued task leaves the
// queue, a running one loses its thread, which Piscina replaces. Petrel adds what a server needs
// around it: a per-task timeout, the client's disconnect as cancellation (res.signal), and
// errors from the project's table, so an overflow answers 503 instead of 500.

import type { Piscina } from 'piscina'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { PetrelError } from '../../core/errors.ts'
import { moduleUrl } from '../../core/module-url.ts'

type PiscinaRunOptions = NonNullable<Parameters<Piscina['run']>[1]>

export const POOL_DEFAULTS = {
  /** Tasks waiting for a thread, per thread, before run() refuses more. */
  queuePerThread: 16,
  taskTimeoutMs: 30_000,
  /** A thread idle this long exits (the pool keeps at least one). */
  idleTimeoutMs: 30_000,
  /** Nice value of the pool's threads: they yield the CPU to the event loop (see pool-thread.ts). */
  nice: 10,
} as const

export interface ThreadPoolOptions {
  /** The module the threads load; its default export (or `name` per task) runs each task. */
  filename: string | URL
  /** Threads at most (default: one per CPU). */
  threads?: number
  /** Tasks waiting for a thread before run() fails with PETREL_ERR_POOL_QUEUE_FULL (503). */
  maxQueue?: number
  /** A task not finished this long after run() (queue wait included) fails with PETREL_ERR_POOL_TIMEOUT (503); a running one loses its thread. */
  taskTimeoutMs?: number
  idleTimeoutMs?: number
  /** Scheduling priority of the threads, -20 to 19 (default 10: below the event loop's 0). */
  nice?: number
}

export interface RunOptions {
  /** Cancels the task: pass `res.signal`, so a client that leaves takes its work with it. */
  signal?: AbortSignal
  /** ArrayBuffers moved to the thread instead of copied. */
  transferList?: ArrayBuffer[]
  /** This task's timeout instead of the pool's. */
  timeoutMs?: number
  /** A named export of the module instead of the default one. */
  name?: string
}

export class ThreadPool {
  readonly threads: number
  readonly maxQueue: number
  readonly taskTimeoutMs: number
  private readonly piscina: Piscina

  constructor(options: ThreadPoolOptions) {
    this.threads = options.threads ?? availableParallelism()
    this.maxQueue = options.maxQueue ?? this.threads * POOL_DEFAULTS.queuePerThread
    this.taskTimeoutMs = options.taskTimeoutMs ?? POOL_DEFAULTS.taskTimeoutMs
    // The thread module imports it: give it a URL, not a path relative to some directory.
    const filename =
      options.filename instanceof URL
        ? options.filename.href
        : /^[a-z][a-z0-9+.-]*:/i.test(options.filename)
          ? options.filename
          : pathToFileURL(path.resolve(options.filename)).href
    // Loaded with the first pool (require(), so no ESM wrapper either): a server without a pool
    // route never holds Piscina's code (see docs/process.md, "Memory").
    const { Piscina: Pool } = createRequire(import.meta.url)('piscina') as typeof import('piscina')
    this.piscina = new Pool({
      filename: moduleUrl('./pool-thread.ts', import.meta.url).href,
      workerData: { filename, nice: options.nice ?? POOL_DEFAULTS.nice },
      minThreads: 1,
      maxThreads: this.threads,
      maxQueue: this.maxQueue,
      idleTimeout: options.idleTimeoutMs ?? POOL_DEFAULTS.idleTimeoutMs,
    })
  }

  /** Tasks waiting for a thread. */
  get queued(): number {
    return this.piscina.queueSize
  }

  /** Tasks finished since the pool started. */
  get completed(): number {
    return this.piscina.completed
  }

  /** Run `task` on a thread; resolves with what the module's function returned. */
  async run<T>(task: unknown, options: RunOptions = {}): Promise<T> {
    // Piscina's own maxQueue also counts capacity of threads still starting, so it can let more
    // wait than asked; the bound is kept here, exactly.
    // With no queue at all (maxQueue 0), Piscina's own check refuses only when no thread is free.
    if (this.maxQueue > 0 && this.piscina.queueSize >= this.maxQueue) throw new PetrelError('PETREL_ERR_POOL_QUEUE_FULL', `${this.maxQueue} tasks waiting`)
    const timeoutMs = options.timeoutMs ?? this.taskTimeoutMs
    const timeout = AbortSignal.timeout(timeoutMs)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
    try {
      // Piscina derives its TransferList type from MessagePort.postMessage's parameters, which
      // @types/node 26 declares differently; an ArrayBuffer list is what both accept at run time.
      const transferList = options.transferList as unknown as PiscinaRunOptions['transferList']
      return (await this.piscina.run({ task, name: options.name }, { signal, transferList })) as T
    } catch (err) {
      const error = err as Error
      if (error.name === 'AbortError') {
        // The client's reason (PETREL_ERR_CONNECTION_CLOSED) passes through: nobody to answer.
        if (options.signal?.aborted) throw options.signal.reason
        if (timeout.aborted) throw new PetrelError('PETREL_ERR_POOL_TIMEOUT', `${timeoutMs} ms, waiting in the queue included`, { cause: error })
      }
      if (error.message === 'Task queue is at limit' || error.message.startsWith('No task queue available')) {
        throw new PetrelError('PETREL_ERR_POOL_QUEUE_FULL', `${this.maxQueue} tasks waiting`, { cause: error })
      }
      throw error
    }
  }

  /** Finish what is running and queued, then stop the threads. */
  async close(): Promise<void> {
    await this.piscina.close()
  }

  /** Stop the threads now; running and queued tasks fail. */
  async destroy(): Promise<void> {
    await this.piscina.destroy()
  }
}
