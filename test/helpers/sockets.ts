// What a process holds, as lsof and netstat would show it: open descriptors and the TCP states
// of the sockets accepted on a listening port. Leak tests compare these before and after.

import { readdirSync, readlinkSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { tcpStates } from '../../src/monitor/system.ts'

/** Descriptors open in process `pid` (/proc/PID/fd). */
export function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length
}

/** Sockets process `pid` holds (listening, IPC and clients): which worker took a client. */
export function socketCount(pid: number): number {
  let n = 0
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) n++
    } catch {}
  }
  return n
}

/** Sockets of `pids` on listening port `port` in TCP state `state` (e.g. CLOSE_WAIT, ESTABLISHED). */
export function socketsIn(pids: readonly number[], port: number, state: string): number {
  return tcpStates(pids)[String(port)]?.[state] ?? 0
}

/** Poll `measure` until it is at most `most` or `timeoutMs` passes; returns the last value seen. */
export async function settlesTo(measure: () => number, most: number, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs
  let value = measure()
  while (value > most && performance.now() < deadline) {
    await sleep(25)
    value = measure()
  }
  return value
}
