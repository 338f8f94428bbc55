// The README's library example must run as written: extract it, run it, compare its output.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync, rmSync } from 'node:fs'
import { execFileSync } from 'node:child_process'

test('README library example runs and prints what its comment says', () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const blocks = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!)
  const example = blocks.find((b) => b.includes("from 'petrel'"))
  assert.ok(example, 'README has a ts example importing petrel')
  // Written inside the package so that `import 'petrel'` resolves to this package (self-reference).
  const file = new URL('./.readme-example.ts', import.meta.url)
  writeFileSync(file, example)
  try {
    const out = execFileSync(process.execPath, [file.pathname], { encoding: 'utf8', timeout: 20_000 })
    assert.equal(out.trim(), 'Hello, petrel!')
  } finally {
    rmSync(file, { force: true })
  }
})
