// bench/results/ holds exactly the benchmark runs that the README and docs/ cite, and a bench run
// writes its report under bench/runs/ (not committed), with no "latest" copy whose meaning would
// change with the next run.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { writeResultFiles } from '../bench/lib/report.ts'

const REPO = new URL('..', import.meta.url).pathname
const RESULTS = path.join(REPO, 'bench/results')

function citingTexts(): string {
  const docs = readdirSync(path.join(REPO, 'docs')).filter((name) => name.endsWith('.md')).map((name) => path.join(REPO, 'docs', name))
  return [path.join(REPO, 'README.md'), ...docs].map((file) => readFileSync(file, 'utf8')).join('\n')
}

test('every file in bench/results/ is a run the README or docs/ cite (its .md, or the .json beside a cited .md)', () => {
  const text = citingTexts()
  const uncited = readdirSync(RESULTS).filter((name) => !text.includes(`bench/results/${name.replace(/\.json$/, '.md')}`))
  assert.deepEqual(uncited, [])
})

test('every bench/results/ file the README or docs/ cite is there, with its .json', () => {
  const cited = [...new Set(citingTexts().match(/bench\/results\/[A-Za-z0-9._-]+/g) ?? [])]
  assert.ok(cited.length > 0)
  const missing = cited.flatMap((file) => [file, file.replace(/\.md$/, '.json')]).filter((file) => !existsSync(path.join(REPO, file)))
  assert.deepEqual(missing, [])
})

test('a run writes <suite>-<timestamp>.md and .json, and no -latest copy', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-bench-runs-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const written = writeResultFiles('probe', '2026-12-07T15:48:08.123Z', '# probe\n', { suite: 'probe' }, dir)
  assert.deepEqual(written.map((file) => path.basename(file)), ['probe-2026-12-07T15-48-08Z.md', 'probe-2026-12-07T15-48-08Z.json'])
  assert.deepEqual(readdirSync(dir).sort(), ['probe-2026-12-07T15-48-08Z.json', 'probe-2026-12-07T15-48-08Z.md'])
  assert.deepEqual(JSON.parse(readFileSync(path.join(dir, 'probe-2026-12-07T15-48-08Z.json'), 'utf8')), { suite: 'probe' })
})
