// `petrel inetd --config`: the xinetd-style file, external programs run per connection with the
// socket as stdin and stdout, instances and only_from on them, and reload (apply() and SIGHUP)
// that keeps running connections and rejects a bad file naming its line.

import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import { once } from 'node:events'
import { execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, writeFileSync, chmodSync, renameSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Inetd, INETD_DEFAULTS } from '../src/apps/inetd/inetd.ts'
import { loadInetdConfig, parseInetdConfig, type ConfigDefaults } from '../src/apps/inetd/config.ts'
import { freePort } from './helpers/tcp.ts'
import { spawnInetd } from './helpers/inetd.ts'

const DEFAULTS: ConfigDefaults = { bind: '127.0.0.1', portOffset: 10_000, instances: 8, onlyFrom: null, idleTimeoutMs: 300_000, udpRate: 20 }
const dir = mkdtempSync(path.join(tmpdir(), 'petrel-inetd-'))

/**
 * Connect, send `input` and half-close (unless null), read until the server closes. A server that
 * does not get there within `timeoutMs` fails the test instead of hanging it.
 */
async function exchange(port: number, input: string | null, timeoutMs = 5000): Promise<{ text: string; closedMs: number }> {
  const started = performance.now()
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  let text = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => (text += chunk))
  const closed = once(socket, 'close', { signal: AbortSignal.timeout(timeoutMs) })
  if (input !== null) socket.end(input)
  try {
    await closed
  } catch {
    socket.destroy()
    throw new Error(`port ${port}: no complete answer within ${timeoutMs} ms (got ${JSON.stringify(text)})`)
  }
  return { text, closedMs: performance.now() - started }
}

function config(text: string): ReturnType<typeof parseInetdConfig> {
  return parseInetdConfig(text, 'inetd.conf', DEFAULTS)
}

describe('the configuration file', () => {
  test('services, defaults, built-ins and programs', () => {
    const services = config(`
# a comment
defaults
{
    instances = 3        # trailing comment
    only_from = 127.0.0.0/8 ::1
    udp_rate  = 7
}
service echo
{
    protocol = tcp
}
service daytime
{
    udp_rate = 2
}
service upper {
    port        = 10100
    server      = /usr/bin/tr a-z A-Z
    env         = LANG=C MODE=upper
}
service year
{
    port        = 10101
    server      = /bin/date -u
    server_args = "+%Y at %H"
    instances   = 1
    bind        = ::1
}
service off
{
    port    = 10102
    server  = /bin/cat
    disable = yes
}
`)
    assert.deepEqual(
      services.map((s) => [s.name, s.protocols, s.bind, s.port, s.instances, s.builtin, s.program?.path, s.program?.args, s.onlyFrom]),
      [
        ['echo', ['tcp'], '127.0.0.1', 10_007, 3, 'echo', undefined, undefined, ['127.0.0.0/8', '::1']],
        ['daytime', ['tcp', 'udp'], '127.0.0.1', 10_013, 3, 'daytime', undefined, undefined, ['127.0.0.0/8', '::1']],
        ['upper', ['tcp'], '127.0.0.1', 10_100, 3, null, '/usr/bin/tr', ['a-z', 'A-Z'], ['127.0.0.0/8', '::1']],
        ['year', ['tcp'], '::1', 10_101, 1, null, '/bin/date', ['-u', '+%Y at %H'], ['127.0.0.0/8', '::1']],
      ],
    )
    assert.deepEqual(services[2]!.program!.env, { LANG: 'C', MODE: 'upper' })
    assert.equal(services[2]!.origin, 'inetd.conf:17')
    assert.deepEqual(
      services.map((s) => s.udpRate),
      [7, 2, 7, 7],
    )
  })

  test('every mistake names the line and the key', () => {
    const cases: Array<[string, RegExp]> = [
      ['service echo\n{\n  colour = red\n}', /^inetd\.conf:3: unknown key "colour" in service echo; known keys: /],
      ['service echo\n{\n  port = 70000\n}', /^inetd\.conf:3: port = 70000: expected 1 to 65535$/],
      ['service upper\n{\n  port = 9000\n}', /^inetd\.conf:1: service upper has no "server" and is not a built-in/],
      ['service upper\n{\n  server = /bin/cat\n}', /^inetd\.conf:1: service upper needs a port/],
      ['service upper\n{\n  port = 9000\n  server = cat\n}', /^inetd\.conf:4: server = cat: give the program's absolute path \(no shell runs it\)$/],
      ['service upper\n{\n  port = 9000\n  server = /no/such/program\n}', /^inetd\.conf:4: server = \/no\/such\/program: no such file$/],
      ['service upper\n{\n  port = 9000\n  server = /etc/passwd\n}', /^inetd\.conf:4: server = \/etc\/passwd: not executable$/],
      ['service upper\n{\n  port = 9000\n  server = /tmp\n}', /^inetd\.conf:4: server = \/tmp: not a regular file$/],
      ['service upper\n{\n  port = 9000\n  protocol = udp\n  server = /bin/cat\n}', /^inetd\.conf:4: service upper: external programs serve TCP only/],
      ['service echo\n{\n  only_from = 10.0.0.0/33\n}', /^inetd\.conf:3: only_from: "10\.0\.0\.0\/33" is not an address or CIDR block/],
      ['service echo\n{\n  port = 9000\n  port = 9001\n}', /^inetd\.conf:4: "port" is set twice in service echo \(first on line 3\)$/],
      [
        'service echo\n{\n  port = 9000\n}\nservice discard\n{\n  port = 9000\n}',
        /^inetd\.conf:7: service discard: tcp 127\.0\.0\.1:9000 is already taken by echo \(line 1\)$/,
      ],
      ['service echo\n{\n  port = 9000\n', /^inetd\.conf:1: service echo is not closed with "}"$/],
      ['service echo\n  port = 9000\n}', /^inetd\.conf:2: expected "\{" to open service echo$/],
      ['services echo\n{\n}', /^inetd\.conf:1: expected "service NAME" or "defaults"/],
      ['service echo\n{\n  instances = many\n}', /^inetd\.conf:3: instances = many: expected a number ≥ 1 or UNLIMITED$/],
      ['service echo\n{\n  wait = yes\n}', /^inetd\.conf:3: wait = yes: Petrel runs one program per connection/],
      ['service echo\n{\n  user = nobody\n}', /^inetd\.conf:3: user needs a server; echo is a built-in$/],
      [
        'service upper\n{\n  port = 9000\n  server = /bin/cat\n  user = no-such-user-here\n}',
        /^inetd\.conf:5: user = no-such-user-here: no such user in \/etc\/passwd$/,
      ],
      ['service upper\n{\n  port = 9000\n  server = /bin/echo "unclosed\n}', /^inetd\.conf:4: unterminated quote/],
      ['service echo\n{\n  disable = yes\n}', /^inetd\.conf:1: no enabled service/],
      ['service echo\n{\n  only_from += 10.0.0.1\n}', /^inetd\.conf:3: "only_from \+=": Petrel takes plain "=" only/],
      ['service echo\n{\n  udp_rate = fast\n}', /^inetd\.conf:3: udp_rate = fast: expected answers per second to one client address, a whole number ≥ 1$/],
      ['defaults\n{\n  udp_rate = 0\n}\nservice echo\n{\n}', /^inetd\.conf:3: udp_rate = 0: expected/],
      ['service echo\n{\n  protocol = tcp\n  udp_rate = 5\n}', /^inetd\.conf:4: udp_rate limits UDP answers; service echo has no UDP \(protocol = tcp\)$/],
    ]
    for (const [text, expected] of cases) {
      assert.throws(
        () => config(text),
        (err: Error & { code?: string }) => {
          assert.match(err.message, expected, text)
          assert.equal(err.code, 'PETREL_ERR_INETD_CONFIG')
          return true
        },
      )
    }
  })
})

describe('external programs', () => {
  test('cat and date run with the socket as stdin and stdout; the log has a line per connection', async () => {
    const [catPort, datePort] = [await freePort(), await freePort()]
    const lines: string[] = []
    const inetd = await Inetd.start(
      config(`
service cat
{
  port = ${catPort}
  server = /bin/cat
}
service year
{
  port = ${datePort}
  server = /bin/date -u +%Y
}`),
      { log: (line) => lines.push(line) },
    )
    try {
      const big = 'x'.repeat(300_000) + '\n'
      assert.equal((await exchange(catPort, big)).text, big, 'a large input comes back whole')
      assert.equal((await exchange(datePort, null)).text, `${new Date().getUTCFullYear()}\n`)
      assert.ok(
        lines.some((l) => /^tcp cat from 127\.0\.0\.1:\d+: started \/bin\/cat pid \d+$/.test(l)),
        lines.join('\n'),
      )
      await waitFor(() => lines.some((l) => /^tcp year from 127\.0\.0\.1:\d+: pid \d+ exited with 0 after \d+ ms$/.test(l)))
    } finally {
      await inetd.close()
    }
  })

  test('instances bounds the programs running; only_from refuses a client outside it', async () => {
    const [slowPort, fencedPort] = [await freePort(), await freePort()]
    const script = path.join(dir, 'hold.sh')
    writeFileSync(script, '#!/bin/sh\necho ready\nread line\necho "got $line"\n')
    chmodSync(script, 0o755)
    const lines: string[] = []
    const inetd = await Inetd.start(
      config(`
service hold
{
  port = ${slowPort}
  server = ${script}
  instances = 1
}
service fenced
{
  port = ${fencedPort}
  server = /bin/cat
  only_from = 10.0.0.0/8
}`),
      { log: (line) => lines.push(line) },
    )
    try {
      const first = net.connect(slowPort, '127.0.0.1')
      first.setEncoding('utf8')
      first.on('error', () => {})
      const [ready] = await once(first, 'data')
      assert.equal(ready, 'ready\n')
      const refused = await exchange(slowPort, null)
      assert.equal(refused.text, '', 'the second connection is closed at once while the first runs')
      assert.ok(lines.some((l) => l.endsWith('refused, 1 instances running')))
      const closed = once(first, 'close')
      first.end('done\n')
      const [got] = await once(first, 'data')
      assert.equal(got, 'got done\n')
      await closed
      // The instance is free again once the program exits.
      await waitFor(() => inetd.running === 0)
      const again = net.connect(slowPort, '127.0.0.1')
      again.setEncoding('utf8')
      again.on('error', () => {})
      assert.equal((await once(again, 'data'))[0], 'ready\n')
      again.destroy()

      assert.equal((await exchange(fencedPort, 'let me in\n')).text, '')
      assert.ok(lines.some((l) => /^tcp fenced from 127\.0\.0\.1:\d+: refused, not in only_from$/.test(l)))
    } finally {
      await inetd.close()
    }
  })

  test('close() ends the programs still running (SIGTERM to their process group)', async () => {
    const port = await freePort()
    const inetd = await Inetd.start(config(`service sleeper\n{\n  port = ${port}\n  server = /bin/sleep 60\n}`))
    const client = net.connect(port, '127.0.0.1')
    client.on('error', () => {})
    await once(client, 'connect')
    await waitFor(() => inetd.running === 1)
    const closed = once(client, 'close')
    const started = performance.now()
    await inetd.close()
    await closed
    assert.ok(performance.now() - started < INETD_DEFAULTS.killGraceMs, 'ended by SIGTERM, not after the grace period')
  })
})

describe('reload', () => {
  test('apply(): new services listen, removed ones stop accepting, running connections carry on', async () => {
    const [a, b] = [await freePort(), await freePort()]
    const inetd = await Inetd.start(config(`service cat\n{\n  port = ${a}\n  server = /bin/cat\n}`))
    try {
      const held = net.connect(a, '127.0.0.1')
      held.on('error', () => {})
      held.setEncoding('utf8')
      await once(held, 'connect')
      await waitFor(() => inetd.running === 1)
      const changed = await inetd.apply(config(`service upper\n{\n  port = ${b}\n  server = /usr/bin/tr a-z A-Z\n}`))
      assert.deepEqual(changed, { added: 1, kept: 0, removed: 1 })
      held.write('still here\n')
      assert.equal((await once(held, 'data'))[0], 'still here\n', 'the cat started before the reload still answers')
      held.end()
      assert.equal((await exchange(b, 'shout\n')).text, 'SHOUT\n')
      const gone = net.connect(a, '127.0.0.1')
      const [err] = await once(gone, 'error')
      assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED')
      // Same address, new definition: the socket is kept and the next connection gets the new program.
      const kept = await inetd.apply(config(`service lower\n{\n  port = ${b}\n  server = /usr/bin/tr A-Z a-z\n}`))
      assert.deepEqual(kept, { added: 0, kept: 1, removed: 0 })
      assert.equal((await exchange(b, 'QUIET\n')).text, 'quiet\n')
    } finally {
      await inetd.close()
    }
  })

  test('apply() with an address that cannot be bound changes nothing', async () => {
    const [a, b] = [await freePort(), await freePort()]
    const squatter = net.createServer()
    await new Promise<void>((resolve) => squatter.listen(b, '127.0.0.1', resolve))
    const inetd = await Inetd.start(config(`service cat\n{\n  port = ${a}\n  server = /bin/cat\n}`))
    try {
      await assert.rejects(
        inetd.apply(config(`service echo\n{\n  port = ${a}\n  protocol = tcp\n}\nservice upper\n{\n  port = ${b}\n  server = /usr/bin/tr a-z A-Z\n}`)),
        /upper \(inetd\.conf:6\) on tcp 127\.0\.0\.1:\d+: address already in use/,
      )
      assert.equal((await exchange(a, 'meow\n')).text, 'meow\n')
      assert.deepEqual(
        inetd.listening.map((l) => l.service),
        ['cat'],
      )
    } finally {
      await inetd.close()
      await new Promise((resolve) => squatter.close(resolve))
    }
  })

  test('petrel inetd --config: SIGHUP reloads the file; a bad file is rejected naming the line, the old services stay', async () => {
    const [a, b] = [await freePort(), await freePort()]
    const file = path.join(dir, 'reload.conf')
    writeFileSync(file, `service cat\n{\n  port = ${a}\n  server = /bin/cat\n}\n`)
    const { child, log } = spawnInetd(['--config', file])
    try {
      await waitFor(() => log().includes('ready'), 10_000)
      const held = net.connect(a, '127.0.0.1')
      held.on('error', () => {})
      held.setEncoding('utf8')
      await once(held, 'connect')

      writeFileSync(
        file,
        `service cat\n{\n  port = ${a}\n  server = /bin/cat\n}\nservice upper\n{\n  port = ${b}\n  server = /usr/bin/tr a-z A-Z\n  colour = red\n}\n`,
      )
      child.kill('SIGHUP')
      await waitFor(() => log().includes('reload rejected'))
      assert.match(log(), /SIGHUP: reload rejected, the running services stay: .*reload\.conf:10: unknown key "colour" in service upper/)
      assert.equal((await exchange(a, 'meow\n')).text, 'meow\n')

      writeFileSync(file, `service upper\n{\n  port = ${b}\n  server = /usr/bin/tr a-z A-Z\n}\n`)
      child.kill('SIGHUP')
      await waitFor(() => log().includes('reloaded'))
      assert.match(log(), /SIGHUP: reloaded .*reload\.conf: 1 listeners added, 0 kept, 1 removed; [12] connections carry on/)
      assert.equal((await exchange(b, 'shout\n')).text, 'SHOUT\n')
      held.write('from before\n')
      assert.equal((await once(held, 'data'))[0], 'from before\n')
      held.end()
    } finally {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })

  test('petrel inetd --config with a bad file exits 2 naming the line', async () => {
    const file = path.join(dir, 'bad.conf')
    writeFileSync(file, 'service echo\n{\n  port = nope\n}\n')
    const { child, log } = spawnInetd(['--config', file])
    const [code] = await once(child, 'exit')
    assert.equal(code, 2)
    assert.match(log(), /bad\.conf:3: port = nope: expected 1 to 65535/)
  })
})

describe('the file itself: only a regular file, size-capped, read without blocking', () => {
  /** `petrel inetd ARGS`, its exit code and stderr; killed (and the test failed) if it has not exited in 10 s. */
  async function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
    const { child, log } = spawnInetd(args)
    const guard = setTimeout(() => child.kill('SIGKILL'), 10_000)
    const [code, signal] = await once(child, 'exit')
    clearTimeout(guard)
    assert.equal(signal, null, `petrel inetd ${args.join(' ')} was still running after 10 s; stderr: ${log()}`)
    return { code, stderr: log() }
  }

  test('at start-up a FIFO, a device, a directory or a file over --max-config-bytes: exit 2 with one line naming the file', async () => {
    const fifo = path.join(dir, 'start.fifo')
    execFileSync('mkfifo', [fifo])
    const big = path.join(dir, 'big.conf')
    const bigText = `service echo\n{\n}\n${'#'.repeat(200)}\n`
    writeFileSync(big, bigText)
    const suffix = 'not a regular file; give the path of the configuration file itself'
    const cases: Array<[string[], string]> = [
      [['--config', fifo], `petrel: ${fifo}: is a FIFO (named pipe), ${suffix}\n`],
      [['--config', '/dev/zero'], `petrel: /dev/zero: is a character device, ${suffix}\n`],
      [['--config', dir], `petrel: ${dir}: is a directory, ${suffix}\n`],
      [['--config', big, '--max-config-bytes', '64'], `petrel: ${big}: is ${bigText.length} bytes, over the limit of 64; raise it with --max-config-bytes\n`],
    ]
    for (const [args, expected] of cases) {
      const { code, stderr } = await runToExit(args)
      assert.equal(stderr, expected, args.join(' '))
      assert.equal(code, 2, args.join(' '))
    }
  })

  test('a file that says it is small but reads longer stops at the limit', async () => {
    // /proc files say they are 0 bytes long.
    await assert.rejects(loadInetdConfig('/proc/self/status', DEFAULTS, 100), {
      code: 'PETREL_ERR_INETD_CONFIG',
      message: '/proc/self/status: is over the limit of 100 bytes; raise it with --max-config-bytes',
    })
  })

  test('SIGHUP with the file replaced by a FIFO, /dev/zero or an oversized file: refused with a log line; the services answer during and after', async () => {
    const [catPort, echoPort, upperPort] = [await freePort(), await freePort(), await freePort()]
    const file = path.join(dir, 'hup.conf')
    const good = `service cat\n{\n  port = ${catPort}\n  server = /bin/cat\n}\nservice echo\n{\n  port = ${echoPort}\n  protocol = tcp\n}\n`
    writeFileSync(file, good)
    const { child, log } = spawnInetd(['--config', file, '--max-config-bytes', '4096'])
    try {
      await waitFor(() => log().includes('ready'), 10_000)
      const replacement = path.join(dir, 'hup.next')
      const bad: Array<[() => void, string]> = [
        [() => execFileSync('mkfifo', [replacement]), `${file}: is a FIFO (named pipe), not a regular file`],
        [() => symlinkSync('/dev/zero', replacement), `${file}: is a character device, not a regular file`],
        [
          () => writeFileSync(replacement, good + '#'.repeat(5000)),
          `${file}: is ${good.length + 5000} bytes, over the limit of 4096; raise it with --max-config-bytes`,
        ],
      ]
      for (const [make, refusal] of bad) {
        make()
        renameSync(replacement, file)
        const refusals = log().split('reload rejected').length
        child.kill('SIGHUP')
        // During: the reload has been asked for and may be under way.
        assert.equal((await exchange(echoPort, 'during\n')).text, 'during\n', refusal)
        await waitFor(() => log().split('reload rejected').length > refusals)
        assert.ok(log().includes(`SIGHUP: reload rejected, the running services stay: ${refusal}`), log())
        // After: both services, the built-in and the program.
        assert.equal((await exchange(echoPort, 'after\n')).text, 'after\n')
        assert.equal((await exchange(catPort, 'meow\n')).text, 'meow\n')
      }
      writeFileSync(replacement, `${good}service upper\n{\n  port = ${upperPort}\n  server = /usr/bin/tr a-z A-Z\n}\n`)
      renameSync(replacement, file)
      child.kill('SIGHUP')
      await waitFor(() => log().includes('reloaded'))
      assert.equal((await exchange(upperPort, 'fixed\n')).text, 'FIXED\n')
      assert.doesNotMatch(log(), /^\s+at /m, 'no stack trace')
    } finally {
      await stop(child)
    }
  })
})

/** SIGTERM, and SIGKILL if it is still there 3 s later (a process stuck in a blocking read never sees the SIGTERM). */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const kill = setTimeout(() => child.kill('SIGKILL'), 3000)
  child.kill('SIGTERM')
  await once(child, 'exit')
  clearTimeout(kill)
}

async function waitFor(condition: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting')
    await new Promise((r) => setTimeout(r, 10))
  }
}

test('a reload that removes a built-in with a client still connected returns at once; the client carries on', async () => {
  const port = await freePort()
  const other = await freePort()
  const inetd = await Inetd.start(config(`service echo\n{\n  port = ${port}\n  protocol = tcp\n}`))
  try {
    const held = net.connect(port, '127.0.0.1')
    held.on('error', () => {})
    held.setEncoding('utf8')
    await once(held, 'connect')
    const started = Date.now()
    await inetd.apply(config(`service discard\n{\n  port = ${other}\n  protocol = tcp\n}`))
    assert.ok(Date.now() - started < 1000, 'apply() did not wait for the echo client to leave')
    held.write('still echoing\n')
    assert.equal((await once(held, 'data'))[0], 'still echoing\n')
    held.destroy()
  } finally {
    await inetd.close()
  }
})
