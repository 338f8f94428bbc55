// --daemon: the book's daemon() (ch. 7.5) in Node terms. The process starts itself again,
// detached — a new session with no controlling terminal (libuv calls setsid), stdin from
// /dev/null, output to a log file — and the parent exits only once the child reports that it
// is serving, so `petrel serve --daemon` returning 0 means the server is up. A child that cannot
// start sends the parent the line it would have printed on a terminal (a taken port, a missing
// log directory, a held pidfile), and the parent prints it and exits 1: the daemon's output may
// go nowhere (/dev/null), and the operator must learn why where they typed the command.

import { spawn } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'
import { errorLine } from '../core/system-failure.ts'

/** What the detached child tells the waiting parent. */
type DaemonMessage = { type: 'ready' } | { type: 'failed'; line: string }

const DAEMON_ENV = 'PETREL_DAEMON_CHILD'
const READY_TIMEOUT_MS = 20_000

export function isDaemonChild(): boolean {
  return process.env[DAEMON_ENV] === '1'
}

/** In the detached child: tell the waiting parent the server is up, then let go of it. */
export function reportDaemonReady(): void {
  if (!isDaemonChild() || !process.connected) return
  process.send?.({ type: 'ready' } satisfies DaemonMessage)
  process.disconnect?.()
}

/**
 * In the detached child, when start-up failed: send the parent the one line a terminal would
 * have shown, and resolve once it is out (an exit before that could lose it). A bug (not a
 * PetrelError) is sent as its message alone; its stack goes to the daemon's log as usual.
 */
export function reportDaemonFailed(err: unknown): Promise<void> {
  if (!isDaemonChild() || !process.connected) return Promise.resolve()
  const line = errorLine(err) ?? `petrel: ${String((err as Error)?.message ?? err).split('\n')[0]}`
  return new Promise((resolve) => {
    process.send!({ type: 'failed', line } satisfies DaemonMessage, undefined, undefined, () => {
      process.disconnect?.()
      resolve()
    })
  })
}

/** In the parent: start the detached copy and wait for its word. Returns the exit code for the parent. */
export async function daemonize(logFile: string | undefined): Promise<number> {
  const out = openSync(logFile ?? '/dev/null', 'a')
  const child = spawn(process.execPath, process.argv.slice(1), {
    detached: true,
    stdio: ['ignore', out, out, 'ipc'],
    env: { ...process.env, [DAEMON_ENV]: '1' },
  })
  closeSync(out)
  return new Promise((resolve) => {
    const timer = setTimeout(
      () => finish(1, `petrel: the daemon did not report ready within ${READY_TIMEOUT_MS / 1000} s${logFile ? `; see ${logFile}` : ''}`),
      READY_TIMEOUT_MS,
    )
    const finish = (code: number, line: string): void => {
      clearTimeout(timer)
      ;(code === 0 ? console.log : console.error)(line)
      child.removeAllListeners()
      if (child.connected) child.disconnect()
      child.unref()
      resolve(code)
    }
    child.on('message', (message: DaemonMessage) => {
      if (message.type === 'failed') finish(1, message.line)
      else finish(0, `petrel: running in the background (pid ${child.pid})`)
    })
    child.on('exit', (code, signal) => finish(1, `petrel: the daemon exited during start-up (${signal ?? `code ${code}`})${logFile ? `; see ${logFile}` : ''}`))
  })
}
