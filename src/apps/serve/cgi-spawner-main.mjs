// The CGI spawner process: a small Node process that starts scripts for the server.
//
// Starting a process from Node is libuv's fork() + exec(), and fork() copies the page tables of
// the whole parent: about 1 ms of CPU per 60 MB of resident memory, measured. A busy server is
// large; this process stays small (no server, no caches, a capped heap), so each fork is cheap —
// fcgiwrap's trick, and the book's: fork from a small process of a pool. The server speaks to it
// over the IPC channel (advanced serialization, so Buffers cross as bytes):
//
//   server → spawner  {op: 'spawn', id, file, env, cwd, windowBytes}  {op: 'in', id, data}
//                     {op: 'end', id}  {op: 'outAck' | 'errAck', id, bytes}  {op: 'discard', id}
//   spawner → server  {op: 'spawned', id, pid}  {op: 'out' | 'err', id, data}
//                     {op: 'outEnd' | 'errEnd', id}
//                     {op: 'inAck', id} (an 'in' reached the script's pipe: stdin backpressure)
//                     {op: 'exit', id, code, signal}  {op: 'error', id, message}
//
// Output is sent on credit: of each of a script's stdout and stderr, at most `windowBytes` may be
// sent and not yet acknowledged by the server (plus the one pipe read that crossed the line). At
// the window the script's pipe is no longer read, so a script that writes faster than its client
// reads blocks in write(2) instead of growing this process, the channel or the server. The server
// acknowledges stdout bytes once it has handed them to a client socket below its high-water mark,
// and stderr bytes once they are logged. When it gives up on a script (killed: its client left, it
// timed out, its answer is complete) it sends 'discard', and the script's stdout is closed here:
// a pipe left paused would never read its end, so the script would never count as closed.
//
// Killing is done by the server itself (SIGKILL to the script's process group). The scripts are
// this process's children: it reaps them. If the server goes away, so does every script.
//
// Plain JavaScript, the one file in src/ that is: a .ts entry point makes Node load its type
// stripper, which adds 17 MB of resident memory (43 MB → 60 MB, measured) — and resident memory
// is what every fork pays for. The message types are those of cgi-spawner.ts.

import { spawn } from 'node:child_process'

/**
 * One of a script's output pipes, relayed on credit.
 * @typedef {{ stream: import('node:stream').Readable, unackedBytes: number, windowBytes: number }} Relay
 */

/**
 * A running script: its process and its two output relays.
 * @typedef {{ child: import('node:child_process').ChildProcess, out: Relay, err: Relay }} Script
 */

/** @type {Map<number, Script>} */
const scripts = new Map()

/** @param {object} message */
function send(message) {
  if (process.connected) process.send(message)
}

/**
 * Send what `stream` yields as `op` messages, pausing it once `windowBytes` are unacknowledged.
 * @param {number} id
 * @param {import('node:stream').Readable} stream
 * @param {'out' | 'err'} op
 * @param {number} windowBytes
 * @returns {Relay}
 */
function relay(id, stream, op, windowBytes) {
  const state = { stream, unackedBytes: 0, windowBytes }
  const endOp = op === 'out' ? 'outEnd' : 'errEnd'
  stream.on('data', (data) => {
    state.unackedBytes += data.length
    if (state.unackedBytes >= windowBytes) stream.pause()
    send({ op, id, data })
  })
  stream.on('end', () => send({ op: endOp, id }))
  return state
}

/**
 * The server took `bytes` of a relay's output: read the pipe again if the window has room.
 * @param {Relay} state
 * @param {number} bytes
 */
function acknowledge(state, bytes) {
  state.unackedBytes -= bytes
  if (state.unackedBytes < state.windowBytes && state.stream.isPaused()) state.stream.resume()
}

/**
 * @param {number} id
 * @param {string} file
 * @param {NodeJS.ProcessEnv} env
 * @param {string} cwd
 * @param {number} windowBytes
 */
function start(id, file, env, cwd, windowBytes) {
  let child
  try {
    child = spawn(file, [], { cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
  } catch (err) {
    // spawn() throws for some failures (E2BIG: an environment too large) instead of emitting.
    send({ op: 'error', id, message: /** @type {Error} */ (err).message })
    return
  }
  const out = relay(id, /** @type {import('node:stream').Readable} */ (child.stdout), 'out', windowBytes)
  const err = relay(id, /** @type {import('node:stream').Readable} */ (child.stderr), 'err', windowBytes)
  scripts.set(id, { child, out, err })
  child.on('spawn', () => send({ op: 'spawned', id, pid: child.pid }))
  child.on('error', (error) => {
    scripts.delete(id)
    send({ op: 'error', id, message: error.message })
  })
  child.stdin.on('error', () => {})
  child.on('close', (code, signal) => {
    scripts.delete(id)
    send({ op: 'exit', id, code, signal })
  })
}

process.on('message', (/** @type {any} */ message) => {
  if (message.op === 'spawn') return start(message.id, message.file, message.env, message.cwd, message.windowBytes)
  const script = scripts.get(message.id)
  if (script === undefined) return
  // The ack comes once the bytes are in the script's pipe: the server sends no more until then.
  if (message.op === 'in') script.child.stdin.write(message.data, () => send({ op: 'inAck', id: message.id }))
  else if (message.op === 'end') script.child.stdin.end()
  else if (message.op === 'outAck') acknowledge(script.out, message.bytes)
  else if (message.op === 'errAck') acknowledge(script.err, message.bytes)
  else if (message.op === 'discard') script.out.stream.destroy()
})

process.on('disconnect', () => {
  for (const { child } of scripts.values()) {
    try {
      process.kill(-(/** @type {number} */ (child.pid)), 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  process.exit(0)
})
