// Logging: access-log formats on fixed times, error-log lines and levels, and LogFile's batching,
// rotation, close, hard cap and error handling against real files in a temporary directory.
// Standard-output mode and exit-time flushing run in child processes, so the test runner's own
// stdout stays clean and "does not keep the process alive" can be observed.

import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { spawnSync } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { LogFile } from '../src/core/log-file.ts'
import { AccessLog, formatCombined, formatJson, formatTimeLocal, jsonDroppedLine } from '../src/server/access-log.ts'
import { escapeLogValue } from '../src/core/log-escape.ts'
import type { AccessLogEntry } from '../src/server/access-log.ts'
import { ErrorLog, formatErrorLine } from '../src/core/error-log.ts'

// 2026-11-26T14:03:05.250Z
const T = Date.UTC(2026, 10, 26, 14, 3, 5, 250)

function entry(overrides: Partial<AccessLogEntry> = {}): AccessLogEntry {
  return {
    remoteAddress: '203.0.113.9',
    method: 'GET',
    url: '/index.html?q=1',
    httpVersion: '1.1',
    status: 200,
    bodyBytes: 612,
    referer: 'https://example.com/',
    userAgent: 'curl/8.5.0',
    startedAtMs: T - 12.5,
    endedAtMs: T,
    ...overrides,
  }
}

let dir = ''
before(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'petrel-logs-'))
})
after(() => {
  fs.rmSync(dir, { recursive: true, force: true })
})

let fileCounter = 0
function tempPath(): string {
  return path.join(dir, `log-${++fileCounter}.log`)
}

function read(file: string): string {
  return fs.existsSync(file) ? fs.readFileSync(file, 'latin1') : ''
}

/** Waits until `check` holds, polling every 5 ms, for at most `ms`. */
async function until(check: () => boolean, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await sleep(5)
  }
}

describe('access log: combined format', () => {
  test('formats every field exactly', () => {
    assert.equal(
      formatCombined(entry()),
      '203.0.113.9 - - [26/Nov/2026:14:03:05 +0000] "GET /index.html?q=1 HTTP/1.1" 200 612 "https://example.com/" "curl/8.5.0"',
    )
  })

  test('missing and empty values are "-"; HTTP/ prefix is accepted as given', () => {
    const line = formatCombined(entry({ remoteAddress: undefined, referer: undefined, userAgent: '', httpVersion: 'HTTP/1.0', status: 304, bodyBytes: 0 }))
    assert.equal(line, '- - - [26/Nov/2026:14:03:05 +0000] "GET /index.html?q=1 HTTP/1.0" 304 0 "-" "-"')
  })

  test('a request without a method (failed before its line parsed) logs "-"', () => {
    assert.match(formatCombined(entry({ method: '', url: '', status: 400 })), /\] "-" 400 /)
  })

  test('time_local: two-digit days, every month, UTC, cached per second without going stale', () => {
    assert.equal(formatTimeLocal(Date.UTC(2026, 0, 2, 3, 4, 5)), '02/Jan/2026:03:04:05 +0000')
    assert.equal(formatTimeLocal(Date.UTC(2026, 0, 2, 3, 4, 5, 999)), '02/Jan/2026:03:04:05 +0000')
    assert.equal(formatTimeLocal(Date.UTC(2026, 0, 2, 3, 4, 6)), '02/Jan/2026:03:04:06 +0000')
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']
    for (let m = 0; m < 12; m++) assert.equal(formatTimeLocal(Date.UTC(2025, m, 15)).slice(3, 6), months[m])
    assert.equal(formatTimeLocal(Date.UTC(2025, 11, 31, 23, 59, 59)), '31/Dec/2025:23:59:59 +0000')
  })

  test('hostile user agents cannot end the field or start a line', () => {
    const hostile = 'evil" 200 1 "-" "x\r\n127.0.0.1 - - [01/Jan/2000:00:00:00 +0000] "GET / HTTP/1.1\\'
    const line = formatCombined(entry({ userAgent: hostile, referer: 'a"b' }))
    assert.equal(line.includes('\n'), false)
    assert.equal(line.includes('\r'), false)
    assert.ok(
      line.endsWith('"a\\x22b" "evil\\x22 200 1 \\x22-\\x22 \\x22x\\x0D\\x0A127.0.0.1 - - [01/Jan/2000:00:00:00 +0000] \\x22GET / HTTP/1.1\\x5C"'),
      line,
    )
    // Exactly the six quotes of the format remain.
    assert.equal(line.split('"').length - 1, 6)
  })

  test('escaping matches nginx: controls, DEL and high bytes as \\xHH, upper-case hex', () => {
    assert.equal(escapeLogValue('plain /path?a=b&c'), 'plain /path?a=b&c')
    assert.equal(escapeLogValue('\x00\x1b[31m\t\x7f'), '\\x00\\x1B[31m\\x09\\x7F')
    assert.equal(escapeLogValue('caf\xe9'), 'caf\\xE9')
    // Above latin1 (only application code can produce it): UTF-8 bytes, surrogate pairs whole.
    assert.equal(escapeLogValue('€'), '\\xE2\\x82\\xAC')
    assert.equal(escapeLogValue('a😀b'), 'a\\xF0\\x9F\\x98\\x80b')
  })

  test('the request line is escaped as well', () => {
    assert.match(formatCombined(entry({ url: '/a"b\\c\nd' })), /"GET \/a\\x22b\\x5Cc\\x0Ad HTTP\/1\.1"/)
  })
})

describe('access log: JSON format', () => {
  test('round-trips through JSON.parse with every field', () => {
    const line = formatJson(entry())
    assert.deepEqual(JSON.parse(line), {
      time: '2026-11-26T14:03:05.250Z',
      remote_addr: '203.0.113.9',
      method: 'GET',
      uri: '/index.html?q=1',
      protocol: 'HTTP/1.1',
      status: 200,
      bytes: 612,
      referer: 'https://example.com/',
      user_agent: 'curl/8.5.0',
      duration_ms: 12.5,
    })
  })

  test('hostile values survive the round trip unchanged, on one line; absent values are null', () => {
    const hostile = 'x"\\\r\n{"status":999}\x00\u2028'
    const line = formatJson(entry({ userAgent: hostile, url: '/"\n', referer: undefined, remoteAddress: undefined }))
    assert.equal(line.includes('\n'), false)
    assert.equal(line.includes('\r'), false)
    const parsed = JSON.parse(line)
    assert.equal(parsed.user_agent, hostile)
    assert.equal(parsed.uri, '/"\n')
    assert.equal(parsed.referer, null)
    assert.equal(parsed.remote_addr, null)
    assert.equal(parsed.status, 200)
  })

  test('duration is never negative and keeps at most microseconds', () => {
    assert.equal(JSON.parse(formatJson(entry({ startedAtMs: T + 5 }))).duration_ms, 0)
    assert.equal(JSON.parse(formatJson(entry({ startedAtMs: T - 1.23456789 }))).duration_ms, 1.235)
  })

  test('AccessLog writes one formatted line per record, in the chosen format', async () => {
    const combinedPath = tempPath()
    const jsonPath = tempPath()
    const combined = new LogFile(combinedPath)
    const json = new LogFile(jsonPath, { droppedLine: jsonDroppedLine })
    new AccessLog(combined, 'combined').record(entry())
    const jsonLog = new AccessLog(json, 'json')
    jsonLog.record(entry())
    jsonLog.record(entry({ status: 404 }))
    await Promise.all([combined.close(), json.close()])
    assert.equal(read(combinedPath), formatCombined(entry()) + '\n')
    const lines = read(jsonPath)
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.deepEqual(
      lines.map((l) => l.status),
      [200, 404],
    )
  })
})

describe('error log', () => {
  test('nginx error_log line shape', () => {
    assert.equal(formatErrorLine(T, 'warn', 1234, 'message'), '2026/11/26 14:03:05 [warn] 1234#0: message')
    assert.equal(formatErrorLine(Date.UTC(2026, 0, 2, 3, 4, 5), 'error', 7, 'x'), '2026/01/02 03:04:05 [error] 7#0: x')
  })

  test('filters below the level; error with an Error includes the stack', async () => {
    const file = tempPath()
    const logFile = new LogFile(file)
    const log = new ErrorLog(logFile, 'warn', { pid: 1234, now: () => T })
    log.debug('not shown')
    log.info('not shown either')
    log.warn('disk is slow')
    log.error('plain error')
    const err = new Error('boom', { cause: new Error('root cause') })
    log.error(err)
    assert.equal(log.isEnabled('info'), false)
    assert.equal(log.isEnabled('error'), true)
    await logFile.close()
    const text = read(file)
    assert.equal(text.includes('not shown'), false)
    const lines = text.split('\n')
    assert.equal(lines[0], '2026/11/26 14:03:05 [warn] 1234#0: disk is slow')
    assert.equal(lines[1], '2026/11/26 14:03:05 [error] 1234#0: plain error')
    assert.equal(lines[2], '2026/11/26 14:03:05 [error] 1234#0: Error: boom')
    assert.match(lines[3]!, /^ {4}at /)
    assert.match(text, /\nCaused by: Error: root cause\n {4}at /)
  })

  test('debug level writes everything; default pid is the process id', async () => {
    const file = tempPath()
    const logFile = new LogFile(file)
    const log = new ErrorLog(logFile, 'debug', { now: () => T })
    log.debug('d')
    log.info('i')
    await logFile.close()
    assert.equal(read(file), `2026/11/26 14:03:05 [debug] ${process.pid}#0: d\n2026/11/26 14:03:05 [info] ${process.pid}#0: i\n`)
  })

  test('a message cannot forge a line: control characters are escaped, tabs kept', async () => {
    const file = tempPath()
    const logFile = new LogFile(file)
    new ErrorLog(logFile, 'info', { pid: 1, now: () => T }).warn('bad host "x\r\n2026/11/26 14:03:05 [error] 1#0: forged\x1b[0m\tend')
    await logFile.close()
    assert.equal(read(file), '2026/11/26 14:03:05 [warn] 1#0: bad host "x\\x0D\\x0A2026/11/26 14:03:05 [error] 1#0: forged\\x1B[0m\tend\n')
  })

  test("C1 controls are escaped too, in messages and in the lines of an error's stack; other non-ASCII text stays", async () => {
    const file = tempPath()
    const logFile = new LogFile(file)
    const log = new ErrorLog(logFile, 'info', { pid: 1, now: () => T })
    // U+009B is a CSI to terminals that take 8-bit controls, as ESC [ is.
    log.warn('café \u009b31mred')
    log.error(new Error('GET /\u009b2J\x1b[2J: failed'))
    await logFile.close()
    const text = fs.readFileSync(file, 'utf8')
    assert.match(text, /^2026\/11\/26 14:03:05 \[warn\] 1#0: café \\x9B31mred\n/)
    assert.match(text, /\[error\] 1#0: Error: GET \/\\x9B2J\\x1B\[2J: failed\n    at /)
    assert.doesNotMatch(text, /[\x1b\x80-\x9f]/)
  })
})

describe('LogFile', () => {
  test('batches: nothing reaches the file until the timer, then all lines in one write', async () => {
    const file = tempPath()
    const log = new LogFile(file, { flushIntervalMs: 150 })
    for (let i = 0; i < 1000; i++) log.write(`line ${i}`)
    assert.equal(read(file), '')
    await sleep(10)
    assert.equal(read(file), '', 'still buffered before the interval')
    await until(() => read(file).length > 0)
    const lines = read(file).trimEnd().split('\n')
    assert.equal(lines.length, 1000)
    assert.equal(lines[999], 'line 999')
    assert.equal(log.writes, 1)
    await log.close()
  })

  test('flushes at once when the buffer passes flushBytes, without waiting for the timer', async () => {
    const file = tempPath()
    const log = new LogFile(file, { flushBytes: 100, flushIntervalMs: 60_000 })
    log.write('a'.repeat(40))
    log.write('b'.repeat(40))
    await sleep(20)
    assert.equal(read(file), '', 'under flushBytes: waits for the (long) timer')
    log.write('c'.repeat(40))
    await until(() => read(file).length > 0)
    assert.equal(read(file), `${'a'.repeat(40)}\n${'b'.repeat(40)}\n${'c'.repeat(40)}\n`)
    assert.equal(log.writes, 1)
    await log.close()
  })

  test('flush() resolves with the lines on disk; order is kept across batches written during a flush', async () => {
    const file = tempPath()
    const log = new LogFile(file, { flushBytes: 64, flushIntervalMs: 60_000 })
    const expected: string[] = []
    for (let i = 0; i < 500; i++) {
      log.write(`n${i}`)
      expected.push(`n${i}`)
      if (i % 37 === 0) await Promise.resolve()
    }
    await log.flush()
    assert.deepEqual(read(file).trimEnd().split('\n'), expected)
    assert.ok(log.writes > 1 && log.writes < 500, `writes: ${log.writes}`)
    await log.close()
  })

  test('creates the file with mode 0640 (or stricter under the umask) and appends to an existing one', async () => {
    const file = tempPath()
    fs.writeFileSync(file, 'old\n')
    fs.chmodSync(file, 0o600)
    const log = new LogFile(file)
    log.write('new')
    await log.close()
    assert.equal(read(file), 'old\nnew\n')

    const fresh = tempPath()
    const freshLog = new LogFile(fresh)
    await freshLog.open()
    await freshLog.close()
    assert.equal(fs.statSync(fresh).mode & ~0o640 & 0o777, 0)
  })

  test('reopen after rename: old lines in the moved file, new lines in a new file at the path', async () => {
    const file = tempPath()
    const log = new LogFile(file, { flushIntervalMs: 60_000 })
    log.write('before 1')
    log.write('before 2')
    await log.flush()
    fs.renameSync(file, file + '.1')
    log.write('still before the reopen')
    await log.reopen()
    log.write('after 1')
    log.write('after 2')
    await log.flush()
    assert.equal(read(file + '.1'), 'before 1\nbefore 2\nstill before the reopen\n')
    assert.equal(read(file), 'after 1\nafter 2\n')
    await log.close()
  })

  test('reopen that cannot open the path keeps the old file: lines go on there, the error is reported and returned', async () => {
    const sub = path.join(dir, `reopen-${++fileCounter}`)
    fs.mkdirSync(sub)
    const file = path.join(sub, 'access.log')
    const errors: Error[] = []
    const log = new LogFile(file, { flushIntervalMs: 60_000, onError: (e) => errors.push(e) })
    log.write('before')
    await log.flush()
    // logrotate moved the whole directory away; the path cannot be created again.
    const moved = `${sub}.moved`
    fs.renameSync(sub, moved)
    const failure = await log.reopen()
    assert.equal((failure as NodeJS.ErrnoException | null)?.code, 'ENOENT')
    assert.equal(errors.length, 1)
    log.write('after the failed reopen')
    await log.close()
    assert.equal(read(path.join(moved, 'access.log')), 'before\nafter the failed reopen\n')
    assert.equal(log.dropped, 0)
    // A reopen that works resolves with null.
    const ok = new LogFile(tempPath())
    assert.equal(await ok.reopen(), null)
    await ok.close()
  })

  test('reopen queued behind an in-flight flush does not lose or reorder lines', async () => {
    const file = tempPath()
    const log = new LogFile(file, { flushBytes: 10, flushIntervalMs: 60_000 })
    log.write('0123456789 first batch')
    const reopened = log.reopen()
    log.write('queued during reopen')
    await reopened
    await log.close()
    assert.equal(read(file), '0123456789 first batch\nqueued during reopen\n')
  })

  test('close() loses nothing and later writes are counted as dropped', async () => {
    const file = tempPath()
    const log = new LogFile(file, { flushBytes: 1000, flushIntervalMs: 60_000 })
    for (let i = 0; i < 5000; i++) log.write(`line ${i}`)
    const closed = log.close()
    log.write('after close')
    await closed
    const lines = read(file).trimEnd().split('\n')
    assert.equal(lines.length, 5000)
    assert.equal(lines[4999], 'line 4999')
    assert.equal(log.dropped, 1)
    assert.equal(log.errors, 0)
    await log.close()
    await log.flush()
  })

  test('hard cap: lines past it are dropped and counted, one notice is written where the gap is', async () => {
    const file = tempPath()
    const log = new LogFile(file, { flushBytes: 1 << 20, flushIntervalMs: 60_000, maxBufferBytes: 100 })
    for (let i = 0; i < 10; i++) log.write(`kept ${i}`) // 7 bytes each with the newline: 70
    for (let i = 0; i < 50; i++) log.write(`lost ${String(i).padStart(2, '0')} ${'x'.repeat(30)}`)
    assert.equal(log.dropped, 50)
    assert.ok(log.pendingBytes <= 100)
    await log.flush()
    log.write('after recovery')
    await log.close()
    const lines = read(file).trimEnd().split('\n')
    assert.deepEqual(
      lines.slice(0, 10),
      Array.from({ length: 10 }, (_, i) => `kept ${i}`),
    )
    assert.equal(lines[10], 'petrel: 50 log lines were lost (log buffer full or write failed)')
    assert.equal(lines[11], 'after recovery')
    assert.equal(lines.length, 12)
    assert.equal(read(file).includes('lost '), true, 'only in the notice')
    assert.equal(read(file).includes('lost 0'), false)
  })

  test('hard cap counts the batch in flight: a stuck write keeps memory bounded', async () => {
    // A FIFO with no reader blocks the open in the thread pool: the disk is "stuck".
    const fifo = path.join(dir, 'stuck.fifo')
    const made = spawnSync('mkfifo', [fifo])
    if (made.status !== 0) return
    const log = new LogFile(fifo, { flushBytes: 50, flushIntervalMs: 60_000, maxBufferBytes: 200 })
    const notice = (n: number) => `petrel: ${n} log lines were lost (log buffer full or write failed)`
    const chunks: Buffer[] = []
    let reader: fs.ReadStream | null = null
    const unblock = () => {
      if (reader !== null) return
      reader = fs.createReadStream(fifo)
      reader.on('data', (c) => chunks.push(c as Buffer))
    }
    try {
      for (let i = 0; i < 1000; i++) log.write(`line ${String(i).padStart(4, '0')}`) // 10 bytes each
      assert.equal(log.pendingBytes, 200)
      assert.equal(log.dropped, 1000 - 20)
      // The 20 kept lines and the notice for the gap after them are now one batch blocked in
      // flight; they still count against the cap, so further lines are dropped.
      await sleep(20)
      assert.equal(log.pendingBytes, 200 + notice(980).length + 1)
      for (let i = 0; i < 10; i++) log.write('more')
      assert.equal(log.dropped, 990)
    } finally {
      // Unblock whatever happened: a blocked open would otherwise hold the test process open.
      unblock()
    }
    await log.close()
    await new Promise((resolve) => reader!.on('close', resolve))
    const lines = Buffer.concat(chunks).toString('latin1').trimEnd().split('\n')
    assert.equal(lines.length, 22)
    assert.equal(lines[0], 'line 0000')
    assert.equal(lines[19], 'line 0019')
    assert.equal(lines[20], notice(980))
    assert.equal(lines[21], notice(10))
  })

  test('write errors never throw: reported through onError, counted, and the lines counted as lost', async () => {
    const errors: Error[] = []
    const missing = path.join(dir, 'no-such-dir', 'access.log')
    const log = new LogFile(missing, { onError: (e) => errors.push(e), flushIntervalMs: 60_000 })
    log.write('one')
    log.write('two')
    await log.flush()
    assert.equal(errors.length, 1)
    assert.equal((errors[0] as NodeJS.ErrnoException).code, 'ENOENT')
    assert.equal(log.dropped, 2)
    assert.equal(log.errors, 1)
    // The directory appears (an operator fixed it): the next flush opens, writes the notice first.
    fs.mkdirSync(path.dirname(missing))
    log.write('three')
    await log.close()
    assert.equal(read(missing), 'petrel: 2 log lines were lost (log buffer full or write failed)\nthree\n')
  })

  test('ENOSPC on /dev/full is reported, not thrown; a throwing onError is contained', async (t) => {
    if (!fs.existsSync('/dev/full')) return t.skip('no /dev/full')
    let seen: NodeJS.ErrnoException | null = null
    const log = new LogFile('/dev/full', {
      onError: (e) => {
        seen = e
        throw new Error('the callback itself fails')
      },
    })
    log.write('x')
    await log.flush()
    log.flushSync()
    log.write('y')
    log.flushSync()
    await log.close()
    assert.equal(seen!.code, 'ENOSPC')
    // Four failed writes: x, the notice for x, y, the notice for y at close. Only x and y are log lines.
    assert.equal(log.errors, 4)
    assert.equal(log.dropped, 2)
  })

  test('open() rejects for a path that cannot be opened, for startup checks', async () => {
    const log = new LogFile(path.join(dir, 'missing-dir', 'x.log'))
    await assert.rejects(log.open(), { code: 'ENOENT' })
    await log.close()
  })

  test('flushSync writes the buffer at once, for exit paths', () => {
    const file = tempPath()
    const log = new LogFile(file, { flushIntervalMs: 60_000 })
    log.write('a')
    log.write('b')
    log.flushSync()
    assert.equal(read(file), 'a\nb\n')
    log.flushSync()
    assert.equal(read(file), 'a\nb\n')
  })
})

describe('LogFile in a child process', () => {
  const moduleUrl = new URL('../src/core/log-file.ts', import.meta.url).href

  function run(code: string) {
    return spawnSync(process.execPath, ['--input-type=module', '-e', `import { LogFile } from ${JSON.stringify(moduleUrl)}\n${code}`], {
      encoding: 'utf8',
      timeout: 10_000,
    })
  }

  test("'-' writes to stdout in order and does not crash", () => {
    const child = run(`
      const log = new LogFile('-', { flushBytes: 30, flushIntervalMs: 5 })
      for (let i = 0; i < 100; i++) log.write('out ' + i)
      await log.reopen()
      log.write('after reopen')
      await log.close()
    `)
    assert.equal(child.status, 0, child.stderr)
    const expected = Array.from({ length: 100 }, (_, i) => `out ${i}`).join('\n') + '\nafter reopen\n'
    assert.equal(child.stdout, expected)
  })

  test("'-' survives a closed stdout pipe (EPIPE) and reports it", () => {
    const child = spawnSync('sh', ['-c', `"${process.execPath}" --input-type=module -e "$CODE" | head -c 1 >/dev/null`], {
      encoding: 'utf8',
      timeout: 10_000,
      env: {
        ...process.env,
        CODE: `import { LogFile } from ${JSON.stringify(moduleUrl)}
            const log = new LogFile('-', { flushBytes: 1 })
            for (let round = 0; round < 50; round++) {
              log.write('x'.repeat(1000))
              await log.flush()
              await new Promise((r) => setTimeout(r, 2))
            }
            await log.close()
            process.stderr.write('errors=' + log.errors + ' ' + (log.lastError?.code ?? '') + '\\n')`,
      },
    })
    assert.equal(child.status, 0, child.stderr)
    assert.match(child.stderr, /errors=[1-9]\d* EPIPE/)
  })

  test('a pending flush timer does not keep the process alive; flushSync on exit keeps the lines', () => {
    const file = tempPath()
    const started = Date.now()
    const child = run(`
      const log = new LogFile(${JSON.stringify(file)}, { flushIntervalMs: 60_000 })
      process.on('exit', () => log.flushSync())
      log.write('written at exit')
    `)
    assert.equal(child.status, 0, child.stderr)
    assert.ok(Date.now() - started < 8000)
    assert.equal(read(file), 'written at exit\n')
  })
})
