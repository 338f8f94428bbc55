// A `petrel chat --workers N` worker: one event loop holding some of the room's clients,
// started and stopped by the master (cluster.ts) through the supervisor's worker side
// (process/worker.ts). Its hub is the master's relay, or Redis when the room spans machines.

import { CHAT_DEFAULTS, ChatRoom } from './room.ts'
import { openWeb } from './web.ts'
import { IpcHub, type ToChatWorker, type WorkerSettings } from './cluster.ts'
import type { Hub } from './hub.ts'
import { runWorker } from '../../process/worker.ts'

/** Whatever hangs on a stop (a hub that does not answer), the worker is gone this long after it. */
const CLOSE_BOUND_MS = 2_000

const ipc = new IpcHub()

runWorker<WorkerSettings>({
  async start(message) {
    const { host, port, redis, room: roomName, redisMaxReconnectMs, httpPort, ...options } = message.options
    const log = (line: string): void => console.error(`petrel chat[${process.pid}]: ${line}`)
    const hub: Hub =
      redis === undefined
        ? ipc
        : await import('./redis-hub.ts').then(({ RedisHub }) =>
            RedisHub.connect(redis, { room: roomName, maxUsers: options.maxUsers, maxReconnectMs: redisMaxReconnectMs, log }),
          )
    const room = new ChatRoom({ ...options, hub, reusePort: message.reusePort, log })
    const address = await room.listen(host, port)
    const web = await openWeb(room, host, httpPort, options.maxOutgoingBytes ?? CHAT_DEFAULTS.maxOutgoingBytes, message.reusePort)
    return {
      address,
      others: web === null ? [] : [web.address!],
      // A chat room has nothing in flight to finish: a graceful stop and a fast one both close it.
      close: async () => {
        setTimeout(() => process.exit(0), CLOSE_BOUND_MS).unref()
        await web?.close()
        await room.close()
      },
    }
  },
  onMessage: (message) => ipc.receive(message as ToChatWorker),
})
