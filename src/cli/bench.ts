// `petrel bench URL`: flags → BenchOptions, run, print. No logic of its own beyond translation.

import { Buffer } from 'node:buffer'
import { readFileSync } from 'node:fs'
import { runBench, type Progress } from '../apps/bench/run.ts'
import { formatProgress, formatReport } from '../apps/bench/report.ts'
import { parseTarget, type BenchOptions } from '../apps/bench/plan.ts'
import type { BenchResult } from '../apps/bench/result.ts'
import { errorMessage, systemErrorCode } from '../core/errors.ts'
import { defineFlags, MAX_DURATION_MS, oneOf, parseArgs, formatFlags, TIME_HELP, UsageError, type FlagSpec, type Flags, type ParsedArgs } from './args.ts'

export const BENCH_FLAGS = defineFlags([
  { name: 'connections', short: 'c', type: 'integer', valueName: 'N', min: 1, max: 100_000, description: 'connections to keep open (default 10)' },
  {
    name: 'duration',
    short: 'd',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    max: MAX_DURATION_MS,
    description: 'how long to measure: 10s, 1m, 500ms (default 10s)',
  },
  {
    name: 'threads',
    short: 't',
    type: 'integer',
    valueName: 'N',
    min: 1,
    max: 256,
    description: 'worker threads, each with its own event loop and share of the connections (default 1)',
  },
  { name: 'pipelining', short: 'p', type: 'integer', valueName: 'N', min: 1, max: 1024, description: 'requests in flight per connection (default 1)' },
  {
    name: 'rate',
    short: 'R',
    type: 'integer',
    valueName: 'REQ/S',
    min: 1,
    description: 'constant request rate over all connections (open model, as wrk2); latency counts from when each request was due',
  },
  { name: 'method', short: 'm', type: 'string', valueName: 'METHOD', description: 'request method (default GET, or POST when a body is given)' },
  { name: 'header', short: 'H', type: 'list', valueName: "'NAME: VALUE'", description: "add a request header; repeatable; a Host header replaces the URL's" },
  { name: 'body', short: 'b', type: 'string', valueName: 'TEXT', description: 'request body (sent with Content-Length)' },
  { name: 'body-file', type: 'string', valueName: 'FILE', description: 'request body read from FILE' },
  { name: 'no-keepalive', type: 'boolean', description: 'a new connection per request (Connection: close); latency includes the connect' },
  {
    name: 'timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    max: MAX_DURATION_MS,
    description: 'a request unanswered this long fails as a timeout and its connection is replaced (default 10s)',
  },
  {
    name: 'warmup',
    type: 'duration',
    valueName: 'TIME',
    min: 0,
    max: MAX_DURATION_MS,
    description: 'run this long before measuring; its results are discarded (default 0)',
  },
  { name: 'insecure', short: 'k', type: 'boolean', description: 'https: do not verify the server certificate (like curl -k)' },
  { name: 'ca', type: 'string', valueName: 'FILE', description: 'https: also trust the CA certificates in FILE (PEM), besides the system ones' },
  {
    name: 'tls-resume',
    type: 'string',
    valueName: 'on|off',
    description: "https: on (default): a reconnect resumes its connection's last TLS session; off: every connection a full handshake (as wrk)",
  },
  { name: 'expect-status', type: 'integer', valueName: 'CODE', min: 100, max: 599, description: 'exit 1 unless every request got a response with this status' },
  { name: 'json', type: 'boolean', description: 'print the result as one JSON object' },
  { name: 'help', short: 'h', type: 'boolean', description: 'show this help' },
])

const BENCH_USAGE = `Usage: petrel bench [flags] URL

Load-test an HTTP/1.1 server: keep connections open and send requests as fast as the answers come
back (closed model, as wrk), or at a constant --rate (open model, as wrk2). Prints requests/s,
bytes/s, latency percentiles (HDR histogram), status counts, failed requests by kind and a
per-second timeline. An https:// URL speaks TLS (certificate verified against the system CAs and
--ca, SNI from the URL's host, ALPN http/1.1) and adds TLS handshakes/s and how many resumed.
Exits 1 when every request failed or --expect-status was not met, 2 on a usage error.
${TIME_HELP}

Flags:
${formatFlags(BENCH_FLAGS)}

Examples:
  petrel bench -c 64 -d 10s http://127.0.0.1:8080/plaintext
  petrel bench -c 16 -p 16 http://127.0.0.1:8080/plaintext
  petrel bench -c 10 -R 2000 -d 30s --json http://127.0.0.1:8080/json
  petrel bench -m POST -H 'Content-Type: application/json' -b '{"a":1}' http://127.0.0.1:8080/api
  petrel bench --no-keepalive --ca ca.pem https://localhost:8443/plaintext`

export function benchOptions({ flags, positionals }: ParsedArgs<Flags<typeof BENCH_FLAGS>>): BenchOptions {
  const url = positionals[0]
  if (url === undefined || positionals.length !== 1) {
    throw new UsageError(
      'PETREL_ERR_CLI_BAD_ARGUMENT',
      url === undefined ? 'missing URL: petrel bench [flags] URL' : `one URL expected, got ${positionals.length}: ${positionals.join(' ')}`,
    )
  }
  const secure = parseTarget(url).secure
  const insecure = flags.has('insecure')
  const caFile = flags.get('ca')
  const resume = oneOf('tls-resume', flags.get('tls-resume'), ['on', 'off'])
  if (!secure && (insecure || caFile !== undefined || resume !== undefined)) {
    const given = insecure ? '--insecure' : caFile !== undefined ? '--ca' : '--tls-resume'
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `${given} applies to https:// URLs only; drop it or use https://`)
  }
  let ca: Buffer | null = null
  if (caFile !== undefined) {
    try {
      ca = readFileSync(caFile)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --ca: cannot read ${caFile} (${systemErrorCode(err) ?? errorMessage(err)})`)
    }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --ca: ${caFile} holds no PEM certificate (no "-----BEGIN CERTIFICATE-----" line)`)
    }
  }
  const keepAlive = !flags.has('no-keepalive')
  const pipelining = flags.get('pipelining') ?? 1
  if (!keepAlive && pipelining > 1) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', '--pipelining needs keep-alive; drop --no-keepalive or --pipelining')
  const bodyText = flags.get('body')
  const file = flags.get('body-file')
  if (bodyText !== undefined && file !== undefined) throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', 'give --body or --body-file, not both')
  let body: Buffer | null = null
  if (bodyText !== undefined) body = Buffer.from(bodyText)
  if (file !== undefined) {
    try {
      body = readFileSync(file)
    } catch (err) {
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --body-file: cannot read ${file} (${systemErrorCode(err) ?? errorMessage(err)})`)
    }
  }
  const connections = flags.get('connections') ?? 10
  return {
    url,
    connections,
    threads: Math.min(flags.get('threads') ?? 1, connections),
    durationMs: flags.get('duration') ?? 10_000,
    warmupMs: flags.get('warmup') ?? 0,
    pipelining,
    rate: flags.get('rate') ?? 0,
    timeoutMs: flags.get('timeout') ?? 10_000,
    method: flags.get('method') ?? (body === null ? 'GET' : 'POST'),
    headers: flags.get('header') ?? [],
    body,
    keepAlive,
    insecure,
    ca,
    tlsResume: resume !== 'off',
  }
}

/** Exit status: 1 when nothing succeeded or the expected status was not met by every request. */
export function exitStatus(result: BenchResult, expectStatus: number | undefined): number {
  if (result.requests === 0) return 1
  if (expectStatus === undefined) return 0
  const failed = Object.values(result.errors).reduce((sum, n) => sum + n, 0)
  return failed === 0 && result.status[String(expectStatus)] === result.requests ? 0 : 1
}

export async function benchCommand(argv: readonly string[]): Promise<number> {
  const parsed = parseArgs(argv, BENCH_FLAGS, 'bench')
  if (parsed.flags.has('help')) {
    console.log(BENCH_USAGE)
    return 0
  }
  const options = benchOptions(parsed)
  const expectStatus = parsed.flags.get('expect-status')
  const json = parsed.flags.has('json')
  const live = process.stdout.isTTY === true && !json
  let last: Progress | null = null
  const result = await runBench(
    options,
    live
      ? (progress) => {
          process.stdout.write(`\r\x1b[K${formatProgress(progress, last)}`)
          last = progress
        }
      : undefined,
  )
  if (live) process.stdout.write('\r\x1b[K')
  console.log(json ? JSON.stringify(result) : formatReport(options, result))
  const status = exitStatus(result, expectStatus)
  if (status !== 0 && !json) {
    console.error(result.requests === 0 ? 'petrel bench: every request failed' : `petrel bench: not every request got status ${expectStatus}`)
  }
  return status
}
