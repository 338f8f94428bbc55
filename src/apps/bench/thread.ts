// Entry point of a load-generator worker thread: say it is ready, wait for the word to go (all
// threads start together), run one loop's share and post the result back (the histogram crosses
// as a structured clone).

import { once } from 'node:events'
import { parentPort, workerData } from 'node:worker_threads'
import { LoadLoop } from './loop.ts'
import type { LoopPlan } from './plan.ts'

const { plan, progress } = workerData as { plan: LoopPlan; progress: Float64Array }
parentPort!.postMessage('ready')
await once(parentPort!, 'message')
const result = await new LoadLoop(plan, progress).run()
parentPort!.postMessage(result)
