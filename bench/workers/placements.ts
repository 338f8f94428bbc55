// Where the server may run. The machine has 2 cores and wrk needs one, CPU 1. `spread` lets
// the server use every core (taskset -c 0,1 here), so 2 workers can use 2 cores, but whatever
// runs on CPU 1 competes with wrk for it. `pinned` keeps the server on CPU 0 as the http suite does:
// every worker then shares that one core, which shows that more workers than cores do not help.
//
// bench/lib starts every server as `taskset -c SERVER_CPU command…`. A spread launch is wrapped
// in a second `taskset -c 0,1`, which widens the affinity again before it execs the server, so
// the PID the harness holds (and sums CPU from, workers included) is still the server's. Forked
// workers inherit the affinity.

import { availableParallelism } from 'node:os'
import type { Launch } from '../lib/peers.ts'

export interface Placement {
  readonly name: string
  /** The server's CPU list, as taskset takes it. */
  readonly serverCpus: string
  readonly description: string
  wrap(launch: Launch): Launch
}

export const PLACEMENT_NAMES: readonly string[] = ['spread', 'pinned']

export function buildPlacement(name: string, serverCpu: number, wrkCpu: number): Placement {
  switch (name) {
    case 'spread': {
      const all = Array.from({ length: availableParallelism() }, (_, cpu) => cpu).join(',')
      return {
        name,
        serverCpus: all,
        description: `server on CPUs ${all} (all), wrk on CPU ${wrkCpu}: workers share wrk's core`,
        wrap: (launch) => ({ ...launch, command: 'taskset', args: ['-c', all, launch.command, ...launch.args] }),
      }
    }
    case 'pinned':
      return {
        name,
        serverCpus: String(serverCpu),
        description: `server on CPU ${serverCpu} only, wrk on CPU ${wrkCpu}: every worker shares one core`,
        wrap: (launch) => launch,
      }
    default:
      throw new Error(`unknown placement ${name}`)
  }
}
