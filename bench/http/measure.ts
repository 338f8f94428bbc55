// One http-suite measurement: bench/lib/measure.ts with the suite's readiness check (a real
// `200 Hello, World!`) and one thing only this suite records: whether a server announces that
// it closes the connection.

import { measureOnce as measureLoad, type Bench, type RunMeasurement as LoadMeasurement } from '../lib/measure.ts'
import type { Launch } from '../lib/peers.ts'
import { expectBody } from '../lib/ready.ts'
import type { Scenario } from './scenarios.ts'

export { ServerStartError, type Bench } from '../lib/measure.ts'

export interface RunMeasurement extends LoadMeasurement {
  /**
   * Whether the server's answer to a `Connection: close` request said `Connection: close`
   * (RFC 9112 §9.6: it SHOULD). wrk only learns of the close from that header; without it
   * wrk reuses the connection, reads EOF and counts a read error, once per request.
   */
  readonly announcesClose: boolean
}

export async function measureOnce(launchOn: (port: number) => Launch, scenario: Scenario, bench: Bench): Promise<RunMeasurement> {
  const { measured, readyAnswer } = await measureLoad(launchOn, scenario, bench, expectBody(scenario.path, 'Hello, World!'))
  const head = readyAnswer.slice(0, readyAnswer.indexOf('\r\n\r\n') + 2)
  return { ...measured, announcesClose: /^connection:[ \t]*close\r$/im.test(head) }
}
