// The CGI spawner process: a small Node process that starts scripts for the server.
//
// Starting a process from Node is libuv's fork() + exec(), and fork() copies the page tables of
// the whole parent: about 1 ms of CPU per 60 MB of resident memory, measured. A busy server is
// large; this process stays small (no server, no caches, a capped heap), so each fork is cheap —
// fcgiwrap's trick, and the book's: fork from a small process of a pool. The server speaks to it
// over the IPC channel (advanced serialization, so Buffers cross as bytes):
//
//   server → spawner  {op: 'spawn', id, file, env, cwd}  {op: 'in', id, data}  {op: 'end', id}
//                     {op: 'pause', id}  {op: 'resume', id}
//   spawner → server  {op: 'spawned', id, pid}  {op: 'out' | 'err', id, data}  {op: 'outEnd', id}
//                     {op: 'inAck', id} (an 'in' reached the script's pipe: stdin backpressure)
//                     {op: 'exit', id, code, signal}  {op: 'error', id, message}
//
// Killing is done by the server itself (SIGKILL to the script's process group). The scripts are
// this process's children: it reaps them. If the server goes away, so does every script.
//
// Plain JavaScript, the one file in src/ that is: a .ts entry point makes Node load its type
// stripper, which adds 17 MB of resident memory (43 MB → 60 MB, measured) — and resident memory
// is what every fork pays for. The message types are those of cgi-spawner.ts.

import { spawn } from 'node:child_process'

/** @type {Map<number, import('node:child_process').ChildProcess>} */
const scripts = new Map()

/** @param {object} message */
function send(message) {
  if (process.connected) process.send(message)
}

/**
 * @param {number} id
 * @param {string} file
 * @param {NodeJS.ProcessEnv} env
 * @param {string} cwd
 */
function start(id, file, env, cwd) {
  let child
  try {
    child = spawn(file, [], { cwd, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
  } catch (err) {
    // spawn() throws for some failures (E2BIG: an environment too large) instead of emitting.
    send({ op: 'error', id, message: /** @type {Error} */ (err).message })
    return
  }
  scripts.set(id, child)
  child.on('spawn', () => send({ op: 'spawned', id, pid: child.pid }))
  child.on('error', (err) => {
    scripts.delete(id)
    send({ op: 'error', id, message: err.message })
  })
  child.stdin.on('error', () => {})
  child.stdout.on('data', (data) => send({ op: 'out', id, data }))
  child.stdout.on('end', () => send({ op: 'outEnd', id }))
  child.stderr.on('data', (data) => send({ op: 'err', id, data }))
  child.on('close', (code, signal) => {
    scripts.delete(id)
    send({ op: 'exit', id, code, signal })
  })
}

process.on('message', (/** @type {any} */ message) => {
  if (message.op === 'spawn') return start(message.id, message.file, message.env, message.cwd)
  const child = scripts.get(message.id)
  if (child === undefined) return
  // The ack comes once the bytes are in the script's pipe: the server sends no more until then.
  if (message.op === 'in') child.stdin.write(message.data, () => send({ op: 'inAck', id: message.id }))
  else if (message.op === 'end') child.stdin.end()
  else if (message.op === 'pause') child.stdout.pause()
  else child.stdout.resume()
})

process.on('disconnect', () => {
  for (const child of scripts.values()) {
    try {
      process.kill(-(/** @type {number} */ (child.pid)), 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  process.exit(0)
})
