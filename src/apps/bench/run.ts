// Run a benchmark: plan it, run one loop per thread (the first in this thread when there is only
// one), and merge what they measured.

import { Worker } from 'node:worker_threads'
import { PetrelError } from '../../core/errors.ts'
import { moduleUrl } from '../../core/module-url.ts'
import { LoadLoop, PROGRESS_SLOTS } from './loop.ts'
import { planLoops, type BenchOptions, type LoopPlan } from './plan.ts'
import { mergeResults, type BenchResult, type LoopResult } from './result.ts'

export interface Progress {
  /** False during the warm-up, whose counts are discarded. */
  measuring: boolean
  /** Seconds since the measured window began. */
  elapsedS: number
  requests: number
  errors: number
}

/** Run the benchmark described by `options`; `onProgress` is called about once a second. */
export async function runBench(options: BenchOptions, onProgress?: (progress: Progress) => void): Promise<BenchResult> {
  const plans = await planLoops(options)
  const shared = new Float64Array(new SharedArrayBuffer(plans.length * PROGRESS_SLOTS * Float64Array.BYTES_PER_ELEMENT))
  const views = plans.map((_, i) => shared.subarray(i * PROGRESS_SLOTS, (i + 1) * PROGRESS_SLOTS))
  const started = performance.now()
  const ticker =
    onProgress === undefined
      ? null
      : setInterval(() => {
          let requests = 0
          let errors = 0
          let measuring = true
          for (const view of views) {
            requests += view[0]!
            errors += view[1]!
            measuring &&= view[2] === 1
          }
          onProgress({ measuring, elapsedS: (performance.now() - started - options.warmupMs) / 1000, requests, errors })
        }, 1000)
  try {
    if (plans.length === 1) return mergeResults([await new LoadLoop(plans[0]!, views[0]).run()])
    // Threads take a while to load; they all start their loops together, so their measured
    // windows line up (a barrier: each reports ready, then all are told to go).
    const threads = plans.map((plan, i) => startThread(plan, views[i]!))
    await Promise.all(threads.map((t) => t.ready))
    for (const t of threads) t.go()
    return mergeResults(await Promise.all(threads.map((t) => t.result)))
  } finally {
    if (ticker !== null) clearInterval(ticker)
  }
}

interface Thread {
  /** Resolves once the thread has loaded and waits to be told to go. */
  ready: Promise<void>
  go(): void
  result: Promise<LoopResult>
}

function startThread(plan: LoopPlan, progress: Float64Array): Thread {
  const worker = new Worker(moduleUrl('./thread.ts', import.meta.url), { workerData: { plan, progress } })
  let readyResolve: () => void = () => {}
  const ready = new Promise<void>((resolve) => (readyResolve = resolve))
  const result = new Promise<LoopResult>((resolve, reject) => {
    let loop: LoopResult | null = null
    worker.on('message', (message: 'ready' | LoopResult) => {
      if (message === 'ready') readyResolve()
      else loop = message
    })
    const fail = (err: PetrelError): void => {
      // A thread that dies before it is ready must not leave the others waiting at the barrier.
      readyResolve()
      reject(err)
    }
    worker.once('error', (err: Error) => fail(new PetrelError('PETREL_ERR_BENCH_THREAD', err.message, { cause: err })))
    worker.once('exit', (code) => {
      if (loop !== null) resolve(loop)
      else fail(new PetrelError('PETREL_ERR_BENCH_THREAD', `thread exited with code ${code} before reporting`))
    })
  })
  return { ready, go: () => worker.postMessage('go'), result }
}
