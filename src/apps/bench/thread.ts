// Entry point of a load-generator worker thread: run one loop's share and post the result back
// (the histogram crosses as a structured clone).

import { parentPort, workerData } from 'node:worker_threads'
import { LoadLoop } from './loop.ts'
import type { LoopPlan } from './plan.ts'

const { plan, progress } = workerData as { plan: LoopPlan; progress: Float64Array }
const result = await new LoadLoop(plan, progress).run()
parentPort!.postMessage(result)
