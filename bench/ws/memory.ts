// Resident memory of a server's processes from /proc, for the ws suite's memory per idle
// connection (bench/lib/proc-cpu.ts has the peak, VmHWM; this is the current size, VmRSS).

import { readFileSync } from 'node:fs'
import { processTree } from '../lib/proc-cpu.ts'

/** VmRSS of a process and its live descendants, summed, in KiB; 0 if gone. */
export function processTreeRssKb(rootPid: number): number {
  let kb = 0
  for (const pid of processTree(rootPid)) {
    try {
      const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (match !== null) kb += Number(match[1])
    } catch {
      // Exited meanwhile.
    }
  }
  return kb
}
