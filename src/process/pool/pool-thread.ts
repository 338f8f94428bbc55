// The module every pool thread loads: it lowers the thread's scheduling priority, then runs the
// tasks of the application's module (the default export, or the one a task names).
//
// Why the priority: the pool exists so that the event loop keeps answering while CPU-heavy work
// runs. When threads outnumber free cores — always on a one- or two-core machine — the kernel
// shares a core between the loop and a pool thread in time slices of several milliseconds, and
// the loop's latency is again the pool's work. A pool thread at a higher nice value (10 by
// default) gets the CPU only when the loop does not want it: the half-async layer keeps
// priority over the half-sync one. Linux gives every thread its own nice value; setpriority()
// on the thread's id (read from /proc/thread-self) sets it.

import { readlinkSync } from 'node:fs'
import { setPriority } from 'node:os'
import { workerData } from 'piscina'

const { filename, nice } = workerData as { filename: string; nice: number }

if (nice !== 0) {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
    setPriority(tid, nice)
  } catch {
    // Not Linux, or not allowed: the thread keeps the process's priority.
  }
}

const app = (await import(filename)) as Record<string, unknown>

export default function runTask(message: { task: unknown; name: string | undefined }): unknown {
  const fn = app[message.name ?? 'default']
  if (typeof fn !== 'function')
    throw new TypeError(`${filename} has no ${message.name === undefined ? 'default export' : `export named ${message.name}`} to run`)
  return (fn as (task: unknown) => unknown)(message.task)
}
