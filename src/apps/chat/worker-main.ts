// A `petrel chat --workers N` worker: one event loop holding some of the room's clients,
// started and stopped by the master (cluster.ts). Its hub is the master's relay, or Redis when
// the room spans machines.

import { ChatRoom } from './room.ts'
import { IpcHub, type FromChatWorker, type ToChatWorker } from './cluster.ts'
import type { Hub } from './hub.ts'

let room: ChatRoom | null = null
const ipc = new IpcHub()

function send(message: FromChatWorker): void {
  // A master that is gone makes the send fail (EPIPE): the callback takes it, and 'disconnect' stops us.
  if (process.connected) process.send!(message, undefined, undefined, () => {})
}

async function stop(): Promise<void> {
  // Whatever hangs (a hub that does not answer), the worker is gone within 2 s.
  setTimeout(() => process.exit(0), 2_000).unref()
  await room?.close()
  process.exit(0)
}

process.on('message', (message: ToChatWorker) => {
  switch (message.t) {
    case 'start': {
      const { host, port, redis, room: roomName, ...options } = message.settings
      const log = (line: string): void => console.error(`petrel chat[${process.pid}]: ${line}`)
      const hubReady: Promise<Hub> = redis === undefined ? Promise.resolve(ipc) : import('./redis-hub.ts').then(({ RedisHub }) => RedisHub.connect(redis, { room: roomName, maxUsers: options.maxUsers, log }))
      hubReady
        .then((hub) => {
          room = new ChatRoom({ ...options, hub, reusePort: true, log })
          return room.listen(host, port)
        })
        .then(
          (address) => send({ t: 'listening', port: address.port }),
          (err: Error) => {
            send({ t: 'failed', message: err.message })
            process.exit(1)
          },
        )
      return
    }
    case 'stop':
      void stop()
      return
    default:
      ipc.receive(message)
  }
})

// The master is gone (killed, crashed): nobody relays or answers; stop.
process.on('disconnect', () => void stop())
process.on('SIGTERM', () => void stop())
process.on('SIGINT', () => {})
