// The `petrel` command as a user meets it: exit codes, one-line errors naming the flag, help,
// and `petrel serve` serving the demo site and stopping gracefully on a signal.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from '../src/cli/args.ts'
import { SERVE_FLAGS } from '../src/cli/serve.ts'
import { BENCH_FLAGS } from '../src/cli/bench.ts'
import { INETD_FLAGS } from '../src/cli/inetd.ts'
import { PROXY_FLAGS } from '../src/cli/proxy.ts'
import { TOP_FLAGS } from '../src/cli/top.ts'

const BIN = new URL('../bin/petrel.js', import.meta.url).pathname

function petrel(...args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 15_000 })
}

test('--version prints the package version', () => {
  const r = petrel('--version')
  assert.equal(r.status, 0)
  assert.match(r.stdout, /^petrel \d+\.\d+\.\d+\n$/)
})

test('--help lists the commands; serve --help lists every limit flag with its default', () => {
  const top = petrel('--help')
  assert.equal(top.status, 0)
  assert.match(top.stdout, /serve\s+HTTP\/1\.1 web server/)
  const serve = petrel('serve', '--help')
  assert.equal(serve.status, 0)
  for (const flag of ['--host', '--port', '--max-connections', '--max-body-bytes', '--headers-timeout', '--keepalive-timeout', '--send-timeout']) {
    assert.ok(serve.stdout.includes(flag), `serve --help mentions ${flag}`)
  }
  assert.match(serve.stdout, /--max-body-bytes N\s+.*\(default 1048576\)/)
  // Durations are shown as they are typed, and the one rule for a bare number is stated.
  assert.match(serve.stdout, /--keepalive-timeout TIME\s+.*\(default 5s\)/)
  assert.match(serve.stdout, /--handler-timeout TIME\s+.*\(default 1m\)/)
  assert.match(serve.stdout, /a bare number is seconds \(5 means 5s\)/)
})

test('a bare number of TIME is seconds for every duration flag of every command', () => {
  for (const [command, specs] of [['serve', SERVE_FLAGS], ['bench', BENCH_FLAGS], ['inetd', INETD_FLAGS], ['proxy', PROXY_FLAGS], ['top', TOP_FLAGS]] as const) {
    for (const spec of specs.filter((s) => s.type === 'duration')) {
      const { flags } = parseArgs([`--${spec.name}`, '2'], specs, command)
      assert.equal(flags.get(spec.name), 2000, `petrel ${command} --${spec.name} 2 is two seconds`)
      assert.equal(parseArgs([`--${spec.name}`, '250ms'], specs, command).flags.get(spec.name), 250)
    }
  }
})

/** A keep-alive connection that has had one answer; `closed` settles when the server closes it. */
async function keptAlive(port: number): Promise<{ socket: net.Socket; closed: Promise<unknown>; isClosed: () => boolean }> {
  const socket = net.connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write('GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(socket, 'data')
  let closed = false
  const done = once(socket, 'close').then(() => (closed = true))
  socket.on('error', () => {})
  return { socket, closed: done, isClosed: () => closed }
}

test('--keepalive-timeout 1 and "keepalive-timeout": 1 in --config are one second, not one millisecond', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-time-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const config = path.join(dir, 'petrel.json')
  writeFileSync(config, JSON.stringify({ 'keepalive-timeout': 1 }))
  for (const args of [['--keepalive-timeout', '1'], ['--config', config]]) {
    const { child, port } = await startServe(args)
    t.after(() => child.kill('SIGKILL'))
    const idle = await keptAlive(port)
    t.after(() => idle.socket.destroy())
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.equal(idle.isClosed(), false, `petrel serve ${args.join(' ')}: still open 300 ms after the response`)
    // The timeout does end it: a second, not never.
    await idle.closed
    child.kill('SIGKILL')
  }
})

test('usage errors are one line naming the flag, with exit status 2', () => {
  const cases: Array<[string[], RegExp]> = [
    [['serve', '--bogus'], /unknown flag --bogus for `petrel serve`/],
    [['serve', '--port', '99999'], /bad value for --port: "99999"; expected at most 65535/],
    [['serve', '--port', 'http'], /bad value for --port: "http"; expected a whole number/],
    [['serve', '--port'], /--port needs a value/],
    [['serve', '--keepalive-timeout', 'soon'], /bad value for --keepalive-timeout: "soon"; expected a duration/],
    [['serve', '--max-connections', '0'], /bad value for --max-connections: "0"; expected at least 1/],
    [['serve', '/definitely/not/here'], /ROOT "\/definitely\/not\/here" is not a directory/],
    [['serve', 'a', 'b'], /takes one ROOT directory, got 2/],
    [['frobnicate'], /unknown command "frobnicate"; commands are: serve/],
    [['--frobnicate'], /unknown flag --frobnicate/],
  ]
  for (const [args, message] of cases) {
    const r = petrel(...args)
    assert.equal(r.status, 2, `petrel ${args.join(' ')} exits 2`)
    assert.match(r.stderr, message)
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for petrel ${args.join(' ')}: ${r.stderr}`)
  }
})

async function startServe(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.setEncoding('utf8')
  for await (const chunk of child.stdout!) {
    out += chunk
    const m = /on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)
    if (m) return { child, port: Number(m[1]) }
  }
  throw new Error(`petrel serve did not start: ${out}`)
}

test('petrel serve: demo site, /plaintext and /json', async (t) => {
  const { child, port } = await startServe([])
  t.after(() => child.kill('SIGKILL'))
  const home = await fetch(`http://127.0.0.1:${port}/`)
  assert.equal(home.status, 200)
  assert.match(home.headers.get('content-type')!, /^text\/html/)
  assert.match(await home.text(), /href="\/plaintext"/)
  const plain = await fetch(`http://127.0.0.1:${port}/plaintext`)
  assert.equal(plain.headers.get('content-type'), 'text/plain')
  assert.equal(await plain.text(), 'Hello, World!')
  const json = await fetch(`http://127.0.0.1:${port}/json`)
  assert.equal(json.headers.get('content-type'), 'application/json')
  assert.deepEqual(await json.json(), { message: 'Hello, World!' })
  const missing = await fetch(`http://127.0.0.1:${port}/no-such-page`)
  assert.equal(missing.status, 404)
})

test('petrel serve: SIGTERM finishes the request in flight, closes idle connections, exits 0', async (t) => {
  const { child, port } = await startServe([])
  t.after(() => child.kill('SIGKILL'))
  // An idle keep-alive connection and a request whose head is still arriving.
  const idle = net.connect(port, '127.0.0.1')
  await once(idle, 'connect')
  idle.write('GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n')
  await once(idle, 'data')
  const busy = net.connect(port, '127.0.0.1')
  await once(busy, 'connect')
  busy.write('GET /json HTTP/1.1\r\nHost: x\r\n')
  const idleClosed = once(idle, 'close')
  let busyReply = ''
  busy.on('data', (d) => (busyReply += d))
  const busyClosed = once(busy, 'close')
  await new Promise((r) => setTimeout(r, 100))
  child.kill('SIGTERM')
  await idleClosed
  busy.write('\r\n')
  await busyClosed
  assert.match(busyReply, /^HTTP\/1\.1 200 OK\r\n/)
  assert.match(busyReply, /Connection: close\r\n/)
  assert.match(busyReply, /\{"message":"Hello, World!"\}$/)
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)
})
