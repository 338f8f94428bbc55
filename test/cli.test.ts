// The `petrel` command as a user meets it: exit codes, one-line errors naming the flag, help,
// and `petrel serve` serving the demo site and stopping gracefully on a signal.
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { parseArgs } from '../src/cli/args.ts'
import { SERVE_FLAGS } from '../src/cli/serve-flags.ts'
import { BENCH_FLAGS } from '../src/cli/bench.ts'
import { INETD_FLAGS } from '../src/cli/inetd.ts'
import { PROXY_FLAGS } from '../src/cli/proxy.ts'
import { TOP_FLAGS } from '../src/cli/top.ts'
import { ChatRoom } from '../src/apps/chat/room.ts'
import { freePort } from './helpers/tcp.ts'

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))

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
  for (const [command, specs] of [
    ['serve', SERVE_FLAGS],
    ['bench', BENCH_FLAGS],
    ['inetd', INETD_FLAGS],
    ['proxy', PROXY_FLAGS],
    ['top', TOP_FLAGS],
  ] as const) {
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
  for (const args of [
    ['--keepalive-timeout', '1'],
    ['--config', config],
  ]) {
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
    [['chat', '--redis-reconnect-max', '1s'], /--redis-reconnect-max applies to a room in Redis; give --redis URL too/],
    [['chat', '--room', 'x'], /--room names a room in Redis; give --redis URL too/],
    [
      ['serve', '--keepalive-timeout', '9999999h'],
      /bad value for --keepalive-timeout: "9999999h"; expected at most 2147483647ms \(about 24 days, the longest a timer can wait\)/,
    ],
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

test('petrel serve: SIGQUIT finishes the request in flight, closes idle connections, exits 0 (SIGTERM is the fast stop: test/process-single.test.ts)', async (t) => {
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
  child.kill('SIGQUIT')
  await idleClosed
  busy.write('\r\n')
  await busyClosed
  assert.match(busyReply, /^HTTP\/1\.1 200 OK\r\n/)
  assert.match(busyReply, /Connection: close\r\n/)
  assert.match(busyReply, /\{"message":"Hello, World!"\}$/)
  const [code] = await once(child, 'exit')
  assert.equal(code, 0)
})

interface Run {
  args: string[]
  status: number | null
  stdout: string
  stderr: string
}

/** The status and output of `petrel ...args`, run as `asUser` when given (a uid and gid); killed after a minute. */
async function runPetrel(args: string[], asUser?: number): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(asUser === undefined ? {} : { uid: asUser, gid: asUser }) })
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (text: string) => (stdout += text))
  child.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text))
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  const [status] = (await once(child, 'close')) as [number | null]
  clearTimeout(timer)
  return { args, status, stdout, stderr }
}

/** Runs every command line, a few at a time: each is a process start of its own. */
async function runAll(commands: string[][], asUser?: number): Promise<Run[]> {
  const runs: Run[] = []
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < commands.length) {
      const index = next++
      runs[index] = await runPetrel(commands[index]!, asUser)
    }
  }
  await Promise.all([lane(), lane()])
  return runs
}

/** Holds a TCP port and a UDP port of 127.0.0.1 for the test, as another program would. */
async function holdPorts(t: { after: (fn: () => void) => void }): Promise<{ tcp: number; udp: number }> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const udp = await udpWithFreeTcpTwin()
  t.after(() => {
    server.close()
    udp.close()
  })
  return { tcp: (server.address() as net.AddressInfo).port, udp: udp.address().port }
}

/**
 * A bound UDP socket whose port's TCP twin is free, so that inetd binds the TCP side and fails on
 * UDP. The port is below the kernel's ephemeral range (32768 and up), where no outgoing
 * connection takes the TCP twin meanwhile, and the twin is checked free by listening on it once.
 */
async function udpWithFreeTcpTwin(): Promise<import('node:dgram').Socket> {
  const { createSocket } = await import('node:dgram')
  const bindsOn = (target: { once: (event: 'error', fn: () => void) => unknown }, bind: (done: () => void) => void) =>
    new Promise<boolean>((resolve) => {
      target.once('error', () => resolve(false))
      bind(() => resolve(true))
    })
  for (let tries = 0; tries < 100; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    const udp = createSocket('udp4')
    if (!(await bindsOn(udp, (done) => udp.bind(port, '127.0.0.1', done)))) {
      udp.close()
      continue
    }
    const twin = net.createServer()
    if (await bindsOn(twin, (done) => twin.listen(port, '127.0.0.1', done))) {
      await new Promise((resolve) => twin.close(resolve))
      return udp
    }
    udp.close()
  }
  throw new Error('no UDP port in 20000-31999 with its TCP twin free')
}

/** What is wrong with how a run told its mistake: not exit 1, a stack trace, not the expected words, more than one line. */
function mistakeProblems(run: Run, message: RegExp, errorOutput: string): string[] {
  const what = `petrel ${run.args.join(' ')}`
  const said = `${run.stderr}${run.stdout}`.trim()
  const problems: string[] = []
  if (run.status !== 1) problems.push(`${what}: exit ${run.status}, not 1`)
  if (/^ {4}at /m.test(said)) problems.push(`${what}: a stack trace`)
  if (!message.test(said)) problems.push(`${what}: says ${JSON.stringify(said.slice(0, 300))}, not ${message}`)
  else if (errorOutput.trim().split('\n').length !== 1) problems.push(`${what}: more than one line: ${JSON.stringify(said.slice(0, 300))}`)
  return problems
}

const asRoot = process.getuid?.() === 0
/** A root master needs --user to start workers; --user root keeps them root for the test. */
const WORKER_USER = asRoot ? ['--user', 'root'] : []

test('start-up mistakes are one line naming the problem and the fix, exit 1, and no stack trace: every command', async (t) => {
  const { tcp, udp } = await holdPorts(t)
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-mistakes-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const missing = path.join(dir, 'no-such-dir')
  const inUse = (address: string) =>
    new RegExp(`cannot listen on ${address}: the address is already in use; stop the program that holds it .* or choose another port`)
  const noDirectory = (file: string) =>
    new RegExp(`cannot (open|create the pidfile) ${file}: its directory does not exist; create the directory or give a path in one that exists`)
  const cases: Array<[string[], RegExp]> = [
    // A port another program holds.
    [['serve', '--port', String(tcp)], inUse(`127\\.0\\.0\\.1:${tcp}`)],
    [['serve', '--port', String(tcp), '--workers', '1', ...WORKER_USER], inUse(`127\\.0\\.0\\.1:${tcp}`)],
    [['serve', '--port', '0', '--admin', `127.0.0.1:${tcp}`], /cannot open the admin listener on 127\.0\.0\.1:\d+: the address is already in use/],
    [
      ['serve', '--port', '0', '--admin', `127.0.0.1:${tcp}`, '--workers', '1', ...WORKER_USER],
      /cannot open the admin listener on 127\.0\.0\.1:\d+: the address is already in use/,
    ],
    [['chat', '--port', String(tcp)], inUse(`127\\.0\\.0\\.1:${tcp}`)],
    [['chat', '--port', String(tcp), '--workers', '1'], inUse(`127\\.0\\.0\\.1:${tcp}`)],
    [['proxy', '--port', String(tcp), '--allow', 'example.com'], inUse(`127\\.0\\.0\\.1:${tcp}`)],
    [['inetd', '--services', 'echo', '--port-offset', String(tcp - 7)], inUse(`127\\.0\\.0\\.1:${tcp}`)],
    [['inetd', '--services', 'echo', '--port-offset', String(udp - 7)], inUse(`127\\.0\\.0\\.1:${udp} \\(udp\\)`)],
    // An address this machine does not have (192.0.2.0/24 is reserved for documentation).
    [
      ['serve', '--host', '192.0.2.1', '--port', '0'],
      /cannot listen on 192\.0\.2\.1:0: no network interface of this machine has that address; give one it has/,
    ],
    [['inetd', '--host', '192.0.2.1', '--services', 'echo'], /cannot listen on 192\.0\.2\.1:10007: no network interface/],
    // Logs and other files in a directory that does not exist.
    [['serve', '--port', '0', '--access-log', path.join(missing, 'access.log')], noDirectory(path.join(missing, 'access.log'))],
    [['serve', '--port', '0', '--error-log', path.join(missing, 'error.log')], noDirectory(path.join(missing, 'error.log'))],
    [
      ['serve', '--port', '0', '--access-log', path.join(missing, 'access.log'), '--workers', '1', ...WORKER_USER],
      noDirectory(path.join(missing, 'access.log')),
    ],
    [['serve', '--port', '0', '--pid', path.join(missing, 'petrel.pid')], noDirectory(path.join(missing, 'petrel.pid'))],
    [
      ['serve', '--port', '0', '--daemon', '--pid', path.join(dir, 'daemon.pid'), '--daemon-log', path.join(missing, 'daemon.log')],
      noDirectory(path.join(missing, 'daemon.log')),
    ],
    [['serve', '--port', '0', '--access-log', dir], /cannot open .*: it is a directory; give the path of a file/],
    // A Redis that is not there.
    [['chat', '--port', '0', '--redis', 'redis://127.0.0.1:1'], /cannot reach Redis; start it.*: 127\.0\.0\.1:1: connect ECONNREFUSED/],
    [['chat', '--port', '0', '--redis', 'redis://127.0.0.1:1', '--workers', '1'], /cannot reach Redis; start it.*: 127\.0\.0\.1:1: connect ECONNREFUSED/],
    // A server that is not there.
    [['top', '--once', `http://127.0.0.1:${udp}`], /cannot read .*: connect ECONNREFUSED .*; is a server running with --admin 127\.0\.0\.1:\d+\?/],
    [['bench', '-d', '100ms', `http://127.0.0.1:${udp}/`], /every request failed/],
  ]
  const runs = await runAll(cases.map(([args]) => args))
  // Every case is judged before failing, so a run lists every command that falls short.
  assert.deepEqual(
    runs.flatMap((run, index) => mistakeProblems(run, cases[index]![1], run.args[0] === 'top' ? run.stdout : run.stderr)),
    [],
  )
  assert.equal(existsSync(path.join(dir, 'daemon.pid')), false, 'the daemon that could not start left no pidfile')
})

test('start-up mistakes as an unprivileged user: a port below 1024, a log it may not write', {
  skip: asRoot ? false : 'needs root to run petrel as nobody',
}, async (t) => {
  const nobody = Number(spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).stdout.trim())
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-nobody-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  // ROOT readable by nobody; a log directory only root may write.
  const root = path.join(dir, 'public')
  const logs = path.join(dir, 'logs')
  mkdirSync(root)
  mkdirSync(logs, { mode: 0o700 })
  chmodSync(dir, 0o755)
  chmodSync(root, 0o755)
  const cases: Array<[string[], RegExp]> = [
    [
      ['serve', root, '--port', '80'],
      /cannot listen on 127\.0\.0\.1:80: permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port from 1024 up/,
    ],
    [['inetd', '--services', 'echo', '--port-offset', '0'], /cannot listen on 127\.0\.0\.1:7: permission denied: ports below 1024/],
    [['proxy', '--port', '80', '--allow', 'example.com'], /cannot listen on 127\.0\.0\.1:80: permission denied/],
    [['chat', '--port', '80'], /cannot listen on 127\.0\.0\.1:80: permission denied/],
    [
      ['serve', root, '--port', '0', '--access-log', path.join(logs, 'access.log')],
      /cannot open .*access\.log: permission denied; give a path the user running petrel may open/,
    ],
  ]
  const runs = await runAll(
    cases.map(([args]) => args),
    nobody,
  )
  assert.deepEqual(
    runs.flatMap((run, index) => mistakeProblems(run, cases[index]![1], run.stderr)),
    [],
  )
})

test('chat connect waits for a room that opens after it starts (--wait), and says when none does', async (t) => {
  const port = await freePort()
  const client = spawn(process.execPath, [BIN, 'chat', 'connect', '--wait', '60s', `127.0.0.1:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] })
  t.after(() => client.kill('SIGKILL'))
  let out = ''
  let err = ''
  client.stdout!.setEncoding('utf8').on('data', (text: string) => (out += text))
  client.stderr!.setEncoding('utf8').on('data', (text: string) => (err += text))
  // The room opens a second later, while the client knocks.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const room = new ChatRoom()
  await room.listen('127.0.0.1', port)
  t.after(() => room.close())
  client.stdin!.end('/quit\n')
  const [code] = await once(client, 'exit')
  assert.equal(code, 0, err)
  assert.match(out, /^\* welcome, you are guest1;[^]*\* bye\r\n$/)

  const closed = await freePort()
  const once0 = await runPetrel(['chat', 'connect', '--wait', '0', `127.0.0.1:${closed}`])
  assert.deepEqual(
    mistakeProblems(
      once0,
      /cannot reach the chat room; start it .*: 127\.0\.0\.1:\d+: connect ECONNREFUSED [\d.:]+ \[PETREL_ERR_CHAT_UNREACHABLE\]$/,
      once0.stderr,
    ),
    [],
  )
  const waited = await runPetrel(['chat', 'connect', '--wait', '1', `127.0.0.1:${closed}`])
  assert.deepEqual(mistakeProblems(waited, /connect ECONNREFUSED [\d.:]+ \(refused for 1s\)/, waited.stderr), [])
  // Room flags with connect, and --wait without it, are usage errors.
  assert.equal((await runPetrel(['chat', 'connect', '--max-users', '3', `127.0.0.1:${closed}`])).status, 2)
  assert.equal((await runPetrel(['chat', '--wait', '3'])).status, 2)
})

test('chat connect whose reader goes away (| head) ends without a stack trace', async (t) => {
  const room = new ChatRoom()
  const { port } = await room.listen('127.0.0.1', 0)
  t.after(() => room.close())
  const client = spawn(process.execPath, [BIN, 'chat', 'connect', `127.0.0.1:${port}`], { stdio: ['pipe', 'pipe', 'pipe'] })
  t.after(() => client.kill('SIGKILL'))
  let err = ''
  client.stderr!.setEncoding('utf8').on('data', (text: string) => (err += text))
  await once(client.stdout!, 'data')
  client.stdout!.destroy()
  // Lines for the client's stdout, now a closed pipe.
  client.stdin!.write('/who\n/who\n')
  const [code] = await once(client, 'exit')
  assert.doesNotMatch(err, /^ {4}at /m, err)
  assert.equal(code, 0, err)
})
