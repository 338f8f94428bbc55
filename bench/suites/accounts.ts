// The accounts suite: logins per second and their latency, with scrypt on the thread pool
// against inline on the event loop, on SQLite and on PostgreSQL. Beside the logins, a steady
// /plaintext load shows what inline hashing does to everyone else. The server (its threads, and
// PostgreSQL with every backend) is pinned to CPU 0, both generators to CPU 1.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defineFlags, listOf, parseSuiteFlags } from '../lib/flags.ts'
import { startServer } from '../lib/measure.ts'
import { onCleanup } from '../lib/children.ts'
import { petrelPeer } from '../lib/peers.ts'
import { expectBody } from '../lib/ready.ts'
import { wholeNumber, finishTableReport } from '../lib/report.ts'
import { SERVER_CPU, WRK_CPU } from '../lib/runner.ts'
import { median } from '../lib/stats.ts'
import type { Column } from '../lib/table.ts'
import { benchFailures, petrelBenchJson, type BenchJson } from '../loadgen/generators.ts'
// The same throwaway cluster the tests use: initdb in a temporary directory, trust auth.
import { startPostgres } from '../../test/helpers/postgres.ts'
import type { Suite } from './suite.ts'

const STORES = ['sqlite', 'postgres'] as const
const HASHING = ['pool', 'inline'] as const

const FLAGS = defineFlags([
  { name: 'duration', type: 'integer', valueName: 'SECONDS', min: 1, default: 10, description: 'length of each measured run' },
  { name: 'repeat', type: 'integer', valueName: 'N', min: 1, default: 1, description: 'runs per row, interleaved; medians are reported' },
  { name: 'connections', type: 'integer', valueName: 'N', min: 1, default: 8, description: 'connections logging in' },
  { name: 'rate', type: 'integer', valueName: 'REQ/S', min: 1, default: 1000, description: 'steady /plaintext rate beside the logins' },
  { name: 'stores', type: 'string', valueName: 'NAMES', default: STORES.join(','), description: 'comma-separated stores (sqlite, postgres)' },
])

interface Row {
  store: string
  hashing: string
  logins: BenchJson
  plaintext: BenchJson
}

const PASSWORD = 'benchmark password 1'

/** Register the bench user; returns the form's CSRF token (its cookie and field). */
async function registerUser(base: string): Promise<string> {
  const page = await fetch(`${base}/account/register`)
  const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())?.[1]
  if (csrf === undefined) throw new Error('no CSRF token on /account/register')
  const cookie = `petrel_csrf=${csrf}`
  const response = await fetch(`${base}/account/register`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, username: 'bench', password: PASSWORD }).toString(),
  })
  if (response.status !== 303 && response.status !== 409) throw new Error(`registering answered ${response.status}`)
  return csrf
}

async function run(args: readonly string[]): Promise<number> {
  const flags = parseSuiteFlags(args, FLAGS, 'accounts')
  const durationSec = flags.get('duration')
  const repeat = flags.get('repeat')
  const connections = flags.get('connections')
  const rate = flags.get('rate')
  const stores = listOf('stores', flags.get('stores'), STORES)
  const startedAt = new Date().toISOString()
  const dir = mkdtempSync(join(tmpdir(), 'petrel-bench-accounts-'))
  const removeDir = onCleanup(() => rmSync(dir, { recursive: true, force: true }))
  const notes: string[] = []
  let postgres: Awaited<ReturnType<typeof startPostgres>> | null = null
  if (stores.includes('postgres')) {
    try {
      postgres = await startPostgres({ cpu: SERVER_CPU })
    } catch (error) {
      notes.push(`postgres: skipped: ${(error as Error).message}`)
    }
  }
  const stopPostgres = onCleanup(() => void postgres?.stop())
  console.log(
    `accounts: ${connections} connections logging in (scrypt N=2^13, ~17 ms of CPU each) while /plaintext runs at ${rate} req/s; server on CPU ${SERVER_CPU}, generators on CPU ${WRK_CPU}`,
  )
  const rows: Row[] = []
  try {
    for (let repetition = 1; repetition <= repeat; repetition++) {
      for (const store of stores) {
        const database = store === 'sqlite' ? `sqlite:${dir}/accounts.db` : postgres?.url
        if (database === undefined) continue
        for (const hashing of HASHING) {
          process.stdout.write(`  ${store}, hashing ${hashing}${repeat > 1 ? ` run ${repetition}/${repeat}` : ''} … `)
          const probe = await petrelPeer([
            '--database',
            database,
            '--password-hashing',
            hashing,
            '--login-attempts',
            '1000000000',
            '--pool-queue',
            '1000',
          ]).probe()
          if (!probe.ok) throw new Error(probe.reason)
          const server = await startServer(probe.launch, SERVER_CPU, '/plaintext', expectBody('/plaintext', 'Hello, World!'))
          try {
            const base = `http://127.0.0.1:${server.port}`
            const csrf = await registerUser(base)
            const login = [
              '-m',
              'POST',
              '-H',
              'Content-Type: application/x-www-form-urlencoded',
              '-H',
              `Cookie: petrel_csrf=${csrf}`,
              '-b',
              new URLSearchParams({ csrf, username: 'bench', password: PASSWORD }).toString(),
              `${base}/account/login`,
            ]
            await petrelBenchJson(WRK_CPU, ['-c', String(connections), '-d', '1s', ...login])
            const [logins, plaintext] = await Promise.all([
              petrelBenchJson(WRK_CPU, ['-c', String(connections), '-d', `${durationSec}s`, ...login]),
              petrelBenchJson(WRK_CPU, ['-c', '4', '-R', String(rate), '-d', `${durationSec}s`, `${base}/plaintext`]),
            ])
            rows.push({ store, hashing, logins, plaintext })
            console.log(`${wholeNumber(logins.rps)} logins/s, p99 ${logins.latency_ms.p99} ms; /plaintext p99 ${plaintext.latency_ms.p99} ms`)
          } finally {
            await server.stop()
          }
        }
      }
    }
  } finally {
    await postgres?.stop()
    stopPostgres()
    rmSync(dir, { recursive: true, force: true })
    removeDir()
  }
  const columns: Column[] = [
    { title: 'store', alignRight: false },
    { title: 'scrypt', alignRight: false },
    { title: 'logins/s', alignRight: true },
    { title: 'login p50 ms', alignRight: true },
    { title: 'login p99 ms', alignRight: true },
    { title: `/plaintext p99 ms (${rate}/s beside)`, alignRight: true },
    { title: 'failed', alignRight: true },
  ]
  const table: string[][] = []
  for (const store of stores) {
    for (const hashing of HASHING) {
      const list = rows.filter((r) => r.store === store && r.hashing === hashing)
      if (list.length === 0) continue
      table.push([
        store,
        hashing === 'pool' ? 'thread pool' : 'inline',
        wholeNumber(median(list.map((r) => r.logins.rps))),
        median(list.map((r) => r.logins.latency_ms.p50)).toFixed(2),
        median(list.map((r) => r.logins.latency_ms.p99)).toFixed(2),
        median(list.map((r) => r.plaintext.latency_ms.p99)).toFixed(2),
        wholeNumber(list.reduce((sum, r) => sum + benchFailures(r.logins, (code) => code === '303') + benchFailures(r.plaintext), 0)),
      ])
    }
  }
  const written = finishTableReport({
    suite: 'accounts',
    startedAt,
    title: 'accounts: logins with scrypt on the thread pool and inline, on SQLite and PostgreSQL',
    method:
      `Server, its threads and PostgreSQL pinned to CPU ${SERVER_CPU}; petrel bench on CPU ${WRK_CPU}. ${connections} connections log in (POST /account/login, 303 expected) ` +
      `for ${durationSec} s${repeat > 1 ? `, medians of ${repeat}` : ''}, while /plaintext runs at ${rate} req/s (open model).`,
    columns,
    rows: table,
    notes,
    data: { durationSec, repeat, connections, rate, rows },
  })
  console.log(`wrote ${written.join(', ')}`)
  return 0
}

export const accountsSuite: Suite = {
  name: 'accounts',
  summary: 'logins/s and p99 with scrypt on the thread pool vs inline, on SQLite and PostgreSQL (with /plaintext latency beside)',
  flags: FLAGS,
  passThrough: false,
  run,
}
