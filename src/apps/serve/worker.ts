// A `petrel serve --workers N` worker: one event loop serving HTTP, started and stopped by the
// master (process/master.ts) through the supervisor's worker side (process/worker.ts).

import { runWorker, sendToSupervisor } from '../../process/worker.ts'
import type { MetricsReport } from '../../process/messages.ts'
import { startServe, type ServeOptions } from './serve.ts'

runWorker<ServeOptions>({
  async start(message) {
    const serving = await startServe(message.options, {
      reusePort: message.reusePort,
      handedOver: message.handedOver ?? undefined,
      report: { worker: message.worker, send: (snapshot) => sendToSupervisor({ type: 'metrics', snapshot } satisfies MetricsReport) },
    })
    return {
      address: serving.address,
      close: (how, idleGraceMs) => serving.close(how, idleGraceMs),
      reopenLogs: () => serving.reopenLogs(),
      handOver: (socket) => serving.server.handOver(socket),
    }
  },
})
