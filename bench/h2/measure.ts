// One h2 suite measurement, lib/measure.ts's shape with h2load for wrk: a fresh server pinned to
// its CPU, readiness by a real request in the protocol that is measured (HTTP/2 through
// node:http2's client, or HTTP/1.1 for the reference row), then one h2load run whose own warm-up
// (--warm-up-time) opens and warms the connections it then measures, with the server's CPU time
// read as h2load says its measured period starts and ends (see h2load.ts).

import http2 from 'node:http2'
import { startServer, type AnswerCheck, type Bench, type RunMeasurement } from '../lib/measure.ts'
import type { Launch } from '../lib/peers.ts'
import { processTreeCpuTicks } from '../lib/proc-cpu.ts'
import { getOnce } from '../lib/ready.ts'
import { runH2load, type H2loadResult, type H2Protocol } from './h2load.ts'
import type { H2Scenario } from './scenarios.ts'

/** A peer's launch, with the protocol h2load speaks to it. */
export interface H2Launch extends Launch {
  readonly protocol: H2Protocol
}

export interface H2Measurement extends RunMeasurement {
  /** What h2load negotiated: h2, h2c or http/1.1. */
  readonly protocol: string
  /** h2load's mean time per request, in ms (it reports no percentiles). */
  readonly requestMeanMs: number
  /** Response header bytes on the wire per request: what HPACK (or an HTTP/1.1 head) costs. */
  readonly headerBytesPerRequest: number
  /** Requests per second of the slowest and the fastest connection. */
  readonly perConnection: { readonly min: number; readonly max: number }
  /** h2load did not exit after its measured period until the server was stopped (h2load.ts: MeasuredPeriod.stuck). */
  readonly stoppedEarly: boolean
}

const ASK_TIMEOUT_MS = 1000

/** The flow-control windows h2load announces (-w 30, -W 30); the h2-floor peer needs the body to fit them. */
const H2LOAD_WINDOW = 2 ** 30 - 1

/**
 * One GET over HTTP/2 (ALPN h2 over TLS without checking the certificate, or prior knowledge on
 * cleartext), with h2load's windows; resolves with the answer rendered as `HTTP/2 <status> `
 * CRLF, `name: value` lines, CRLF, then the body as latin1, so that the checks made for HTTP/1.1
 * answers read it too.
 */
export function getH2Once(port: number, path: string, secure: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const settings = { settings: { initialWindowSize: H2LOAD_WINDOW } }
    const session = http2.connect(
      `${secure ? 'https' : 'http'}://127.0.0.1:${port}`,
      secure ? { ...settings, rejectUnauthorized: false, servername: 'localhost' } : settings,
    )
    session.once('connect', () => session.setLocalWindowSize(H2LOAD_WINDOW))
    const fail = (error: Error): void => {
      clearTimeout(timer)
      session.destroy()
      reject(error)
    }
    const timer = setTimeout(() => fail(new Error(`GET ${path} over HTTP/2 timed out`)), ASK_TIMEOUT_MS)
    session.on('error', fail)
    const request = session.request({ ':method': 'GET', ':path': path })
    request.on('error', fail)
    let head = ''
    request.on('response', (headers) => {
      const lines = Object.entries(headers)
        .filter(([name]) => !name.startsWith(':'))
        .map(([name, value]) => `${name}: ${Array.isArray(value) ? value.join(', ') : String(value)}`)
      head = `HTTP/2 ${String(headers[':status'])} \r\n${lines.map((line) => `${line}\r\n`).join('')}\r\n`
    })
    const chunks: Buffer[] = []
    request.on('data', (chunk: Buffer) => chunks.push(chunk))
    request.on('end', () => {
      clearTimeout(timer)
      session.close()
      resolve(head + Buffer.concat(chunks).toString('latin1'))
    })
  })
}

function lastLine(output: string): string {
  return output.trim().split('\n').at(-1) ?? ''
}

export async function measureH2(launchOn: (port: number) => Launch, scenario: H2Scenario, bench: Bench, check: AnswerCheck): Promise<H2Measurement> {
  let protocol: H2Protocol = 'h2'
  const launch = (port: number): Launch => {
    const launched = launchOn(port) as H2Launch
    protocol = launched.protocol
    return launched
  }
  const ask = (port: number, path: string): Promise<string> =>
    protocol === 'h2' ? getH2Once(port, path, scenario.secure) : getOnce(port, path, scenario.secure)
  const { server, port, stop } = await startServer(launch, bench.serverCpu, scenario.path, check, scenario.secure, ask)
  try {
    const run = {
      h2loadPath: bench.wrkPath,
      cpu: bench.wrkCpu,
      url: `${scenario.secure ? 'https' : 'http'}://127.0.0.1:${port}${scenario.path}`,
      connections: scenario.connections,
      streams: scenario.streams,
      durationSec: bench.durationSec,
      warmupSec: bench.warmupSec,
      protocol,
    }
    // The server's CPU time and the clock, read as h2load's measured period starts and ends.
    let ticksBefore = 0
    let ticksAfter = 0
    let startedMs = 0
    let endedMs = 0
    let stoppedEarly = false
    const exited = async (): Promise<Error> => new Error(`server exited during the run (exit ${await server.exited}): ${lastLine(server.outputTail())}`)
    let result: H2loadResult
    try {
      result = await runH2load(run, {
        start: () => {
          ticksBefore = processTreeCpuTicks(server.pid)
          startedMs = performance.now()
        },
        end: () => {
          ticksAfter = processTreeCpuTicks(server.pid)
          endedMs = performance.now()
        },
        stuck: () => {
          // Measured already: stopping the server is what ends h2load's reconnecting (h2load.ts).
          stoppedEarly = true
          void stop()
        },
      })
    } catch (error) {
      // h2load's failed requests are the symptom; a server that died is the cause.
      throw server.hasExited() && !stoppedEarly ? await exited() : error
    }
    if (server.hasExited() && !stoppedEarly) throw await exited()
    const cpuUs = ((ticksAfter - ticksBefore) / bench.clockTicksPerSec) * 1e6
    const requests = result.done
    return {
      requests,
      durationSec: result.durationSec,
      requestsPerSec: requests / result.durationSec,
      bytesPerSec: result.bytes.total / result.durationSec,
      cpuUsPerRequest: cpuUs / requests,
      serverCpuPercent: (cpuUs / ((endedMs - startedMs) * 1000)) * 100,
      latencyP50Ms: null,
      latencyP99Ms: null,
      // A run with any error threw in runH2load: what is kept has none.
      errors: { connect: 0, read: 0, write: 0, status: 0, timeout: 0 },
      protocol: result.applicationProtocol,
      requestMeanMs: result.requestMeanMs,
      // h2load 1.52 counts header and data bytes over its warm-up too (its total and its requests
      // over the measured period only): the responses they cover are the data bytes ÷ the body's.
      headerBytesPerRequest: (result.bytes.headers * scenario.bodyBytes) / result.bytes.data,
      perConnection: { min: result.perConnection.min, max: result.perConnection.max },
      stoppedEarly,
    }
  } finally {
    await stop()
  }
}
