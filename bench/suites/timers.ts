// The timers suite is its own program, bench/timers.ts (timing wheel and heap against
// setTimeout), written and owned separately; this only runs it on the harness's Node with the
// arguments given after the suite name.

import { existsSync } from 'node:fs'
import { join, relative } from 'node:path'
import { startTracked } from '../lib/children.ts'
import { BENCH_DIR, REPO_DIR } from '../lib/paths.ts'
import type { Suite } from './suite.ts'

const TIMERS_PROGRAM = join(BENCH_DIR, 'timers.ts')

export const timersSuite: Suite = {
  name: 'timers',
  summary: "Petrel's timers (bench/timers.ts, run as a child process; its flags are its own)",
  flags: [],
  passThrough: true,
  async run(args) {
    if (!existsSync(TIMERS_PROGRAM)) {
      console.error(`${relative(REPO_DIR, TIMERS_PROGRAM)} does not exist yet: the timers benchmark has not been written`)
      return 1
    }
    const child = startTracked(process.execPath, [TIMERS_PROGRAM, ...args], { cwd: REPO_DIR }, true)
    const exit = await child.exited
    return /^\d+$/.test(exit) ? Number(exit) : 1
  },
}
