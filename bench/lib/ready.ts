// Readiness: a server counts as up once a fresh TCP connection gets the expected answer to a
// real request. A listening socket alone is not enough (a server may accept before its
// handlers are set up), and a fixed sleep is either too short or wastes time.

import { connect } from 'node:net'
import tls from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Tracked } from './children.ts'

const POLL_INTERVAL_MS = 50
const ATTEMPT_TIMEOUT_MS = 1000

export interface ReadyCheck {
  readonly port: number
  readonly path: string
  /** Why the raw answer (head and body, latin1) is not the expected one; undefined if it is. */
  readonly problemWith: (response: string) => string | undefined
  readonly deadlineMs: number
  /** Ask over TLS (the tls suite's servers); the certificate is not checked, as wrk does not. */
  readonly secure?: boolean
  /** How to ask, when not with getOnce (HTTP/1.1): the h2 suite asks over HTTP/2. Resolves with the raw answer. */
  readonly ask?: (port: number, path: string) => Promise<string>
}

/** The usual check: `200` with exactly this body (an HTTP/2 answer, from the h2 suite's ask, starts `HTTP/2 200`). */
export function expectBody(path: string, body: string): (response: string) => string | undefined {
  return (response) =>
    (response.startsWith('HTTP/1.1 200') || response.startsWith('HTTP/2 200 ')) && response.endsWith(body)
      ? undefined
      : `unexpected answer to GET ${path}: ${JSON.stringify(response.slice(0, 120))}`
}

/**
 * Resolves with the raw answer (head and body) once the server answers as expected; rejects
 * with a reason if it exits or the deadline passes.
 */
export async function waitUntilServing(server: Tracked, check: ReadyCheck): Promise<string> {
  const giveUpAt = Date.now() + check.deadlineMs
  let lastProblem = 'no answer yet'
  while (Date.now() < giveUpAt) {
    if (server.hasExited()) throw new Error(`exited before serving (exit ${await server.exited})`)
    try {
      const response = await (check.ask === undefined ? getOnce(check.port, check.path, check.secure === true) : check.ask(check.port, check.path))
      const problem = check.problemWith(response)
      if (problem === undefined) return response
      lastProblem = problem
    } catch (error) {
      lastProblem = (error as Error).message
    }
    await sleep(POLL_INTERVAL_MS)
  }
  throw new Error(`not serving after ${check.deadlineMs} ms (${lastProblem})`)
}

/**
 * One GET with Connection: close; resolves with the raw response (latin1, so binary bodies
 * survive: Buffer.from(response, 'latin1') gives back the bytes) once the server closes.
 * `secure`: over TLS, without checking the certificate.
 */
export function getOnce(port: number, path: string, secure = false, headers: readonly string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = secure ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : connect({ host: '127.0.0.1', port })
    const chunks: Buffer[] = []
    socket.setTimeout(ATTEMPT_TIMEOUT_MS, () => socket.destroy(new Error(`GET ${path} timed out`)))
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      // write, not end: some servers drop a half-closed connection without answering.
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${headers.map((h) => `${h}\r\n`).join('')}Connection: close\r\n\r\n`)
    })
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.once('error', reject)
    socket.once('close', (hadError) => {
      if (!hadError) resolve(Buffer.concat(chunks).toString('latin1'))
    })
  })
}
