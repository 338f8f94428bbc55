// The CGI/1.1 gateway (RFC 3875) end to end: `startServe` with --cgi-bin pointing at scripts
// written here, raw HTTP on the wire, and the processes themselves checked in /proc.

import { fileURLToPath } from 'node:url'
import { test, describe, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { randomBytes } from 'node:crypto'
import { startServe, DEMO_CGI_BIN, type Serving } from '../src/apps/serve/serve.ts'
import { CGI_DEFAULTS, Slots } from '../src/apps/serve/cgi.ts'
import { parseCgiHead, parseCgiPath } from '../src/apps/serve/cgi-message.ts'
import { DEFAULT_LIMITS } from '../src/core/limits.ts'
import { RawClient, exchange, req, chunked } from './helpers/tcp.ts'
import { requireDebianPackage } from './helpers/debian.ts'

const SEQ_LINES = 2_000_000

const SCRIPTS: Record<string, string> = {
  'env.sh': '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\nenv | sort\n',
  'cat.sh': '#!/bin/sh\nprintf "Content-Type: application/octet-stream\\n\\n"\nexec cat\n',
  'status.sh': '#!/bin/sh\nprintf "Status: 418 I am a teapot\\nContent-Type: text/plain\\nX-Custom: yes\\n\\nshort and stout\\n"\n',
  'local.sh': '#!/bin/sh\nprintf "Location: /cgi-bin/env.sh/moved?from=local\\n\\n"\n',
  'local-file.sh': '#!/bin/sh\nprintf "Location: /hello.txt\\n\\n"\n',
  'loop.sh': '#!/bin/sh\nprintf "Location: /cgi-bin/loop.sh\\n\\n"\n',
  'client.sh': '#!/bin/sh\nprintf "Location: https://example.com/elsewhere\\n\\n"\n',
  'length.sh': '#!/bin/sh\nprintf "Content-Type: text/plain\\nContent-Length: 5\\n\\nhello, and more than declared"\n',
  'stderr.sh': '#!/bin/sh\necho "something went sideways" >&2\nprintf "Content-Type: text/plain\\n\\nok"\n',
  'garbage.sh': '#!/bin/sh\nprintf "this is not a header\\n\\nbody"\n',
  'silent.sh': '#!/bin/sh\nexit 3\n',
  // Starts a grandchild and records its pid, then never prints a head.
  'hang.sh': '#!/bin/sh\nsleep 60 &\necho $! > "$PIDS/$QUERY_STRING"\nwait\n',
  // Prints its head and part of a body, then hangs.
  'hang-late.sh': '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\npartial"\nsleep 60 &\necho $! > "$PIDS/$QUERY_STRING"\nwait\n',
  'slow.sh': '#!/bin/sh\nsleep 0.4\nprintf "Content-Type: text/plain\\n\\nslow"\n',
  'hello.sh': '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nhi"\n',
  // Writes without end, as fast as the pipe takes it.
  'zero.sh': '#!/bin/sh\nprintf "Content-Type: application/octet-stream\\n\\n"\nexec cat /dev/zero\n',
  // About 15 MB of numbered lines: more than the kernel's socket buffers hold, so a slow reader
  // makes the gateway stop and start many times.
  'seq.sh': `#!/bin/sh\nprintf "Content-Type: text/plain\\n\\n"\nexec seq 1 ${SEQ_LINES}\n`,
  // ESC, CR, a UTF-8 C1 control (CSI), a quote and a backslash on stderr.
  'esc.sh': '#!/bin/sh\nprintf \'a\\033[2Jb\\015c\\302\\233d "q" \\\\ e\\r\\n\' >&2\nprintf "Content-Type: text/plain\\n\\nok"\n',
}

/** The error-log text of esc.sh's stderr line: every control byte, quote and backslash as \xHH. */
const ESCAPED_STDERR = 'cgi esc.sh: a\\x1B[2Jb\\x0Dc\\xC2\\x9Bd \\x22q\\x22 \\x5C e'

let root: string
let cgiDir: string
let pidDir: string
let errorLogPath: string
let serving: Serving
let port: number

function pidsEnv(script: string): string {
  // hang.sh reads $PIDS from its environment: give it through a wrapper that sets it.
  return script.replace('#!/bin/sh\n', `#!/bin/sh\nPIDS='${pidDir}'\n`)
}

before(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'petrel-cgi-'))
  cgiDir = path.join(root, 'cgi')
  pidDir = path.join(root, 'pids')
  mkdirSync(cgiDir)
  mkdirSync(pidDir)
  mkdirSync(path.join(root, 'www'))
  writeFileSync(path.join(root, 'www', 'hello.txt'), 'a static file\n')
  writeFileSync(path.join(root, 'outside.sh'), '#!/bin/sh\nprintf "Content-Type: text/plain\\n\\nescaped"\n', { mode: 0o755 })
  for (const [name, text] of Object.entries(SCRIPTS)) writeFileSync(path.join(cgiDir, name), pidsEnv(text), { mode: 0o755 })
  writeFileSync(path.join(cgiDir, 'not-executable.sh'), SCRIPTS['hello.sh']!, { mode: 0o644 })
  writeFileSync(path.join(cgiDir, '.hidden.sh'), SCRIPTS['hello.sh']!, { mode: 0o755 })
  symlinkSync(path.join(root, 'outside.sh'), path.join(cgiDir, 'link-out.sh'))
  mkdirSync(path.join(cgiDir, 'subdir'))
  errorLogPath = path.join(root, 'error.log')
  serving = await startServe({
    root: path.join(root, 'www'),
    host: '127.0.0.1',
    port: 0,
    cgi: { dir: cgiDir, maxProcesses: 4, queueLength: 8, timeoutMs: 1500 },
    logs: { errorLog: errorLogPath },
  })
  port = serving.address.port
})

after(async () => {
  await serving.server.close({ destroy: true })
  await serving.closeLogs()
  rmSync(root, { recursive: true, force: true })
})

async function get(target: string, headers: Record<string, string | number> = {}, body?: string | Buffer) {
  const { responses, client } = await exchange(port, req(body === undefined ? 'GET' : 'POST', target, { Connection: 'close', ...headers }, body))
  assert.equal(responses.length, 1, `one response to ${target}`)
  return { response: responses[0]!, client }
}

function envOf(text: string): Map<string, string> {
  const env = new Map<string, string>()
  for (const line of text.trim().split('\n')) {
    const eq = line.indexOf('=')
    env.set(line.slice(0, eq), line.slice(eq + 1))
  }
  return env
}

/** Whether `pid` runs: a zombie waiting for whoever inherited it to reap it does not. */
function alive(pid: number): boolean {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return false
  }
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
}

async function until(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (check()) return true
    await new Promise((r) => setTimeout(r, 20))
  }
  return check()
}

describe('meta-variables (RFC 3875 §4.1)', () => {
  test('an absolute-form target: its authority is SERVER_NAME and HTTP_HOST, whatever Host says; PATH_INFO is from the normalised path', async () => {
    const { response } = await get('http://front.example:8080/cgi-bin/env.sh/a/%2e%2e/b?q=1', { Host: 'other.example' })
    assert.equal(response.status, 200)
    const env = envOf(response.text)
    assert.equal(env.get('SERVER_NAME'), 'front.example')
    assert.equal(env.get('HTTP_HOST'), 'front.example:8080')
    assert.equal(env.get('SCRIPT_NAME'), '/cgi-bin/env.sh')
    assert.equal(env.get('PATH_INFO'), '/b')
    assert.equal(env.get('QUERY_STRING'), 'q=1')
  })

  test('exactly the RFC set, the request fields as HTTP_*, a PATH, and REQUEST_SCHEME', async () => {
    const { response, client } = await get('/cgi-bin/env.sh/some/where%20else?a=1&b=%20', {
      Host: 'example.test:8443',
      'X-Trace-Id': 'abc',
      Proxy: 'http://evil',
      Cookie: 'k=v',
    })
    assert.equal(response.status, 200)
    const env = envOf(response.text)
    void client
    assert.deepEqual(Object.fromEntries(env), {
      GATEWAY_INTERFACE: 'CGI/1.1',
      HTTP_CONNECTION: 'close',
      HTTP_COOKIE: 'k=v',
      HTTP_HOST: 'example.test:8443',
      HTTP_X_TRACE_ID: 'abc',
      PATH: '/usr/local/bin:/usr/bin:/bin',
      PATH_INFO: '/some/where else',
      PWD: cgiDir,
      QUERY_STRING: 'a=1&b=%20',
      REMOTE_ADDR: '127.0.0.1',
      REMOTE_PORT: env.get('REMOTE_PORT'),
      REQUEST_METHOD: 'GET',
      // Not RFC 3875's, but set by Apache and nginx's fastcgi_params; HTTPS=on only over TLS.
      REQUEST_SCHEME: 'http',
      SCRIPT_NAME: '/cgi-bin/env.sh',
      SERVER_NAME: 'example.test',
      SERVER_PORT: String(port),
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_SOFTWARE: env.get('SERVER_SOFTWARE'),
      // Set by sh itself:
      ...(env.has('SHLVL') ? { SHLVL: env.get('SHLVL') } : {}),
      ...(env.has('_') ? { _: env.get('_') } : {}),
      ...(env.has('OLDPWD') ? { OLDPWD: env.get('OLDPWD') } : {}),
    })
    assert.match(env.get('SERVER_SOFTWARE')!, /^petrel\/\d+\.\d+\.\d+$/)
    assert.match(env.get('REMOTE_PORT')!, /^\d+$/)
    assert.equal(env.has('HTTP_PROXY'), false, 'never HTTP_PROXY (httpoxy)')
  })

  test('a field name with anything but letters, digits and "-" is not passed: X_Real-IP cannot pose as X-Real-IP', async () => {
    const { response } = await get('/cgi-bin/env.sh', {
      'X-Real-IP': '203.0.113.7',
      'X_Real-IP': '198.51.100.66',
      'X.Real.IP': '198.51.100.67',
      Accept_Language: 'xx',
    })
    const env = envOf(response.text)
    assert.equal(env.get('HTTP_X_REAL_IP'), '203.0.113.7')
    assert.doesNotMatch(response.text, /198\.51\.100\.6[67]/)
    assert.equal(env.has('HTTP_ACCEPT_LANGUAGE'), false)
    // Alone, the spoofing spelling does not arrive under the real name either.
    const alone = envOf((await get('/cgi-bin/env.sh', { 'X_Real-IP': '198.51.100.66' })).response.text)
    assert.equal(alone.has('HTTP_X_REAL_IP'), false)
  })

  test('a POST has CONTENT_LENGTH and CONTENT_TYPE, not HTTP_CONTENT_*', async () => {
    const { response } = await get('/cgi-bin/env.sh', { 'Content-Type': 'application/x-www-form-urlencoded' }, 'a=b')
    const env = envOf(response.text)
    assert.equal(env.get('REQUEST_METHOD'), 'POST')
    assert.equal(env.get('CONTENT_LENGTH'), '3')
    assert.equal(env.get('CONTENT_TYPE'), 'application/x-www-form-urlencoded')
    assert.equal(env.has('HTTP_CONTENT_LENGTH'), false)
    assert.equal(env.has('HTTP_CONTENT_TYPE'), false)
  })

  test('HTTP/1.0 requests say so in SERVER_PROTOCOL', async () => {
    const { responses } = await exchange(port, req('GET', '/cgi-bin/env.sh', {}, undefined, '1.0'))
    assert.equal(envOf(responses[0]!.text).get('SERVER_PROTOCOL'), 'HTTP/1.0')
  })
})

describe('bodies', () => {
  test('a 200 KB POST body round-trips through cat', async () => {
    const body = randomBytes(200 * 1024)
    const { response } = await get('/cgi-bin/cat.sh', {}, body)
    assert.equal(response.status, 200)
    assert.equal(response.headers['transfer-encoding'], 'chunked')
    assert.ok(response.body.equals(body))
  })

  test('a chunked request body is read whole and given with CONTENT_LENGTH', async () => {
    const { responses } = await exchange(
      port,
      req('POST', '/cgi-bin/cat.sh', { 'Transfer-Encoding': 'chunked', Connection: 'close' }, chunked(['hello ', 'chunked ', 'world'])),
    )
    assert.equal(responses[0]!.text, 'hello chunked world')
  })

  test('keep-alive goes on after a CGI answer, also when the script ignores the body', async () => {
    const client = await RawClient.connect(port)
    try {
      await client.write(Buffer.concat([req('POST', '/cgi-bin/hello.sh', {}, 'x'.repeat(100_000)), req('GET', '/cgi-bin/status.sh')]))
      const [first, second] = await client.readResponses(2)
      assert.equal(first!.text, 'hi')
      assert.equal(second!.status, 418)
    } finally {
      client.destroy()
    }
  })

  test('a script that does not read its stdin holds the body back at the client (backpressure)', async () => {
    writeFileSync(path.join(cgiDir, 'nap.sh'), '#!/bin/sh\nsleep 1\nprintf "Content-Type: text/plain\\n\\nrested"\n', { mode: 0o755 })
    const big = await startServe({ root: path.join(root, 'www'), host: '127.0.0.1', port: 0, limits: { maxBodyBytes: 64 * 1024 * 1024 }, cgi: { dir: cgiDir } })
    const client = await RawClient.connect(big.address.port)
    try {
      const body = Buffer.alloc(48 * 1024 * 1024, 0x61)
      void client.write(req('POST', '/cgi-bin/nap.sh', { Connection: 'close' }, body)).catch(() => {})
      await new Promise((r) => setTimeout(r, 600))
      const accepted = client.socket.bytesWritten - client.socket.writableLength
      assert.ok(accepted < 16 * 1024 * 1024, `${accepted} bytes taken while the script read none`)
      const response = await client.readResponse({ timeoutMs: 10_000 })
      assert.equal(response.text, 'rested')
    } finally {
      client.destroy()
      await big.server.close({ destroy: true })
    }
  })

  test('a Content-Length from the script frames the body, and nothing past it is sent', async () => {
    const { response } = await get('/cgi-bin/length.sh')
    assert.equal(response.headers['content-length'], '5')
    assert.equal(response.text, 'hello')
  })

  test('HEAD gets the head the script printed and no body', async () => {
    const { raw } = await exchange(port, req('HEAD', '/cgi-bin/status.sh', { Connection: 'close' }))
    const text = raw.toString('latin1')
    assert.match(text, /^HTTP\/1\.1 418 [^\r]*\r\n/)
    assert.match(text, /\r\nX-Custom: yes\r\n/)
    assert.ok(text.endsWith('\r\n\r\n'), 'nothing after the head')
  })
})

describe("the script's head", () => {
  test('Status and other fields pass through', async () => {
    const { response } = await get('/cgi-bin/status.sh')
    assert.equal(response.status, 418)
    assert.equal(response.headers['x-custom'], 'yes')
    assert.equal(response.text, 'short and stout\n')
  })

  test('a local Location is an internal redirect to another script, as GET with the new path and query', async () => {
    const { response } = await get('/cgi-bin/local.sh', {}, 'posted')
    assert.equal(response.status, 200)
    const env = envOf(response.text)
    assert.equal(env.get('SCRIPT_NAME'), '/cgi-bin/env.sh')
    assert.equal(env.get('PATH_INFO'), '/moved')
    assert.equal(env.get('QUERY_STRING'), 'from=local')
    assert.equal(env.get('REQUEST_METHOD'), 'GET')
    assert.equal(env.has('CONTENT_LENGTH'), false)
  })

  test("a local redirect keeps the request's HTTP version: HTTP/1.0 without Host works", async () => {
    const { responses } = await exchange(port, req('GET', '/cgi-bin/local.sh', {}, undefined, '1.0'))
    assert.equal(responses[0]!.status, 200)
    assert.equal(envOf(responses[0]!.text).get('SERVER_PROTOCOL'), 'HTTP/1.0')
  })

  test('a local Location can lead to a static file', async () => {
    const { response } = await get('/cgi-bin/local-file.sh')
    assert.equal(response.status, 200)
    assert.equal(response.text, 'a static file\n')
  })

  test('a redirect loop ends in 500 after 10 internal redirects', async () => {
    const { response } = await get('/cgi-bin/loop.sh')
    assert.equal(response.status, 500)
  })

  test('an absolute Location is a 302 to the client', async () => {
    const { response } = await get('/cgi-bin/client.sh')
    assert.equal(response.status, 302)
    assert.equal(response.headers.location, 'https://example.com/elsewhere')
  })

  test('a head that is not one is a 502, and so is no output at all', async () => {
    assert.equal((await get('/cgi-bin/garbage.sh')).response.status, 502)
    assert.equal((await get('/cgi-bin/silent.sh')).response.status, 502)
  })

  test('stderr goes to the error log', async () => {
    const { response } = await get('/cgi-bin/stderr.sh')
    assert.equal(response.text, 'ok')
    assert.ok(
      await until(
        () => existsSync(errorLogPath) && (serving.reopenLogs(), readFileSync(errorLogPath, 'utf8').includes('cgi stderr.sh: something went sideways')),
        2000,
      ),
      readFileSync(errorLogPath, 'utf8'),
    )
  })

  test('stderr reaches the error log escaped as the access log escapes: no raw ESC, CR or C1 control', async () => {
    const { response } = await get('/cgi-bin/esc.sh')
    assert.equal(response.text, 'ok')
    const logText = (): string => (existsSync(errorLogPath) ? (serving.reopenLogs(), readFileSync(errorLogPath, 'latin1')) : '')
    assert.ok(await until(() => logText().includes(ESCAPED_STDERR), 2000), logText())
    const raw = readFileSync(errorLogPath)
    for (const byte of [0x1b, 0x0d, 0x9b]) assert.equal(raw.indexOf(byte), -1, `no raw 0x${byte.toString(16)} in the error log`)
  })
})

describe('which files run', () => {
  for (const [target, status] of [
    ['/cgi-bin/nope.sh', 404],
    ['/cgi-bin/', 404],
    ['/cgi-bin/.hidden.sh', 404],
    ['/cgi-bin/not-executable.sh', 403],
    ['/cgi-bin/subdir', 403],
    ['/cgi-bin/link-out.sh', 403],
    ['/cgi-bin/..%2foutside.sh', 400],
    // The server resolves dot-segments before routing (protocol/http1/target.ts): these name the
    // site root and ROOT/outside.sh, which are not scripts; one that climbs above "/" is 400.
    ['/cgi-bin/%2e%2e', 403],
    ['/cgi-bin/env.sh/../../outside.sh', 404],
    ['/cgi-bin/env.sh/a/%2e%2e/../../../..', 400],
    ['/cgi-bin/env.sh/a%2fb', 400],
    ['/cgi-bin/env.sh%00', 400],
  ] as const) {
    test(`${target} → ${status}`, async () => {
      const { response } = await get(target)
      assert.equal(response.status, status, response.text)
      assert.doesNotMatch(response.text, /escaped|PATH=/)
    })
  }

  test('other spellings of a /cgi-bin/ URL never serve a script as a file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'petrel-cgi-root-'))
    mkdirSync(path.join(dir, 'cgi-bin'))
    writeFileSync(path.join(dir, 'cgi-bin', 'secret.sh'), '#!/bin/sh\n# SOURCE CODE\nprintf "Content-Type: text/plain\\n\\nran"\n', { mode: 0o755 })
    const inside = await startServe({ root: dir, host: '127.0.0.1', port: 0, cgi: { dir: path.join(dir, 'cgi-bin') } })
    try {
      for (const target of ['/cgi%2Dbin/secret.sh', '/x/../cgi-bin/secret.sh', '//cgi-bin/secret.sh', '/cgi-bin/./secret.sh', '/%63gi-bin/secret.sh']) {
        const { responses } = await exchange(inside.address.port, req('GET', target, { Connection: 'close' }))
        assert.doesNotMatch(responses[0]!.text, /SOURCE CODE/, target)
      }
      const { responses } = await exchange(inside.address.port, req('GET', '/cgi-bin/secret.sh', { Connection: 'close' }))
      assert.equal(responses[0]!.text, 'ran')
    } finally {
      await inside.server.close({ destroy: true })
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test("a script's Status: 1xx is not an answer: 502", async () => {
    writeFileSync(path.join(cgiDir, 'interim.sh'), '#!/bin/sh\nprintf "Status: 100 Continue\\n\\n"\n', { mode: 0o755 })
    assert.equal((await get('/cgi-bin/interim.sh')).response.status, 502)
  })

  test('methods other than GET, HEAD and POST → 405 with Allow', async () => {
    const { responses } = await exchange(port, req('DELETE', '/cgi-bin/env.sh', { Connection: 'close' }))
    assert.equal(responses[0]!.status, 405)
    assert.equal(responses[0]!.headers.allow, 'GET, HEAD, POST')
  })
})

describe('processes', () => {
  test('the timeout kills the whole process group and answers 504 when no head was sent', async () => {
    const started = Date.now()
    const { response } = await get('/cgi-bin/hang.sh?timeout')
    assert.equal(response.status, 504)
    assert.ok(Date.now() - started >= 1400, 'not before --cgi-timeout')
    const grandchild = Number(readFileSync(path.join(pidDir, 'timeout'), 'utf8'))
    assert.ok(await until(() => !alive(grandchild), 2000), "the script's child was killed too")
  })

  test('a timeout after the head cuts the response off', async () => {
    const { response, client } = await get('/cgi-bin/hang-late.sh?late').catch(async () => ({ response: null, client: null }))
    // The chunked body never gets its last chunk: the raw client sees the connection closed early.
    assert.equal(response, null)
    void client
    const grandchild = Number(readFileSync(path.join(pidDir, 'late'), 'utf8'))
    assert.ok(await until(() => !alive(grandchild), 2000))
  })

  test('a client that goes away kills its script', async () => {
    const client = await RawClient.connect(port)
    await client.write(req('GET', '/cgi-bin/hang.sh?gone'))
    const pidFile = path.join(pidDir, 'gone')
    assert.ok(await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 2000))
    const grandchild = Number(readFileSync(pidFile, 'utf8'))
    assert.ok(alive(grandchild))
    client.destroy()
    assert.ok(await until(() => !alive(grandchild), 1000), 'killed well before the timeout')
  })

  test('a script that answers after the handler timeout: the client got its 503, the server stays up', async () => {
    // The handler timeout leaves a fresh script time to answer on a loaded machine; the slow one
    // answers well after it.
    writeFileSync(path.join(cgiDir, 'slower.sh'), '#!/bin/sh\nsleep 2\nprintf "Content-Type: text/plain\\n\\nslower"\n', { mode: 0o755 })
    const late = await startServe({
      root: path.join(root, 'www'),
      host: '127.0.0.1',
      port: 0,
      timeouts: { handlerMs: 1000 },
      cgi: { dir: cgiDir, timeoutMs: 5000 },
    })
    try {
      const { responses } = await exchange(late.address.port, req('GET', '/cgi-bin/slower.sh', { Connection: 'close' }))
      assert.equal(responses[0]!.status, 503)
      // The script's late answer arrives meanwhile, and is dropped.
      await new Promise((r) => setTimeout(r, 1500))
      const again = await exchange(late.address.port, req('GET', '/cgi-bin/hello.sh', { Connection: 'close' }))
      assert.equal(again.responses[0]!.text, 'hi')
    } finally {
      await late.server.close({ destroy: true })
    }
  })

  test('a client that half-closes while its script runs: the script is killed and the connection ends', async () => {
    const client = await RawClient.connect(port)
    await client.write(req('GET', '/cgi-bin/hang-late.sh?half'))
    const pidFile = path.join(pidDir, 'half')
    assert.ok(await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '', 2000))
    const grandchild = Number(readFileSync(pidFile, 'utf8'))
    client.socket.end()
    await client.readUntilClose(1000)
    assert.ok(await until(() => !alive(grandchild), 1000))
    client.destroy()
  })

  test('a full queue answers 503 with Retry-After', async () => {
    // 4 running + 8 queued; the 13th and later are refused.
    const clients = await Promise.all(Array.from({ length: 14 }, () => RawClient.connect(port)))
    try {
      await Promise.all(clients.map((c) => c.write(req('GET', '/cgi-bin/slow.sh', { Connection: 'close' }))))
      const answers = await Promise.all(clients.map(async (c) => (await c.readResponses(1, { timeoutMs: 5000 }))[0]!))
      const refused = answers.filter((r) => r.status === 503)
      assert.equal(refused.length, 2, answers.map((r) => r.status).join(','))
      assert.equal(refused[0]!.headers['retry-after'], '1')
      assert.equal(answers.filter((r) => r.status === 200).length, 12)
    } finally {
      for (const c of clients) c.destroy()
    }
  })

  test('no zombies after 500 requests', async () => {
    for (let batch = 0; batch < 50; batch++) {
      const answers = await Promise.all(Array.from({ length: 10 }, () => get('/cgi-bin/hello.sh')))
      for (const { response } of answers) assert.equal(response.text, 'hi')
    }
    await new Promise((r) => setTimeout(r, 100))
    // Every descendant of this process (the server runs here; the scripts are children of its
    // spawner process): none may be a zombie.
    const descendants = descendantsOf(process.pid)
    const children = descendants.map((p) => `${p.pid} ${p.state}`)
    const zombies = descendants.filter((p) => p.state === 'Z')
    assert.deepEqual(zombies, [], `children: ${children.join(', ')}`)
  })
})

interface ProcessInfo {
  pid: number
  ppid: number
  state: string
  comm: string
  rssBytes: number
}

/** Every process of the machine, from /proc/PID/stat. */
function processTable(): ProcessInfo[] {
  const table: ProcessInfo[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let stat: string
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
    } catch {
      continue
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    // Fields after the name, from 0: state, ppid, … rss (pages) is the 22nd.
    table.push({ pid: Number(entry), ppid: Number(fields[1]), state: fields[0]!, comm, rssBytes: Number(fields[21]) * 4096 })
  }
  return table
}

/** The processes below `root` (children, their children, …), not `root` itself. */
function descendantsOf(root: number): ProcessInfo[] {
  const table = processTable()
  const found = new Set([root])
  for (let grew = true; grew; ) {
    grew = false
    for (const p of table) {
      if (found.has(p.ppid) && !found.has(p.pid)) {
        found.add(p.pid)
        grew = true
      }
    }
  }
  return table.filter((p) => p.pid !== root && found.has(p.pid))
}

/** Resident memory of `root` and every process below it. */
function treeRssBytes(root: number): number {
  let total = 0
  for (const p of processTable()) if (p.pid === root) total += p.rssBytes
  for (const p of descendantsOf(root)) total += p.rssBytes
  return total
}

/** Bytes `pid` has written (write(2) calls completed), from /proc/PID/io. */
function bytesWrittenBy(pid: number): number {
  try {
    return Number(/^wchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))![1])
  } catch {
    return -1
  }
}

function openDescriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))

/** `petrel serve` as a process of its own, so that its memory is its own; stderr is its error log. */
async function startServeProcess(args: string[]): Promise<{ child: ChildProcess; port: number; stderr: () => Buffer }> {
  const child = spawn(process.execPath, [BIN, 'serve', ...args, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const errChunks: Buffer[] = []
  child.stderr!.on('data', (chunk: Buffer) => errChunks.push(chunk))
  let out = ''
  child.stdout!.setEncoding('utf8')
  child.stdout!.on('data', (text: string) => (out += text))
  const started = await until(() => /on http:\/\/127\.0\.0\.1:\d+\//.test(out) || child.exitCode !== null, 15_000)
  const m = /on http:\/\/127\.0\.0\.1:(\d+)\//.exec(out)
  if (!started || m === null) {
    child.kill('SIGKILL')
    throw new Error(`petrel serve did not start: ${out}${Buffer.concat(errChunks).toString()}`)
  }
  return { child, port: Number(m[1]), stderr: () => Buffer.concat(errChunks) }
}

/**
 * --cgi-timeout of the server that streams to slow clients: shorter than they keep its scripts
 * waiting, and long enough for the script's own time (the gateway relaying 15 MB on a loaded
 * machine).
 */
const SHORT_CGI_TIMEOUT_MS = 5000

describe('output backpressure: a script that writes without end', () => {
  let server: Awaited<ReturnType<typeof startServeProcess>>
  before(async () => {
    server = await startServeProcess([path.join(root, 'www'), '--cgi-bin', cgiDir, '--cgi-timeout', `${SHORT_CGI_TIMEOUT_MS}ms`])
  })
  after(async () => {
    server.child.kill('SIGKILL')
    // The spawner sees its channel close and kills its scripts; wait for that.
    await until(() => descendantsOf(server.child.pid!).length === 0, 3000)
  })

  test('4 clients that never read: the process tree stays bounded, and leaving frees everything', async () => {
    const serverPid = server.child.pid!
    // Warm up: the spawner starts on first use and belongs in the baseline.
    const warm = await exchange(server.port, req('GET', '/cgi-bin/hello.sh', { Connection: 'close' }))
    assert.equal(warm.responses[0]!.text, 'hi')
    await new Promise((r) => setTimeout(r, 300))
    const spawner = descendantsOf(serverPid).find((p) => readFileSync(`/proc/${p.pid}/cmdline`, 'latin1').includes('cgi-spawner-main'))
    assert.ok(spawner !== undefined, 'the spawner process runs')
    const baselineRss = treeRssBytes(serverPid)
    const baselineFds = [openDescriptors(serverPid), openDescriptors(spawner.pid)]

    const clients = await Promise.all(Array.from({ length: 4 }, () => RawClient.connect(server.port, { paused: true })))
    try {
      await Promise.all(clients.map((c) => c.write(req('GET', '/cgi-bin/zero.sh'))))
      const scripts = (): ProcessInfo[] => descendantsOf(serverPid).filter((p) => p.comm === 'cat')
      assert.ok(await until(() => scripts().length === 4, 3000), 'the 4 scripts run')
      // What the gateway may hold of one script's output (docs/logic.md): the bytes not yet
      // acknowledged (the window plus the pipe read that crossed it), a paused pipe's buffer in
      // the spawner, and the client socket's buffer just under its high-water mark plus one
      // write. The kernel's socket buffers fill first (several MB per connection); those bytes
      // pass through both heaps as garbage that the collector frees later, so the allowance
      // adds room for it. A gateway without backpressure passes it within a few seconds (it
      // grew by 40 to 250 MB a second here, depending on the machine's load).
      const pipeReadBytes = 64 * 1024
      const perScriptBytes = CGI_DEFAULTS.outputWindowBytes + DEFAULT_LIMITS.writeHighWaterMark + 3 * pipeReadBytes
      const allowanceBytes = 4 * perScriptBytes + 128 * 1024 * 1024
      let peakBytes = 0
      const sample = async (): Promise<void> => {
        await new Promise((r) => setTimeout(r, 250))
        peakBytes = Math.max(peakBytes, treeRssBytes(serverPid))
      }
      // The scripts are held once they stop getting their writes done: everything between them
      // and the clients is full. Without backpressure that never happens.
      const written = (): string =>
        scripts()
          .map((p) => bytesWrittenBy(p.pid))
          .join(',')
      let lastWritten = written()
      let stillFor = 0
      const deadline = Date.now() + 20_000
      while (stillFor < 3 && Date.now() < deadline && peakBytes - baselineRss <= allowanceBytes) {
        await sample()
        const now = written()
        stillFor = now === lastWritten ? stillFor + 1 : 0
        lastWritten = now
      }
      const mb = (n: number): string => `${(n / 1048576).toFixed(1)} MB`
      assert.ok(peakBytes - baselineRss <= allowanceBytes, `the tree grew by ${mb(peakBytes - baselineRss)} (allowed ${mb(allowanceBytes)})`)
      assert.equal(stillFor, 3, `the scripts are still writing after 20 s (bytes written: ${lastWritten})`)
      // Held for a while longer: nothing moves, nothing grows.
      const settledBytes = treeRssBytes(serverPid)
      for (let i = 0; i < 8; i++) await sample()
      const lastBytes = treeRssBytes(serverPid)
      assert.ok(peakBytes - baselineRss <= allowanceBytes, `the tree grew by ${mb(peakBytes - baselineRss)} (allowed ${mb(allowanceBytes)})`)
      assert.ok(lastBytes - settledBytes <= 16 * 1024 * 1024, `still growing while the scripts are held: ${mb(settledBytes)} → ${mb(lastBytes)}`)
      assert.equal(written(), lastWritten, 'the scripts stay held')
      assert.equal(scripts().length, 4, 'the scripts are held, not killed')
      assert.ok(
        clients.every((c) => !c.closedByServer),
        'the connections stay open',
      )
    } finally {
      for (const c of clients) c.destroy()
    }
    // The clients left: their scripts are killed and every descriptor is given back.
    assert.ok(await until(() => descendantsOf(serverPid).filter((p) => p.comm === 'cat').length === 0, 3000), 'the scripts are gone')
    assert.ok(
      await until(() => openDescriptors(serverPid) === baselineFds[0] && openDescriptors(spawner.pid) === baselineFds[1], 3000),
      `descriptors: server ${openDescriptors(serverPid)} (was ${baselineFds[0]}), spawner ${openDescriptors(spawner.pid)} (was ${baselineFds[1]})`,
    )
  })

  test('a slow reader gets every byte, in order, however long the script is held for it', async () => {
    const client = await RawClient.connect(server.port, { paused: true })
    try {
      await client.write(req('GET', '/cgi-bin/seq.sh', { Connection: 'close' }))
      // Everything between the script and the client fills up and stops, for longer than
      // --cgi-timeout: time the script spends held by its client is not its own. Then the client
      // reads in short bursts, so the gateway stops and starts again many times.
      await new Promise((r) => setTimeout(r, SHORT_CGI_TIMEOUT_MS + 500))
      const deadline = Date.now() + 30_000
      while (!client.closedByServer && Date.now() < deadline) {
        client.socket.resume()
        await new Promise((r) => setTimeout(r, 2))
        client.socket.pause()
        await new Promise((r) => setTimeout(r, 5))
      }
      client.socket.resume()
      const response = await client.readResponse({ timeoutMs: 5000 })
      assert.equal(response.status, 200)
      let expected = ''
      for (let n = 1; n <= SEQ_LINES; n++) expected += `${n}\n`
      assert.equal(response.body.length, expected.length)
      assert.ok(response.body.equals(Buffer.from(expected, 'latin1')), "the body is seq's output, byte for byte")
    } finally {
      client.destroy()
    }
  })

  test('a client that never reads is closed by the send timeout, and its held script killed', async () => {
    const strict = await startServe({ root: path.join(root, 'www'), host: '127.0.0.1', port: 0, timeouts: { sendMs: 1000 }, cgi: { dir: cgiDir } })
    const client = await RawClient.connect(strict.address.port, { paused: true })
    try {
      await client.write(req('GET', '/cgi-bin/zero.sh'))
      const scripts = (): ProcessInfo[] => descendantsOf(process.pid).filter((p) => p.comm === 'cat')
      assert.ok(await until(() => scripts().length === 1, 3000), 'the script runs')
      assert.ok(await until(() => scripts().length === 0, 10_000), 'the script is killed once the connection is closed')
    } finally {
      client.destroy()
      await strict.server.close({ destroy: true })
    }
  })

  test("without an error log, stderr lines reach the server's stderr escaped", async () => {
    const { responses } = await exchange(server.port, req('GET', '/cgi-bin/esc.sh', { Connection: 'close' }))
    assert.equal(responses[0]!.text, 'ok')
    assert.ok(await until(() => server.stderr().toString('latin1').includes(ESCAPED_STDERR), 2000), server.stderr().toString('latin1'))
    const raw = server.stderr()
    for (const byte of [0x1b, 0x0d, 0x9b]) assert.equal(raw.indexOf(byte), -1, `no raw 0x${byte.toString(16)} on stderr`)
  })
})

describe('parts', () => {
  test('parseCgiPath', () => {
    assert.deepEqual(parseCgiPath('/cgi-bin/a.sh'), { name: 'a.sh', pathInfo: '' })
    assert.deepEqual(parseCgiPath('/cgi-bin/a.sh/'), { name: 'a.sh', pathInfo: '/' })
    assert.deepEqual(parseCgiPath('/cgi-bin/a%20b/x/y%2Bz'), { name: 'a b', pathInfo: '/x/y+z' })
    assert.deepEqual(parseCgiPath('/cgi-bin/a/%ZZ'), { status: 400 })
  })

  test('parseCgiHead', () => {
    assert.deepEqual(parseCgiHead('Content-Type: text/html\r\nStatus: 404 Gone away\r\nX-A:1'), {
      status: 404,
      reason: 'Gone away',
      statusGiven: true,
      fields: [
        ['Content-Type', 'text/html'],
        ['X-A', '1'],
      ],
      location: null,
    })
    assert.equal((parseCgiHead('Location: http://x/') as { status: number }).status, 302)
    assert.equal((parseCgiHead('Status: 301\nLocation: http://x/') as { status: number }).status, 301)
    assert.equal(parseCgiHead('Status: 99 nope'), 'malformed Status "99 nope"')
    assert.equal(parseCgiHead('no colon here'), 'malformed header line "no colon here"')
  })

  test('Slots: bounded, queued in order, a queued waiter can leave', async () => {
    const slots = new Slots(1, 1)
    const never = new AbortController().signal
    assert.equal(slots.acquire(never), true)
    const leaving = new AbortController()
    const queued = slots.acquire(leaving.signal)
    assert.ok(queued instanceof Promise)
    assert.equal(slots.acquire(never), false, 'queue full')
    leaving.abort()
    assert.equal(await queued, false)
    const next = slots.acquire(never)
    slots.release()
    assert.equal(await next, true)
    assert.equal(slots.running, 1)
    slots.release()
    assert.equal(slots.running, 0)
  })
})

describe("the demo site's scripts", () => {
  let demo: Serving
  before(async () => {
    demo = await startServe({ root: null, host: '127.0.0.1', port: 0, cgi: { dir: DEMO_CGI_BIN } })
  })
  after(() => demo.server.close({ destroy: true }))

  async function demoGet(target: string, body?: string, extra: Record<string, string> = {}) {
    const headers: Record<string, string> =
      body === undefined ? { Connection: 'close', ...extra } : { Connection: 'close', 'Content-Type': 'application/x-www-form-urlencoded', ...extra }
    const { responses } = await exchange(demo.address.port, req(body === undefined ? 'GET' : 'POST', target, headers, body))
    return responses[0]!
  }

  test('hello.sh: a shell script', async () => {
    const response = await demoGet('/cgi-bin/hello.sh/some/path?x=1')
    assert.equal(response.status, 200)
    assert.match(response.text, /^Hello from a shell script/)
    assert.match(response.text, /\nPATH_INFO=\/some\/path\nQUERY_STRING=x=1\n/)
  })

  test('env.py: a Python script', async () => {
    requireDebianPackage('python3')
    const response = await demoGet('/cgi-bin/env.py')
    assert.equal(response.status, 200)
    assert.match(response.text, /<th>GATEWAY_INTERFACE<\/th><td>CGI\/1\.1<\/td>/)
  })

  test('env.py does not show credentials: a page on the same origin could read an HttpOnly cookie through it', async () => {
    requireDebianPackage('python3')
    const response = await demoGet('/cgi-bin/env.py', undefined, {
      Cookie: 'session=COOKIE-SECRET',
      Authorization: 'Basic QVVUSC1TRUNSRVQ=',
      'Proxy-Authorization': 'Basic UFJPWFktU0VDUkVU',
      'X-Shown': 'visible',
    })
    assert.equal(response.status, 200)
    assert.match(response.text, /<th>HTTP_X_SHOWN<\/th><td>visible<\/td>/)
    assert.doesNotMatch(response.text, /COOKIE-SECRET|QVVUSC1TRUNSRVQ|UFJPWFktU0VDUkVU/)
    assert.doesNotMatch(response.text, /<th>HTTP_(COOKIE|AUTHORIZATION|PROXY_AUTHORIZATION)<\/th>/)
  })

  test('form.py: reads a POSTed form from stdin', async () => {
    requireDebianPackage('python3')
    const response = await demoGet('/cgi-bin/form.py', 'name=Ann+%3Cb%3E&message=hi')
    assert.equal(response.status, 200)
    assert.match(response.text, /<li><b>name<\/b> = Ann &lt;b&gt;<\/li>/)
    assert.match(response.text, /<li><b>message<\/b> = hi<\/li>/)
  })
})
