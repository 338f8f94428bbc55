// Every process the harness starts goes through here, so that none outlives it: servers are
// stopped after each run, and on Ctrl-C, SIGTERM or a crash whatever is still running is
// killed and temporary files are removed before the harness exits.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'

const OUTPUT_TAIL_BYTES = 4096
const STOP_GRACE_MS = 3000

export interface Tracked {
  readonly child: ChildProcess
  readonly pid: number
  /** The last few KB of the child's stdout and stderr, interleaved, for error notes. */
  outputTail(): string
  /** All of stdout, when started with `keepStdout` (for tools that print a JSON result); else ''. */
  stdout(): string
  /** Resolves with the exit code (or signal name) once the child has exited. */
  readonly exited: Promise<string>
  hasExited(): boolean
}

const running = new Set<ChildProcess>()
const cleanups = new Set<() => void>()

/**
 * `showOutput` passes the child's output straight to the terminal instead of keeping its tail;
 * `keepStdout` also keeps all of stdout.
 */
export function startTracked(command: string, args: readonly string[], options: SpawnOptions = {}, showOutput = false, keepStdout = false): Tracked {
  const child = spawn(command, args, { ...options, stdio: showOutput ? ['ignore', 'inherit', 'inherit'] : ['ignore', 'pipe', 'pipe'] })
  running.add(child)
  let tail = ''
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES)
  }
  const stdoutChunks: Buffer[] = []
  child.stdout?.on('data', keep)
  if (keepStdout) child.stdout?.on('data', (chunk: Buffer) => stdoutChunks.push(chunk))
  child.stderr?.on('data', keep)
  let done = false
  const exited = new Promise<string>((resolve) => {
    // 'close' rather than 'exit': it fires after the output pipes are drained, so the tail is complete.
    child.once('close', (code, signal) => {
      done = true
      running.delete(child)
      resolve(signal ?? String(code))
    })
    child.once('error', (error) => {
      done = true
      running.delete(child)
      keep(Buffer.from(`${error.message}\n`))
      resolve('spawn-error')
    })
  })
  return {
    child,
    pid: child.pid ?? -1,
    outputTail: () => tail,
    stdout: () => Buffer.concat(stdoutChunks).toString('utf8'),
    exited,
    hasExited: () => done,
  }
}

/** SIGTERM, then SIGKILL if the process has not exited within the grace period. */
export async function stopTracked(tracked: Tracked): Promise<void> {
  if (tracked.hasExited()) return
  tracked.child.kill('SIGTERM')
  const timer = setTimeout(() => tracked.child.kill('SIGKILL'), STOP_GRACE_MS)
  await tracked.exited
  clearTimeout(timer)
}

/** Registers synchronous work (removing a temp dir) to run on any exit; returns its remover. */
export function onCleanup(cleanup: () => void): () => void {
  cleanups.add(cleanup)
  return () => {
    cleanups.delete(cleanup)
  }
}

function killEverythingNow(): void {
  for (const child of running) child.kill('SIGKILL')
  running.clear()
  for (const cleanup of cleanups) {
    try {
      cleanup()
    } catch {
      // Best effort: the process is exiting and there is nobody left to report to.
    }
  }
  cleanups.clear()
}

export function installExitHandlers(): void {
  process.on('exit', killEverythingNow)
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\n${signal}: stopping servers and exiting\n`)
      killEverythingNow()
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1))
    })
  }
}

/** Runs a short command to completion and returns its stdout+stderr (tools print versions to either). */
export async function capture(command: string, args: readonly string[], options: SpawnOptions = {}): Promise<{ code: string; output: string }> {
  const tracked = startTracked(command, args, options)
  const code = await tracked.exited
  return { code, output: tracked.outputTail().trim() }
}
