// The static suite's scenarios: one per file size, each a keep-alive GET of the same file over
// and over. Small files measure the per-request cost of finding and opening a file; the 10 MiB
// file measures how fast bytes move from disk cache to socket, so fewer connections.

import type { Load } from '../lib/measure.ts'
import { BENCH_DIR } from '../lib/paths.ts'
import { join } from 'node:path'
import { FILES, type StaticFile } from './files.ts'

export interface StaticScenario extends Load {
  readonly name: string
  readonly description: string
  readonly file: StaticFile
  /** Whether bytes/s rather than req/s is the number that matters (the large file). */
  readonly byThroughput: boolean
}

export interface StaticSettings {
  readonly connections: number
  readonly largeConnections: number
}

export const STATIC_SCENARIO_NAMES: readonly string[] = FILES.map((file) => file.name)

const REPORT_SCRIPT = join(BENCH_DIR, 'wrk', 'report.lua')
const LARGE_FILE_BYTES = 1024 * 1024

function sizeLabel(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${bytes / 1024 / 1024} MiB` : `${bytes / 1024} KiB`
}

export function buildStaticScenario(name: string, settings: StaticSettings): StaticScenario {
  const file = FILES.find((candidate) => candidate.name === name)
  if (file === undefined) throw new Error(`unknown scenario ${name}`)
  const large = file.bytes >= LARGE_FILE_BYTES
  const connections = large ? settings.largeConnections : settings.connections
  const what = file.gzip === true ? 'HTML, with Accept-Encoding: gzip' : 'random bytes'
  return {
    name,
    description: `GET ${file.urlPath} (${sizeLabel(file.bytes)}, ${what}), keep-alive, ${connections} connections, one request in flight per connection`,
    file,
    byThroughput: large,
    path: file.urlPath,
    connections,
    headers: file.gzip === true ? ['Accept-Encoding: gzip'] : [],
    scriptPath: REPORT_SCRIPT,
    scriptArgs: [],
    reportsLatency: true,
  }
}

export function fileSizeLabel(file: StaticFile): string {
  return sizeLabel(file.bytes)
}
