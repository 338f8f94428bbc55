// The h2 suite's load shapes, all driven by h2load. Four ask for /plaintext, so that the protocol
// is nearly all the work: few connections with many streams each (10 × 100: HTTP/2's case, one
// read carrying dozens of requests) and many connections with fewer streams (100 × 10: more
// reads, more writes, more connection state), each over TLS (ALPN h2) and on cleartext (prior
// knowledge). The fifth moves a 100 KiB file per request over TLS: DATA frames, flow control
// and bulk encryption.

import { FILES, type StaticFile } from '../static/files.ts'

export const H2_SCENARIO_NAMES = ['tls-c10-m100', 'tls-c100-m10', 'clear-c10-m100', 'clear-c100-m10', 'static-100k'] as const
export type H2ScenarioName = (typeof H2_SCENARIO_NAMES)[number]

/** Which launch of each peer a scenario needs: /plaintext over TLS or cleartext, or files over TLS. */
export type H2Variant = 'tls' | 'clear' | 'static'

/** The static scenario's file, one of the static suite's (random bytes, so nothing can compress them). */
export const STATIC_FILE: StaticFile = FILES.find((file) => file.name === '100k')!

export interface H2Scenario {
  readonly name: H2ScenarioName
  readonly description: string
  readonly variant: H2Variant
  readonly path: string
  /** The body of each answer, in bytes. */
  readonly bodyBytes: number
  /** https:// with ALPN, or http:// with prior knowledge. */
  readonly secure: boolean
  /** h2load -c. */
  readonly connections: number
  /** h2load -m: streams per connection (requests pipelined per connection for HTTP/1.1). */
  readonly streams: number
}

export interface H2ScenarioSettings {
  readonly staticConnections: number
  readonly staticStreams: number
}

export function buildH2Scenario(name: H2ScenarioName, settings: H2ScenarioSettings): H2Scenario {
  if (name === 'static-100k') {
    const { staticConnections: connections, staticStreams: streams } = settings
    return {
      name,
      description: `GET ${STATIC_FILE.urlPath} (100 KiB, random bytes) over TLS, h2load -c ${connections} -m ${streams}`,
      variant: 'static',
      path: STATIC_FILE.urlPath,
      bodyBytes: STATIC_FILE.bytes,
      secure: true,
      connections,
      streams,
    }
  }
  const [transport = '', c = '', m = ''] = name.split('-')
  const connections = Number(c.slice(1))
  const streams = Number(m.slice(1))
  const secure = transport === 'tls'
  return {
    name,
    description: `GET /plaintext ${secure ? 'over TLS (ALPN h2)' : 'on cleartext (prior knowledge)'}, h2load -c ${connections} -m ${streams}`,
    variant: secure ? 'tls' : 'clear',
    path: '/plaintext',
    bodyBytes: 'Hello, World!'.length,
    secure,
    connections,
    streams,
  }
}
