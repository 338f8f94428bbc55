// Run a benchmark: plan it, run one loop per thread (the first in this thread when there is only
// one), and merge what they measured.

import { Worker } from 'node:worker_threads'
import { PetrelError } from '../../core/errors.ts'
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
    const results = await Promise.all(plans.map((plan, i) => (plans.length === 1 ? new LoadLoop(plan, views[i]).run() : runInThread(plan, views[i]!))))
    return mergeResults(results)
  } finally {
    if (ticker !== null) clearInterval(ticker)
  }
}

function runInThread(plan: LoopPlan, progress: Float64Array): Promise<LoopResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./thread.ts', import.meta.url), { workerData: { plan, progress } })
    let result: LoopResult | null = null
    worker.once('message', (message: LoopResult) => (result = message))
    worker.once('error', (err: Error) => reject(new PetrelError('PETREL_ERR_BENCH_THREAD', err.message, { cause: err })))
    worker.once('exit', (code) => {
      if (result !== null) resolve(result)
      else reject(new PetrelError('PETREL_ERR_BENCH_THREAD', `thread exited with code ${code} before reporting`))
    })
  })
}
