// A worker process's side of the supervisor (supervisor.ts): one event loop, started and stopped
// over IPC. A program's worker module (`petrel serve`'s, `petrel chat`'s) calls runWorker
// with how to start; the lifecycle — the start message, privilege drop once bound,
// graceful and fast stops, reopening logs, handed-over connections, signals, the supervisor
// going away — is the same for every program. A worker never decides on its own to stop
// serving except when the supervisor is gone.

import type { AddressInfo, Socket } from 'node:net'
import type { FromWorker, StartMessage, ToWorker } from './messages.ts'
import { dropPrivileges } from './privileges.ts'
import { PetrelError } from '../core/errors.ts'

/** What a started worker runs. */
export interface RunningWorker {
  address: AddressInfo
  /** Listeners besides the main one (chat's web side), passed to the supervisor in this order. */
  others?: AddressInfo[]
  /** Stop: 'quit' finishes in-flight work (an idle connection may stay `idleGraceMs`), 'stop' cuts it. A second call during a 'quit' is a 'stop'. */
  close(how: 'quit' | 'stop', idleGraceMs: number): Promise<void>
  reopenLogs?(): Promise<void>
  /** A connection the supervisor accepted (no reusePort). */
  handOver?(socket: Socket): void
}

export interface WorkerProgram<Options> {
  start(message: StartMessage<Options>): Promise<RunningWorker>
  /** A message of the program's own from the supervisor. */
  onMessage?(message: { type: string }): void
}

/** Send to the supervisor; a supervisor that is gone makes the send fail (EPIPE): the callback takes it, and 'disconnect' stops us. */
export function sendToSupervisor<Message extends { type: string }>(message: Message, then: () => void = () => {}): void {
  if (process.connected) process.send!(message, undefined, undefined, then)
  else then()
}

/** The line a user reads for a failed start, and the error's code when it has one. */
function failure(err: Error): FromWorker {
  return err instanceof PetrelError ? { type: 'failed', message: err.message, code: err.code } : { type: 'failed', message: err.message }
}

/** Tell the supervisor why, and exit once the message is out (an exit at once could lose it). */
function exitFailed(message: FromWorker): void {
  sendToSupervisor(message, () => process.exit(1))
}

export function runWorker<Options>(program: WorkerProgram<Options>): void {
  let running: RunningWorker | null = null
  let idleGraceMs = 1000
  let stopping = false

  const stop = async (how: 'quit' | 'stop', idleGrace = 0): Promise<void> => {
    // A second stop only matters as a fast stop during a graceful one: close() then cuts what is
    // left, and the first call goes on to exit.
    const first = !stopping
    stopping = true
    // Every log line of the work just finished is written before exit.
    if (running !== null) await running.close(how, idleGrace)
    if (first) process.exit(0)
  }

  process.on('message', (message: ToWorker<Options>, handle?: Socket) => {
    switch (message.type) {
      case 'connection':
        if (handle !== undefined) {
          if (running?.handOver !== undefined && !stopping) running.handOver(handle)
          else handle.destroy()
        }
        return
      case 'start':
        idleGraceMs = message.idleGraceMs
        program.start(message).then(
          (started) => {
            running = started
            // Bound first, as root if need be; only then give the privileges up.
            try {
              if (message.runAs !== null) dropPrivileges(message.runAs)
            } catch (err) {
              exitFailed({
                type: 'failed',
                message: `cannot switch to user ${message.runAs!.user}: ${(err as Error).message}`,
                code: 'PETREL_ERR_WORKER_START',
              })
              return
            }
            sendToSupervisor({ type: 'listening', address: started.address, others: started.others } satisfies FromWorker)
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
        void running?.reopenLogs?.()
        return
      default:
        program.onMessage?.(message)
    }
  })

  // Ctrl-C in a terminal reaches the whole process group; the supervisor decides what happens.
  process.on('SIGINT', () => {})
  // A worker signalled on its own (an operator, a supervisor) finishes its work and exits; the
  // supervisor replaces it.
  process.on('SIGTERM', () => void stop('quit'))
  process.on('SIGQUIT', () => void stop('quit'))
  // Without a supervisor nobody would replace or stop this worker: finish politely and go.
  process.on('disconnect', () => void stop('quit'))
}
