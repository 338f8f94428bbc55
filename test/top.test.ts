// `petrel top` as a user meets it: a frame fits the screen whatever its size (the headline first,
// nothing cut in the middle of a number), the terminal's real size is used and followed when it
// changes, q quits, the address is taken as --admin takes it, and a token is sent when given.

import { fileURLToPath } from 'node:url'
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { renderTop, type ScreenSize } from '../src/cli/top.ts'
import { startServe } from '../src/apps/serve/serve.ts'
import type { Tick } from '../src/monitor/board.ts'
import type { ProcessSnapshot } from '../src/monitor/metrics.ts'
import { requireDebianPackage } from './helpers/debian.ts'

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))

function processFigures(worker: number | null, pid: number): Tick['processes'][number] {
  const snapshot: ProcessSnapshot = {
    pid,
    worker,
    atMs: 1_700_000_100_000,
    startedAtMs: 1_700_000_000_000,
    connections: { active: 1234, idle: 1200, http2: 30, streams: 90, websockets: 7, accepted: 987_654, rejected: 12, tlsHandshakes: 0, tlsResumed: 0 },
    requests: 123_456_789,
    responses: [0, 123_000_000, 400_000, 56_000, 789],
    bytesIn: 9e9,
    bytesOut: 8e10,
    latency: { counts: [], sumS: 0 },
    eventLoop: { delayP50Ms: 0.4, delayP99Ms: 12.34, delayMaxMs: 40, utilization: 0.876 },
    memory: { rss: 219.6 * 1048576, heapUsed: 31.5 * 1048576, heapTotal: 64e6, external: 0 },
    cpu: { userUs: 1e9, systemUs: 5e8 },
    timers: 2400,
    fds: 1300,
  }
  return { ...snapshot, cpuPct: 97.5, requestsPerS: 59_878.4 }
}

/** A busy server with `workers` processes on a machine of `cores` cores. */
function busyTick(workers: number, cores: number): Tick {
  const processes = Array.from({ length: workers }, (_, i) => processFigures(i, 40_000 + i))
  return {
    atMs: 1_700_000_100_000,
    totals: {
      atMs: 1_700_000_100_000,
      processes: workers,
      connections: {
        active: 20_480,
        idle: 19_999,
        http2: 400,
        streams: 1_234,
        websockets: 56,
        accepted: 1_234_567,
        rejected: 42,
        tlsHandshakes: 0,
        tlsResumed: 0,
      },
      requests: 203_716_123,
      responses: [0, 200_000_000, 3_000_000, 700_000, 16_123],
      bytesIn: 1e10,
      bytesOut: 9e10,
      latency: { counts: [], sumS: 0 },
      cpuUs: 1e9,
      memory: { rss: 2.2e9, heapUsed: 3.1e8 },
      eventLoop: { delayP99Ms: 4.21, utilization: 0.39 },
      timers: 20_480,
      fds: 20_600,
    },
    rates: {
      requestsPerS: 259_878.6,
      bytesInPerS: 2.9 * 1048576,
      bytesOutPerS: 6.6 * 1048576,
      cpuPct: 177,
      latencyMs: { p50: 0.0123, p90: 0.0234, p99: 12.3456 },
      responsesPerS: [0, 259_000, 800, 70, 8.6],
    },
    processes,
    system: {
      cpus: [
        { name: 'cpu', userPct: 44.5, systemPct: 55, iowaitPct: 0, idlePct: 0.5 },
        ...Array.from({ length: cores }, (_, i) => ({ name: `cpu${i}`, userPct: 44.5, systemPct: 55, iowaitPct: 0, idlePct: 0.5 })),
      ],
      memory: { totalKb: 24_105_000, availableKb: 22_478_000, freeKb: 20_534_000, buffersKb: 10_000, cachedKb: 2_057_000, swapTotalKb: 0, swapFreeKb: 0 },
      load: [7.73, 4.92, 2.66],
      running: 24,
      blocked: 0,
      contextSwitchesPerS: 8033,
      interruptsPerS: 5000,
      forksPerS: 3,
      interfaces: [
        { name: 'lo', rxBytesPerS: 219_000, txBytesPerS: 219_000, rxPacketsPerS: 699, txPacketsPerS: 699 },
        { name: 'enp0s31f6', rxBytesPerS: 900, txBytesPerS: 900, rxPacketsPerS: 10, txPacketsPerS: 10 },
      ],
      tcp: { '8080': { LISTEN: 2, ESTABLISHED: 20_480, TIME_WAIT: 1_234 }, '8081': { LISTEN: 1, ESTABLISHED: 1 }, other: { ESTABLISHED: 3 } },
      fds: processes.map((p) => ({ pid: p.pid, open: 1300 })),
    },
    point: {
      atMs: 1_700_000_100_000,
      requestsPerS: 259_878.6,
      clientErrorsPerS: 70,
      serverErrorsPerS: 8.6,
      latencyP50Ms: 0.0123,
      latencyP90Ms: 0.0234,
      latencyP99Ms: 12.3456,
      connectionsActive: 20_480,
      connectionsIdle: 19_999,
      serverCpuPct: 177,
      machineCpuPct: 199,
      rssBytes: 2.2e9,
      heapUsedBytes: 3.1e8,
    },
  }
}

const ORIGIN = '127.0.0.1:18081'
const WIDE: ScreenSize = { columns: 1000, rows: 1000 }

/**
 * Every line of a small frame is the start of a line of the unlimited frame, ending where that
 * line has a space or ends: fields and columns are left out whole, never cut in a number.
 */
function assertCutAtBoundaries(small: string[], wide: string[]): void {
  for (const line of small) {
    if (line === '' || line.startsWith('+')) continue
    const whole = wide.find((w) => w.startsWith(line) && (w.length === line.length || w[line.length] === ' '))
    assert.ok(whole !== undefined, `${JSON.stringify(line)} is cut inside a field`)
  }
}

describe('the frame fits the screen', () => {
  const sizes: ScreenSize[] = [
    { columns: 80, rows: 24 },
    { columns: 60, rows: 15 },
    { columns: 40, rows: 10 },
    { columns: 120, rows: 8 },
    { columns: 200, rows: 60 },
    { columns: 25, rows: 4 },
    { columns: 12, rows: 3 },
    { columns: 80, rows: 1 },
  ]
  for (const [workers, cores] of [
    [1, 2],
    [2, 8],
    [40, 64],
  ] as const) {
    test(`${workers} worker(s), ${cores} cores: at most rows lines of at most columns characters, the headline first, nothing cut mid-field`, () => {
      const tick = busyTick(workers, cores)
      const wide = renderTop(tick, ORIGIN, WIDE)
      for (const size of sizes) {
        const lines = renderTop(tick, ORIGIN, size)
        assert.ok(lines.length <= size.rows, `${size.columns}x${size.rows}: ${lines.length} lines`)
        for (const line of lines) assert.ok(line.length <= size.columns, `${size.columns}x${size.rows}: ${JSON.stringify(line)} is ${line.length} wide`)
        if (size.columns >= 25) assert.match(lines[0]!, /^requests\/s 259,879/, `${size.columns}x${size.rows}: the headline comes first`)
        assertCutAtBoundaries(lines, wide)
      }
    })
  }

  test('80x24: requests/s and latency on line 1, connections on line 2; a table too long for the screen says how many rows it leaves out', () => {
    const lines = renderTop(busyTick(40, 2), ORIGIN, { columns: 80, rows: 24 })
    assert.equal(lines[0], 'requests/s 259,879  latency p50 0.01 ms  p90 0.02 ms  p99 12.35 ms')
    assert.match(lines[1]!, /^connections 20,480 \(19,999 idle, 400 h2 with 1,234 streams, 56 ws\)/)
    assert.equal(lines.length, 24)
    assert.match(lines[23]!, /^\+\d+ more processes/)
    const shown = lines.filter((l) => /^\d+ +4\d{4} /.test(l)).length
    assert.equal(Number(/^\+(\d+)/.exec(lines[23]!)![1]) + shown, 40, 'shown and left-out workers add up')
  })

  test('a second without responses shows latency as -, not 0', () => {
    const tick = busyTick(1, 2)
    tick.rates.latencyMs = { p50: null, p90: null, p99: null }
    assert.equal(renderTop(tick, ORIGIN, { columns: 80, rows: 24 })[0], 'requests/s 259,879  latency p50 -  p90 -  p99 -')
  })
})

/** Run `petrel top` without blocking this process, whose event loop serves the admin it reads. */
async function runTop(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [BIN, 'top', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text))
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text))
  const [status] = (await once(child, 'exit')) as [number | null]
  return { status, stdout, stderr }
}

/** The frames `petrel top` drew on a terminal: the text between cursor-home sequences, escapes removed. */
function frames(output: string): string[][] {
  return output
    .split('\x1b[H')
    .slice(1)
    .map((chunk) =>
      chunk
        .replace(/\x1b\[\?[0-9;]*[a-zA-Z]/g, '')
        .replace(/\x1b\[[0-9;]*[A-Za-z]/g, '')
        .replace(/\r/g, '')
        .split('\n'),
    )
}

describe('petrel top on a terminal', () => {
  test("uses the terminal's size, redraws at the new size when it changes, and quits on q", { timeout: 60_000 }, async (t) => {
    requireDebianPackage('bsdutils')
    const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0 } })
    t.after(async () => {
      await serving.admin?.close()
      await serving.server.close()
    })
    // script(1) runs top on a pseudo-terminal of its own and passes our stdin to it as keys.
    const command = `stty cols 72 rows 20; tty; exec '${process.execPath}' '${BIN}' top 127.0.0.1:${serving.admin!.address.port}`
    const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] })
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGKILL')
    })
    let output = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', (text: string) => (output += text))
    const until = async (ok: () => boolean, what: string): Promise<void> => {
      const deadline = Date.now() + 20_000
      while (!ok()) {
        assert.ok(Date.now() < deadline, `${what}; output so far: ${JSON.stringify(output.slice(-2000))}`)
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    await until(() => frames(output).length >= 2, 'two frames drawn')
    const pty = /\/dev\/pts\/\d+/.exec(output)![0]
    const before = frames(output).at(-2)!
    assert.match(before[0]!, /^requests\/s /, 'the headline first')
    assert.ok(before.length <= 20, `${before.length} lines on a 20-row terminal`)
    assert.ok(
      before.every((l) => l.length <= 72),
      'every line within 72 columns',
    )
    assert.ok(
      before.some((l) => l.length > 50),
      'the frame uses the width it has',
    )

    // Resize the terminal (as a window manager does): top gets SIGWINCH and follows.
    const drawn = frames(output).length
    assert.equal(spawnSync('stty', ['-F', pty, 'cols', '50', 'rows', '12']).status, 0)
    // A frame may have been on its way when the size changed: the one after it is certainly new.
    await until(() => frames(output).length > drawn + 2, 'a frame after the resize')
    const after = frames(output).at(-2)!
    assert.ok(after.length <= 12, `${after.length} lines on a 12-row terminal`)
    assert.ok(
      after.every((l) => l.length <= 50),
      `every line within 50 columns: ${JSON.stringify(after)}`,
    )
    assert.match(after[0]!, /^requests\/s /)

    child.stdin.write('q')
    const [code] = (await Promise.race([once(child, 'exit'), new Promise((r) => setTimeout(() => r(['still running']), 10_000))])) as [unknown]
    assert.equal(code, 0, 'q quits with status 0')
    assert.ok(output.endsWith('\x1b[?25h\x1b[?1049l') || output.includes('\x1b[?1049l'), "the terminal's screen is given back")
  })
})

describe('petrel top ADMIN', () => {
  test('takes HOST:PORT as --admin does; a bad address is a usage error', async (t) => {
    const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0 } })
    t.after(async () => {
      await serving.admin?.close()
      await serving.server.close()
    })
    const run = runTop
    const ok = await run(`127.0.0.1:${serving.admin!.address.port}`, '--once')
    assert.equal(ok.status, 0, ok.stderr)
    assert.match(ok.stdout, /^requests\/s /)
    assert.match(ok.stdout, new RegExp(`petrel top  127\\.0\\.0\\.1:${serving.admin!.address.port}`))
    for (const bad of ['localhost', '127.0.0.1:http', 'https://127.0.0.1:8081']) {
      const r = await run(bad, '--once')
      assert.equal(r.status, 2, `${bad}: ${r.stderr}`)
      assert.match(r.stderr, /^petrel: bad value for ADMIN: .*HOST:PORT/)
    }
  })

  test('sends the token from --admin-token-file; without it says the server wants one', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'petrel-top-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const token = 'top-secret-token-0123456789'
    writeFileSync(path.join(dir, 'token'), `${token}\n`, { mode: 0o600 })
    const serving = await startServe({ root: null, host: '127.0.0.1', port: 0, admin: { host: '127.0.0.1', port: 0, token } })
    t.after(async () => {
      await serving.admin?.close()
      await serving.server.close()
    })
    const admin = `127.0.0.1:${serving.admin!.address.port}`
    const run = (...args: string[]) => runTop(admin, '--once', ...args)
    const without = await run()
    assert.equal(without.status, 1)
    assert.match(without.stderr, /wants the admin token \(401\): give --admin-token-file FILE/)
    const wrong = await run('--admin-token', 'not-the-token-but-long-enough')
    assert.equal(wrong.status, 1)
    assert.match(wrong.stderr, /the one given is not it/)
    const withFile = await run('--admin-token-file', path.join(dir, 'token'))
    assert.equal(withFile.status, 0, withFile.stdout)
    assert.match(withFile.stdout, /^requests\/s /)
  })
})
