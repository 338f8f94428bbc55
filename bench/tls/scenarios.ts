// The tls suite's load shapes. Three ask for /plaintext so that TLS is nearly all the work:
// keep-alive (record encryption per request), a new connection per request under wrk (a full
// handshake each: wrk never resumes), and the same under `petrel bench`, which resumes each
// connection's last session (a resumed handshake each). The fourth moves a 100 KiB file per
// request over keep-alive connections: bulk encryption.

import { join } from 'node:path'
import type { Load } from '../lib/measure.ts'
import { BENCH_DIR } from '../lib/paths.ts'
import { FILES, type StaticFile } from '../static/files.ts'

export const TLS_SCENARIO_NAMES = ['keepalive', 'handshake', 'resumed', 'static-100k'] as const
export type TlsScenarioName = (typeof TLS_SCENARIO_NAMES)[number]

/** The static scenario's file, one of the static suite's (random bytes, so nothing can compress them). */
export const STATIC_FILE: StaticFile = FILES.find((file) => file.name === '100k')!

export interface TlsScenario extends Load {
  readonly name: TlsScenarioName
  readonly description: string
  /** Which generator drives it: wrk, or petrel bench (the one that resumes sessions). */
  readonly generator: 'wrk' | 'petrel-bench'
  /** Whether the peers serve files from the root (Petrel then runs `serve ROOT`). */
  readonly withRoot: boolean
}

export interface TlsScenarioSettings {
  readonly connections: number
  readonly closeConnections: number
  readonly staticConnections: number
}

const REPORT_SCRIPT = join(BENCH_DIR, 'wrk', 'report.lua')

export function buildTlsScenario(name: TlsScenarioName, settings: TlsScenarioSettings): TlsScenario {
  const base = { scriptPath: REPORT_SCRIPT, scriptArgs: [], reportsLatency: true, secure: true, withRoot: false, generator: 'wrk' as const }
  switch (name) {
    case 'keepalive':
      return {
        ...base,
        name,
        description: `GET /plaintext over HTTPS, keep-alive, ${settings.connections} connections (wrk)`,
        path: '/plaintext',
        connections: settings.connections,
        headers: [],
      }
    case 'handshake':
      return {
        ...base,
        name,
        description: `GET /plaintext with Connection: close, ${settings.closeConnections} connections: a full TLS handshake per request (wrk never resumes)`,
        path: '/plaintext',
        connections: settings.closeConnections,
        headers: ['Connection: close'],
      }
    case 'resumed':
      return {
        ...base,
        name,
        description: `GET /plaintext, a new connection per request, ${settings.closeConnections} connections: a resumed TLS handshake per request (petrel bench, tickets)`,
        path: '/plaintext',
        connections: settings.closeConnections,
        headers: [],
        generator: 'petrel-bench',
      }
    case 'static-100k':
      return {
        ...base,
        name,
        description: `GET ${STATIC_FILE.urlPath} (100 KiB, random bytes) over HTTPS, keep-alive, ${settings.staticConnections} connections (wrk)`,
        path: STATIC_FILE.urlPath,
        connections: settings.staticConnections,
        headers: [],
        withRoot: true,
      }
  }
}
