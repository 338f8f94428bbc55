// The test harness itself: serve() fails a test whose server reported an error the test did not
// expect, and a test whose Debian tool is missing fails naming the command that installs it.

import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { requireDebianPackage } from './helpers/debian.ts'

const FIXTURE = fileURLToPath(new URL('./fixtures/serve-errors.ts', import.meta.url))

function runFixture(env: Record<string, string>): { status: number | null; output: string } {
  // NODE_TEST_CONTEXT would make the child report to this runner instead of running its own tests.
  const { NODE_TEST_CONTEXT: _, ...inherited } = process.env
  const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', FIXTURE], { encoding: 'utf8', timeout: 60_000, env: { ...inherited, ...env } })
  return { status: r.status, output: r.stdout + r.stderr }
}

test('serve(): a server error the test did not expect fails the test, naming the error and the opt-in', () => {
  const { status, output } = runFixture({ SERVE_EXPECT_ERRORS: '0' })
  assert.equal(status, 1, output)
  assert.match(output, /the server reported 1 error\(s\) this test did not expect/)
  assert.match(output, /handler failure HARNESS-MARK/)
  assert.match(output, /pass \{ expectErrors: true \} to serve\(\)/)
})

test('serve(): a test that opts in with expectErrors passes and sees the error itself', () => {
  const { status, output } = runFixture({ SERVE_EXPECT_ERRORS: '1' })
  assert.equal(status, 0, output)
  assert.doesNotMatch(output, /did not expect/)
})

test('a missing Debian tool fails with the command that installs it', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-tools-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const list = path.join(dir, 'test-tools.txt')
  writeFileSync(list, `# a comment\npresent-pkg ${list}\nabsent-pkg ${dir}/no-such-*/tool\n`)
  requireDebianPackage('present-pkg', list)
  assert.throws(
    () => requireDebianPackage('absent-pkg', list),
    (err: Error) => {
      assert.match(err.message, /Debian's absent-pkg/)
      assert.match(err.message, /no-such-\*\/tool not found/)
      assert.match(err.message, /run scripts\/install-test-tools\.sh \(as root\), or apt-get install absent-pkg/)
      return true
    },
  )
  assert.throws(() => requireDebianPackage('unlisted-pkg', list), /unlisted-pkg is not in .*: add it there/)
})

test('every Debian package a test requires is in scripts/test-tools.txt and installed here', () => {
  // CI ran scripts/install-test-tools.sh first; a developer who did not gets the command to run.
  for (const pkg of ['curl', 'redis-server', 'postgresql', 'chromium', 'python3', 'util-linux', 'bsdutils', 'procps', 'wrk']) requireDebianPackage(pkg)
})
