import { accountsSuite } from './accounts.ts'
import { chatSuite } from './chat.ts'
import { h2Suite } from './h2.ts'
import { h2CodecSuite } from './h2-codec.ts'
import { httpSuite } from './http.ts'
import { loadgenSuite } from './loadgen.ts'
import { logicSuite } from './logic.ts'
import { proxySuite } from './proxy.ts'
import { staticSuite } from './static.ts'
import type { Suite } from './suite.ts'
import { timersSuite } from './timers.ts'
import { tlsSuite } from './tls.ts'
import { workersSuite } from './workers.ts'
import { wsSuite } from './ws.ts'

export const SUITES: readonly Suite[] = [
  httpSuite,
  staticSuite,
  timersSuite,
  workersSuite,
  loadgenSuite,
  logicSuite,
  chatSuite,
  accountsSuite,
  proxySuite,
  tlsSuite,
  h2Suite,
  h2CodecSuite,
  wsSuite,
]
