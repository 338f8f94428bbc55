// The package as a user gets it: `npm pack` (whose `prepack` builds dist/), then `npm install` of
// the tarball into a new project, which imports 'petrel' from plain JavaScript and from
// TypeScript, type-checks against its declarations, and runs its `petrel` command. Node refuses
// to strip types under node_modules, so all of this runs the built JavaScript, and the files it
// reads at run time (the demo site, the dashboard's assets, uPlot and mime-db from the project's
// node_modules, the worker and thread-pool mains) must be found from dist/.
//
// Packing builds dist/ in the repo, as `npm pack` does for a maintainer; the repo never runs it.
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const REPO = fileURLToPath(new URL('..', import.meta.url))
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version
const TSC = path.join(path.dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc')
/** The only paths the tarball may hold (npm adds package.json itself). */
const ALLOWED = /^(?:package\.json|README\.md|LICENSE|(?:bin|dist|src|site)\/.+)$/

/**
 * A user's shell: none of the npm_* variables that `npm test` passes down (the repo's npm
 * configuration and lifecycle, which a user's npm would not have), so the test runs the same
 * under `npm test` as alone; and the user's Node first on PATH: this test's own, a Node >= 24, so that npm, npx and the installed bin's
 * `#!/usr/bin/env node` run on it. Nothing in the project can reach the repo's node_modules, so
 * the pinned `node` devDependency is not what makes the package work.
 */
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_')))
env.PATH = `${path.dirname(process.execPath)}${path.delimiter}${process.env.PATH ?? ''}`

let dir = ''
let project = ''
let packed: { filename: string; files: Array<{ path: string }> }

/** `command args` run to its end in `cwd`; its output, or a failure that shows all of it. */
function run(command: string, args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, env, encoding: 'utf8', timeout: 90_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, stdout, stderr })
    })
  })
}

async function mustRun(command: string, args: string[], cwd: string): Promise<string> {
  const result = await run(command, args, cwd)
  assert.equal(result.code, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

/**
 * The installed `petrel ARGS`, started as a user's shell would (node_modules/.bin/petrel, run by
 * its `#!/usr/bin/env node`), and what it printed once `ready` matches. Detached: the program and
 * every process it starts are one process group, killed together after the test.
 */
async function startInstalled(
  t: { after: (fn: () => void) => void },
  args: string[],
  ready: RegExp,
): Promise<{ output: string; exited: Promise<number | null> }> {
  const child = spawn(path.join(project, 'node_modules', '.bin', 'petrel'), args, { cwd: project, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {}
  })
  let output = ''
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  return new Promise((resolve, reject) => {
    const take = (text: string): void => {
      output += text
      if (ready.test(output)) resolve({ output, exited })
    }
    child.stdout.setEncoding('utf8').on('data', take)
    child.stderr.setEncoding('utf8').on('data', take)
    child.on('exit', (code) => reject(new Error(`petrel ${args.join(' ')} exited (${code}) before it was ready: ${output}`)))
  })
}

before(
  async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'petrel-package-'))
    project = path.join(dir, 'project')
    mkdirSync(project)
    const json = await mustRun('npm', ['pack', '--json', '--pack-destination', dir], REPO)
    packed = (JSON.parse(json) as Array<typeof packed>)[0]!
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'uses-petrel', private: true, type: 'module' }))
    // The dependencies come from npm's cache when it has them (it does after the repo's `npm ci`).
    await mustRun('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', path.join(dir, packed.filename)], project)
  },
  { timeout: 180_000 },
)

after(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true })
})

describe('the packed package, installed into a new project', { concurrency: true, timeout: 120_000 }, () => {
  test('the tarball holds only bin/, dist/, src/, site/, README.md, LICENSE and package.json, and the built entry points', () => {
    const paths = packed.files.map((file) => file.path)
    assert.deepEqual(
      paths.filter((p) => !ALLOWED.test(p)),
      [],
    )
    for (const needed of [
      'LICENSE',
      'README.md',
      'bin/petrel.js',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/cli/main.js',
      'dist/monitor/assets/dashboard.js',
      'dist/apps/serve/cgi-spawner-main.mjs',
      'site/index.html',
    ]) {
      assert.ok(paths.includes(needed), `the tarball has ${needed}`)
    }
  })

  test("plain JavaScript imports createServer from 'petrel' and serves a request", async () => {
    writeFileSync(
      path.join(project, 'hello.mjs'),
      [
        "import { createServer } from 'petrel'",
        'const app = createServer()',
        "app.get('/hello/:name', (req, res) => res.end(`Hello, ${req.params.name}!`))",
        "const { port } = await app.listen({ host: '127.0.0.1', port: 0 })",
        'const reply = await fetch(`http://127.0.0.1:${port}/hello/package`)',
        'console.log(reply.status, await reply.text())',
        'await app.close()',
      ].join('\n'),
    )
    assert.equal((await mustRun('node', ['hello.mjs'], project)).trim(), '200 Hello, package!')
  })

  test("TypeScript: the README's example type-checks against the declarations and runs; a type error is caught", async () => {
    const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8')
    const example = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!).find((block) => block.includes("from 'petrel'"))
    assert.ok(example, 'README has a ts example importing petrel')
    writeFileSync(path.join(project, 'example.ts'), example)
    // Declarations that resolved to `any` would accept this line: a number is not a string.
    writeFileSync(path.join(project, 'wrong.ts'), "import { DEFAULT_LIMITS } from 'petrel'\nexport const bytes: string = DEFAULT_LIMITS.maxBodyBytes\n")
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          target: 'esnext',
          strict: true,
          noEmit: true,
          // A Node project has @types/node; this one borrows the repo's rather than install it.
          types: ['node'],
          typeRoots: [path.join(REPO, 'node_modules', '@types')],
        },
        files: ['example.ts', 'wrong.ts'],
      }),
    )
    const checked = await run('node', [TSC, '-p', '.'], project)
    const errors = checked.stdout.split('\n').filter((line) => / error TS\d+/.test(line))
    assert.equal(errors.length, 1, `one type error, in wrong.ts:\n${checked.stdout}${checked.stderr}`)
    assert.match(errors[0]!, /^wrong\.ts\(2,14\): error TS2322: Type 'number' is not assignable to type 'string'/)
    // The user's own TypeScript runs by Node's type stripping; petrel under node_modules is JavaScript.
    assert.equal((await mustRun('node', ['example.ts'], project)).trim(), 'Hello, petrel!')
  })

  test('`npx petrel --version` runs the installed command', async () => {
    assert.equal((await mustRun('npx', ['--no-install', 'petrel', '--version'], project)).trim(), `petrel ${VERSION}`)
  })

  test('an installed copy without dist/ says so and how to get one, instead of failing on TypeScript', async () => {
    const copy = path.join(dir, 'unbuilt', 'node_modules', 'petrel')
    mkdirSync(copy, { recursive: true })
    for (const entry of ['package.json', 'bin', 'src']) cpSync(path.join(project, 'node_modules', 'petrel', entry), path.join(copy, entry), { recursive: true })
    const result = await run('node', [path.join(copy, 'bin', 'petrel.js'), '--version'], dir)
    assert.equal(result.code, 1)
    assert.equal(
      result.stderr,
      `petrel: ${path.join(copy, 'dist')}/ is missing: this copy of Petrel was installed without its build; install a package made by \`npm pack\` (whose prepack script builds dist/)\n`,
    )
  })

  test('`petrel serve` from the package: the demo site, CGI, the thread pool and the dashboard, with a worker process; `petrel bench` on threads; --signal quit through the pidfile', async (t) => {
    const user = process.getuid?.() === 0 ? ['--user', 'root'] : []
    const pidFile = path.join(dir, 'serve.pid')
    const { output, exited } = await startInstalled(
      t,
      ['serve', '--host', '127.0.0.1', '--port', '0', '--admin', '127.0.0.1:0', '--workers', '1', '--pid', pidFile, ...user],
      /serving http:\/\/127\.0\.0\.1:\d+\//,
    )
    const ports = {
      site: Number(/serving http:\/\/127\.0\.0\.1:(\d+)\//.exec(output)![1]),
      admin: Number(/admin \(dashboard, \/metrics\) on http:\/\/127\.0\.0\.1:(\d+)\//.exec(output)![1]),
    }
    const get = async (port: number, target: string): Promise<{ status: number; type: string | null; body: string }> => {
      const reply = await fetch(`http://127.0.0.1:${port}${target}`)
      return { status: reply.status, type: reply.headers.get('content-type'), body: await reply.text() }
    }
    const page = await get(ports.site, '/')
    assert.equal(page.status, 200)
    assert.equal(page.type, 'text/html; charset=utf-8')
    assert.equal(page.body, readFileSync(path.join(REPO, 'site', 'index.html'), 'utf8'))
    const svg = await get(ports.site, '/favicon.svg')
    assert.equal(svg.status, 200)
    assert.equal(svg.type, 'image/svg+xml; charset=utf-8', 'the media type comes from mime-db')
    const cgi = await get(ports.site, '/cgi-bin/hello.sh')
    assert.equal(cgi.status, 200, cgi.body)
    assert.match(cgi.body, /^Hello from a shell script, run by Petrel's CGI gateway\.\n[^]*\nGATEWAY_INTERFACE=CGI\/1\.1\n/)
    const pooled = await get(ports.site, '/scrypt/pool')
    assert.equal(pooled.status, 200, pooled.body)
    assert.equal((JSON.parse(pooled.body) as { where: string }).where, 'pool', 'hashed on the thread pool')
    const script = await get(ports.admin, '/dashboard.js')
    assert.equal(script.status, 200)
    assert.equal(script.body, readFileSync(path.join(REPO, 'src', 'monitor', 'assets', 'dashboard.js'), 'utf8'))
    const uplot = await get(ports.admin, '/vendor/uPlot.iife.min.js')
    assert.equal(uplot.status, 200)
    assert.equal(uplot.body, readFileSync(path.join(project, 'node_modules', 'uplot', 'dist', 'uPlot.iife.min.js'), 'utf8'))
    // Two load threads, each a worker_threads module of the package.
    const bench = await run(
      path.join(project, 'node_modules', '.bin', 'petrel'),
      ['bench', '-t', '2', '-c', '2', '-d', '300ms', '--expect-status', '200', `http://127.0.0.1:${ports.site}/plaintext`],
      project,
    )
    assert.equal(bench.code, 0, `${bench.stdout}${bench.stderr}`)
    // The pidfile names a process that the installed package recognises as its own server.
    const quit = await run(path.join(project, 'node_modules', '.bin', 'petrel'), ['serve', '--signal', 'quit', '--pid', pidFile], project)
    assert.equal(quit.code, 0, `${quit.stdout}${quit.stderr}`)
    assert.equal(await exited, 0)
  })

  test('`petrel chat --workers 2` from the package: the worker processes open the room', async (t) => {
    const { output } = await startInstalled(t, ['chat', '--host', '127.0.0.1', '--port', '0', '--workers', '2'], /room open on \S+:\d+ with 2 workers/)
    const port = Number(/room open on \S+:(\d+) with/.exec(output)![1])
    const socket = net.connect(port, '127.0.0.1')
    t.after(() => socket.destroy())
    let heard = ''
    socket.setEncoding('utf8')
    for await (const text of socket) {
      heard += text as string
      if (/\* welcome, you are guest\d+/.test(heard)) break
    }
    assert.match(heard, /\* welcome, you are guest\d+/)
  })
})
