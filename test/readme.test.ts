// The README's examples must work as written: the library example runs and prints what its
// comment says, `npm start -- …` moves to other ports, the chat one-liner joins its room.
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { freePort } from './helpers/tcp.ts'
import { makeTestCa } from './helpers/tls.ts'

test('README library example runs and prints what its comment says', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!)
  const example = blocks.find((b) => b.includes("from 'petrel'"))
  assert.ok(example, 'README has a ts example importing petrel')
  // Written inside the package so that `import 'petrel'` resolves to this package (self-reference),
  // to its TypeScript sources through the `petrel-source` export condition (the built dist/ is for
  // an installed package: test/package.test.ts runs this example there).
  const file = new URL('./.readme-example.ts', import.meta.url)
  writeFileSync(file, example)
  try {
    const out = execFileSync(process.execPath, ['--conditions=petrel-source', file.pathname], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(out.trim(), 'Hello, petrel!')
  } finally {
    rmSync(file, { force: true })
  }
})

const REPO = fileURLToPath(new URL('..', import.meta.url))
const BIN = fileURLToPath(new URL('../bin/petrel.js', import.meta.url))

/** The README line (inside a sh block) that starts with `start`. */
function readmeLine(start: string): string {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const line = readme.split('\n').find((l) => l.startsWith(start))
  assert.ok(line, `README has a line starting ${JSON.stringify(start)}`)
  return line.replace(/\s+#.*$/, '')
}

/** Output of a child process, awaited until `pattern` matches it. The stream is read on after that, so the child never writes into a closed pipe. */
function waitForOutput(stream: NodeJS.ReadableStream, pattern: RegExp): Promise<RegExpExecArray> {
  let text = ''
  stream.setEncoding('utf8')
  return new Promise((resolve, reject) => {
    stream.on('data', (chunk: string) => {
      text += chunk
      const m = pattern.exec(text)
      if (m !== null) resolve(m)
    })
    stream.on('end', () => reject(new Error(`never printed ${pattern}: ${text}`)))
  })
}

/** Stops a detached child and everything it started (its process group). */
function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL')
  } catch {}
}

test('README: `npm start -- --port P --admin HOST:Q` moves npm start to other ports', async (t) => {
  const line = readmeLine('npm start -- ')
  assert.equal(line, 'npm start -- --port 9090 --admin 127.0.0.1:9091')
  // The README's ports may be taken on a shared machine; the test uses free ones in their place.
  const [port, admin] = [await freePort(), await freePort()]
  const args = line.replace('9090', String(port)).replace('9091', String(admin)).split(' ').slice(1)
  const child = spawn('npm', args, { cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => killGroup(child))
  // The script's own --port 8080 --admin 127.0.0.1:8081 come first; the later flags win.
  await waitForOutput(
    child.stdout!,
    new RegExp(`serving the demo site on http://127\\.0\\.0\\.1:${port}/[^]*admin \\(dashboard, /metrics\\) on http://127\\.0\\.0\\.1:${admin}/`),
  )
  assert.equal(await (await fetch(`http://127.0.0.1:${port}/plaintext`)).text(), 'Hello, World!')
  assert.equal((await fetch(`http://127.0.0.1:${admin}/metrics`)).status, 200)
})

test('README: the chat one-liner joins the room it starts, with no start-up race', async (t) => {
  const line = readmeLine('npx petrel chat --port 9000 & ')
  const port = await freePort()
  const command = line.replaceAll('npx petrel', `"${process.execPath}" "${BIN}"`).replaceAll('9000', String(port))
  const shell = spawn('sh', ['-c', command], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] })
  t.after(() => killGroup(shell))
  let stderr = ''
  shell.stderr!.setEncoding('utf8').on('data', (text: string) => (stderr += text))
  const exited = once(shell, 'exit')
  const welcome = waitForOutput(shell.stdout!, /\* welcome, you are (guest\d+)/)
  const [, nick] = await Promise.race([welcome, exited.then(() => assert.fail(`the client ended before the welcome: ${stderr}`))])
  shell.stdin!.end('/who\n/quit\n')
  const [code] = await exited
  assert.equal(code, 0, `the client ends with the room's goodbye: ${stderr}`)
  assert.ok(nick)
})

test('README: the HTTPS line serves ./public over HTTPS and redirects cleartext to it', async (t) => {
  const line = readmeLine('npx petrel serve ./public -p 443 --tls-cert ')
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-readme-https-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const pair = makeTestCa(path.join(dir, 'ca')).issue(['localhost'])
  mkdirSync(path.join(dir, 'public'))
  writeFileSync(path.join(dir, 'public', 'index.html'), 'hello over https\n')
  // Ports 443 and 80 may be taken on a shared machine; free ones stand in for them, test files for site.pem and site.key.
  const [port, httpPort] = [await freePort(), await freePort()]
  const args = line
    .replace(' 443 ', ` ${port} `)
    .replace(' 80 ', ` ${httpPort} `)
    .replace('site.pem', pair.cert)
    .replace('site.key', pair.key)
    .split(' ')
    .slice(2)
  const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => child.kill('SIGKILL'))
  await waitForOutput(child.stdout!, new RegExp(`on https://127\\.0\\.0\\.1:${port}/`))
  const curl = (...more: string[]): string =>
    execFileSync('curl', ['-sS', '-i', '--cacert', path.join(dir, 'ca', 'ca.pem'), '--resolve', `localhost:${port}:127.0.0.1`, ...more], { encoding: 'utf8' })
  const page = curl(`https://localhost:${port}/`)
  // curl offers h2 by ALPN, and Petrel takes it (HTTP/2 is on by default).
  assert.match(page, /^HTTP\/2 200 /)
  assert.match(page, /\r\nStrict-Transport-Security: max-age=31536000\r\n/i)
  assert.match(page, /hello over https\n$/)
  assert.match(
    curl(`http://127.0.0.1:${httpPort}/x?y`, '-H', 'Host: localhost'),
    new RegExp(`^HTTP/1\\.1 308 [^]*\\r\\nLocation: https://localhost:${port}/x\\?y\\r\\n`, 'i'),
  )
})
