// `petrel serve` as a real process for the process-model tests: started with a pidfile in a temp
// directory, its output collected, and killed (with its workers) after the test.

import { fileURLToPath } from 'node:url'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

export const BIN = fileURLToPath(new URL('../../bin/petrel.js', import.meta.url))

export interface Running {
  child: ChildProcess
  port: number
  pidFile: string
  /** The temp directory of this run (the pidfile's). */
  dir: string
  /** Everything it printed so far, stdout and stderr together. */
  log: () => string
}

/**
 * Start `petrel serve --pid FILE ARGS` and wait for its start-up line (a master's or a single
 * process's). `--port 0` is added unless the arguments or a --config file set the port
 * (`portFromConfig`).
 */
export async function startPetrel(
  t: { after: (fn: () => void) => void },
  args: string[],
  options: { env?: Record<string, string>; portFromConfig?: boolean } = {},
): Promise<Running> {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-proc-'))
  const pidFile = path.join(dir, 'petrel.pid')
  const portArgs = options.portFromConfig === true ? [] : ['--port', '0']
  const child = spawn(process.execPath, [BIN, 'serve', ...portArgs, '--pid', pidFile, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  })
  let log = ''
  child.stdout!.on('data', (d) => (log += d))
  child.stderr!.on('data', (d) => (log += d))
  t.after(() => {
    killTree(child)
    rmSync(dir, { recursive: true, force: true })
  })
  const deadline = Date.now() + 40_000
  while (Date.now() < deadline) {
    // The served URL (http or https), not the admin listener's, which a master names first.
    const m = /^(?!.*admin).*(?:serving|on) https?:\/\/127\.0\.0\.1:(\d+)\//m.exec(log)
    if (m) return { child, port: Number(m[1]), pidFile, dir, log: () => log }
    if (child.exitCode !== null) break
    await sleep(50)
  }
  throw new Error(`petrel serve did not start: ${log}`)
}

/** SIGKILL a process and its children (a master and its workers), whatever state they are in. */
export function killTree(child: ChildProcess): void {
  for (const pid of childPids(child.pid!))
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  child.kill('SIGKILL')
}

/** The child processes of `pid` (a master's workers). */
export function childPids(pid: number): number[] {
  const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
  return r.stdout.split('\n').filter(Boolean).map(Number)
}

export async function waitFor(what: string, predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

/** `petrel ARGS` run to its end. */
export function petrel(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 20_000 })
}

/** The exit code of `child`, once it has exited (at once when it already has). */
export async function exitCode(child: ChildProcess): Promise<number | null> {
  if (child.exitCode === null && child.signalCode === null) await new Promise((resolve) => child.once('exit', resolve))
  return child.exitCode
}
