// The server's side of the CGI spawner (cgi-spawner-main.mjs): scripts are started by a small
// helper process, so that each fork copies its page tables and not the server's. A script is
// seen here as a ScriptProcess — its stdin stream, its output as events, its pid, 'exit' and
// 'error' — with its bytes relayed over the IPC channel.
//
// Output crosses the channel on credit (see cgi-spawner-main.mjs): the spawner sends at most a
// window of a stream's bytes that this side has not acknowledged. Stdout is acknowledged by its
// consumer with `tookStdout(bytes)` once the bytes are on their way to a client that keeps up, so
// a client that stops reading stops the script; stderr is acknowledged here once its listeners
// (the error log) have had it.

import { Buffer } from 'node:buffer'
import { fork, type ChildProcess } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { Writable } from 'node:stream'

const SPAWNER_MAIN = new URL('./cgi-spawner-main.mjs', import.meta.url)

/** The helper's V8 heap is capped: it only relays bytes, and a small process forks cheaply. */
const SPAWNER_EXEC_ARGV = ['--max-old-space-size=32', '--max-semi-space-size=1']

type FromSpawner =
  | { op: 'spawned'; id: number; pid: number }
  | { op: 'out' | 'err'; id: number; data: Uint8Array }
  | { op: 'outEnd' | 'errEnd' | 'inAck'; id: number }
  | { op: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
  | { op: 'error'; id: number; message: string }

/**
 * A script started by the spawner. Events: 'stdout' (Buffer), 'stdoutEnd', 'stderr' (Buffer),
 * 'stderrEnd', 'exit' (code, signal), 'error' (err). Stdout bytes must be acknowledged with
 * tookStdout(), or the script is held once a window of them is unacknowledged.
 */
export class ScriptProcess extends EventEmitter {
  pid: number | undefined = undefined
  exited = false
  readonly stdin: Writable
  private readonly id: number
  private readonly helper: ChildProcess
  private killWanted = false
  /** The spawner was told to close the script's stdout. */
  private discarded = false
  /** Write callbacks of stdin chunks the spawner has not yet put into the script's pipe. */
  private readonly inWaiters: Array<() => void> = []

  constructor(id: number, helper: ChildProcess) {
    super()
    this.id = id
    this.helper = helper
    this.stdin = new Writable({
      // Completed only when the spawner acks: a script that does not read holds the body back
      // here and, through the request stream, at the client's socket.
      write: (chunk: Buffer, _encoding, callback) => {
        this.inWaiters.push(() => callback())
        this.send({ op: 'in', id, data: chunk })
      },
      final: (callback) => this.send({ op: 'end', id }, () => callback()),
    })
  }

  /** `bytes` of stdout are handed on: the spawner may send that many more. */
  tookStdout(bytes: number): void {
    if (bytes > 0 && !this.exited) this.send({ op: 'outAck', id: this.id, bytes })
  }

  /** A message to the spawner; `callback` runs once it is sent, or at once if the spawner is gone. */
  private send(message: object, callback?: (err: Error | null) => void): void {
    if (this.helper.connected) this.helper.send(message, callback)
    else callback?.(null)
  }

  /**
   * SIGKILL to the script's whole process group, now or as soon as its pid is known. Its stdout
   * is not wanted any more: the spawner closes it, since bytes held back for want of an
   * acknowledgement would otherwise keep the pipe open.
   */
  killGroup(): void {
    if (this.exited) return
    if (!this.discarded) this.send({ op: 'discard', id: this.id })
    this.discarded = true
    if (this.pid === undefined) {
      this.killWanted = true
      return
    }
    try {
      process.kill(-this.pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }

  /** The script is gone: writes still waiting for an ack complete (their bytes go nowhere). */
  private releaseStdin(): void {
    for (const done of this.inWaiters.splice(0)) done()
  }

  /** A message from the spawner about this script. */
  deliver(message: FromSpawner): void {
    switch (message.op) {
      case 'spawned':
        this.pid = message.pid
        if (this.killWanted) this.killGroup()
        return
      case 'out':
        this.emit('stdout', Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength))
        return
      case 'err':
        this.emit('stderr', Buffer.from(message.data.buffer, message.data.byteOffset, message.data.byteLength))
        if (!this.exited) this.send({ op: 'errAck', id: this.id, bytes: message.data.byteLength })
        return
      case 'outEnd':
        this.emit('stdoutEnd')
        return
      case 'errEnd':
        this.emit('stderrEnd')
        return
      case 'inAck':
        this.inWaiters.shift()?.()
        return
      case 'exit':
        this.exited = true
        this.releaseStdin()
        this.emit('exit', message.code, message.signal)
        return
      case 'error':
        this.exited = true
        this.fail(new Error(message.message))
    }
  }

  /** The script cannot run, or the spawner died under it (then its process group is killed here). */
  fail(err: Error): void {
    this.killGroup()
    this.exited = true
    this.releaseStdin()
    this.emit('error', err)
  }
}

/** One spawner process, started on first use and again if it dies. */
export class CgiSpawner {
  private helper: ChildProcess | null = null
  private nextId = 1
  private readonly scripts = new Map<number, ScriptProcess>()

  /**
   * Start `file` in `cwd` with exactly `env`, in a process group of its own. Of each of its
   * stdout and stderr, at most `windowBytes` (plus one pipe read) are sent unacknowledged.
   */
  spawn(file: string, env: NodeJS.ProcessEnv, cwd: string, windowBytes: number): ScriptProcess {
    const helper = this.ensureHelper()
    const id = this.nextId++
    const script = new ScriptProcess(id, helper)
    this.scripts.set(id, script)
    script.once('exit', () => this.scripts.delete(id))
    script.once('error', () => this.scripts.delete(id))
    helper.send({ op: 'spawn', id, file, env, cwd, windowBytes })
    return script
  }

  /** Stop the spawner; it kills the scripts it still runs. */
  close(): void {
    this.helper?.disconnect()
    this.helper = null
  }

  private ensureHelper(): ChildProcess {
    if (this.helper !== null && this.helper.connected) return this.helper
    const helper = fork(SPAWNER_MAIN, [], { serialization: 'advanced', execArgv: SPAWNER_EXEC_ARGV, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    helper.on('message', (message: FromSpawner) => this.scripts.get(message.id)?.deliver(message))
    helper.on('exit', () => {
      if (this.helper === helper) this.helper = null
      for (const script of this.scripts.values()) script.fail(new Error('the CGI spawner process exited'))
      this.scripts.clear()
    })
    helper.on('error', () => {})
    // The helper must not keep the server alive: the server's own sockets do that while it works.
    helper.unref()
    helper.channel?.unref()
    this.helper = helper
    return helper
  }
}
