// The h2-codec suite is its own program, bench/h2-codec.ts (HPACK encode and decode and the
// frame reader, no sockets), as the timers suite is bench/timers.ts; this only runs it on the
// harness's Node with the arguments given after the suite name.

import { join } from 'node:path'
import { startTracked } from '../lib/children.ts'
import { BENCH_DIR, REPO_DIR } from '../lib/paths.ts'
import type { Suite } from './suite.ts'

const CODEC_PROGRAM = join(BENCH_DIR, 'h2-codec.ts')

export const h2CodecSuite: Suite = {
  name: 'h2-codec',
  summary: "Petrel's HTTP/2 codec alone: HPACK decode and encode, FrameReader (bench/h2-codec.ts, run as a child process; its flags are its own)",
  flags: [],
  passThrough: true,
  async run(args) {
    const child = startTracked(process.execPath, [CODEC_PROGRAM, ...args], { cwd: REPO_DIR }, true)
    const exit = await child.exited
    return /^\d+$/.test(exit) ? Number(exit) : 1
  },
}
