// When is a ws peer ready? When a WebSocket handshake on /echo gets its 101 and a text message
// comes back as a text frame of the same length (the floor answers with other bytes of that
// length). Until then, or until the deadline, the suite asks again.

import { Buffer } from 'node:buffer'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Tracked } from '../lib/children.ts'
import { FrameCounter, handshakeRequest, maskedFrame } from './frames.ts'

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1')

/** One handshake and one echo on /echo; resolves with what is wrong, or undefined. */
export function echoOnce(port: number, timeoutMs = 2000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let bytes = Buffer.alloc(0)
    let opened = false
    const counter = new FrameCounter()
    const done = (problem: string | undefined): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(problem)
    }
    const timer = setTimeout(() => done(opened ? 'no echo within 2 s' : 'no 101 within 2 s'), timeoutMs)
    socket.on('connect', () => socket.write(handshakeRequest('127.0.0.1', port, '/echo')))
    socket.on('error', (error) => done(error.message))
    socket.on('data', (chunk: Buffer) => {
      if (!opened) {
        bytes = Buffer.concat([bytes, chunk])
        const end = bytes.indexOf(HEAD_END)
        if (end === -1) return
        if (!bytes.toString('latin1', 0, 13).startsWith('HTTP/1.1 101 ')) return done(`no 101: ${bytes.toString('latin1', 0, end).split('\r\n')[0]}`)
        opened = true
        socket.write(maskedFrame(1, Buffer.from('ready?')))
        chunk = bytes.subarray(end + 4)
      }
      const frames = counter.read(chunk, 0, chunk.length)
      if (frames > 0) done(undefined)
    })
  })
}

/** Waits until `server` echoes on /echo; throws with the last problem once it exits or `deadlineMs` passes. */
export async function waitForWebSocket(server: Tracked, port: number, deadlineMs = 15_000): Promise<void> {
  const giveUpAt = Date.now() + deadlineMs
  let problem: string | undefined = 'never asked'
  while (Date.now() < giveUpAt) {
    if (server.hasExited())
      throw new Error(`exited before serving (exit ${await server.exited}): ${server.outputTail().trim().split('\n').slice(-2).join(' | ')}`)
    problem = await echoOnce(port)
    if (problem === undefined) return
    await sleep(100)
  }
  throw new Error(`not serving WebSockets after ${deadlineMs / 1000} s: ${problem}`)
}
