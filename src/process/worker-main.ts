// A worker process: one event loop serving HTTP, started and stopped by the master over IPC.
// It never decides on its own to stop serving except when the master is gone.

import type { Socket } from 'node:net'
import { startServe, type Serving } from '../apps/serve/serve.ts'
import type { FromWorker, ToWorker } from './messages.ts'
import { dropPrivileges } from './privileges.ts'
import { PetrelError } from '../core/errors.ts'

let serving: Serving | null = null
let idleGraceMs = 1000
let stopping = false

function send(message: FromWorker, then: () => void = () => {}): void {
  // A master that is gone makes the send fail (EPIPE): the callback takes it, and 'disconnect' stops us.
  if (process.connected) process.send!(message, undefined, undefined, then)
  else then()
}

/** Tell the master why, and exit once the message is out (an exit at once could lose it). */
function exitFailed(message: FromWorker): void {
  send(message, () => process.exit(1))
}

async function stop(how: 'quit' | 'stop', idleGrace = 0): Promise<void> {
  // A second stop only matters as a fast stop during a graceful one: close() then cuts what is
  // left, and the first call goes on to exit.
  const first = !stopping
  stopping = true
  if (serving !== null) {
    // Every access-log line of the requests just finished is written before exit.
    await serving.close(how, idleGrace)
  }
  if (first) process.exit(0)
}

/** The line a user reads for a failed start, and the error's code when it has one. */
function failure(err: Error): FromWorker {
  return err instanceof PetrelError ? { type: 'failed', message: err.message, code: err.code } : { type: 'failed', message: err.message }
}

process.on('message', (message: ToWorker, handle?: Socket) => {
  switch (message.type) {
    case 'connection':
      if (handle !== undefined) {
        if (serving !== null && !stopping) serving.server.handOver(handle)
        else handle.destroy()
      }
      return
    case 'start':
      idleGraceMs = message.idleGraceMs
      startServe(message.options, {
        reusePort: message.reusePort,
        handedOver: message.handedOver ?? undefined,
        report: { worker: message.worker, send: (snapshot) => send({ type: 'metrics', snapshot }) },
      }).then(
        (s) => {
          serving = s
          // Bound first, as root if need be; only then give the privileges up.
          try {
            if (message.runAs !== null) dropPrivileges(message.runAs)
          } catch (err) {
            exitFailed({ type: 'failed', message: `cannot switch to user ${message.runAs!.user}: ${(err as Error).message}`, code: 'PETREL_ERR_WORKER_START' })
            return
          }
          send({ type: 'listening', address: s.address })
        },
        (err: Error) => exitFailed(failure(err)),
      )
      return
    case 'quit':
    case 'stop':
      void stop(message.type)
      return
    case 'retire':
      void stop('quit', idleGraceMs)
      return
    case 'reopen':
      void serving?.reopenLogs()
      return
  }
})

// Ctrl-C in a terminal reaches the whole process group; the master decides what happens.
process.on('SIGINT', () => {})
// A worker signalled on its own (an operator, a supervisor) finishes its requests and exits;
// the master replaces it.
process.on('SIGTERM', () => void stop('quit'))
process.on('SIGQUIT', () => void stop('quit'))
// Without a master nobody would replace or stop this worker: finish politely and go.
process.on('disconnect', () => void stop('quit'))
