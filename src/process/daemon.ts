// --daemon: the book's daemon() (ch. 7.5) in Node terms. The process starts itself again,
// detached — a new session with no controlling terminal (libuv calls setsid), stdin from
// /dev/null, output to a log file — and the parent exits only once the child reports that it
// is serving, so `petrel serve --daemon` returning 0 means the server is up.

import { spawn } from 'node:child_process'
import { openSync, closeSync } from 'node:fs'

const DAEMON_ENV = 'PETREL_DAEMON_CHILD'
const READY_TIMEOUT_MS = 20_000

export function isDaemonChild(): boolean {
  return process.env[DAEMON_ENV] === '1'
}

/** In the detached child: tell the waiting parent the server is up, then let go of it. */
export function reportDaemonReady(): void {
  if (!isDaemonChild() || !process.connected) return
  process.send?.({ type: 'ready' })
  process.disconnect?.()
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
    const timer = setTimeout(() => finish(1, `petrel: the daemon did not report ready within ${READY_TIMEOUT_MS / 1000} s${logFile ? `; see ${logFile}` : ''}`), READY_TIMEOUT_MS)
    const finish = (code: number, line: string): void => {
      clearTimeout(timer)
      ;(code === 0 ? console.log : console.error)(line)
      child.removeAllListeners()
      if (child.connected) child.disconnect()
      child.unref()
      resolve(code)
    }
    child.on('message', () => finish(0, `petrel: running in the background (pid ${child.pid})`))
    child.on('exit', (code) => finish(1, `petrel: the daemon exited during start-up (code ${code})${logFile ? `; see ${logFile}` : ''}`))
  })
}
