// Server CPU time from /proc, so each result can say what a request cost the server, not only
// how many it answered: on one core, req/s is capped by whichever side (server or wrk) tops
// out first, while CPU per request stays meaningful.

import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

/** Kernel clock ticks per second (the unit of utime/stime); almost always 100. */
export function clockTicksPerSecond(): number {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
    if (Number.isInteger(ticks) && ticks > 0) return ticks
  } catch {
    // getconf is part of libc-bin and practically always present; fall through if not.
  }
  return 100
}

/**
 * Fields 3, 4, … of a /proc/PID/stat line, so that field n of proc(5) is `fields[n - 3]`. Field 2
 * (comm) is in parentheses and may itself contain spaces or ')', so counting starts after the last ')'.
 */
function statFields(stat: string): string[] {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')
}

/**
 * utime + stime of one process, all its threads included, in clock ticks; 0 if it is gone. With
 * `reaped`, also cutime + cstime: the children it has waited for (a CGI server's scripts).
 */
function processCpuTicks(pid: number, reaped = false): number {
  let stat: string
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return 0
  }
  // utime and stime are fields 14 and 15; cutime and cstime 16 and 17.
  const fields = statFields(stat)
  const own = Number(fields[14 - 3]) + Number(fields[15 - 3])
  return reaped ? own + Number(fields[16 - 3]) + Number(fields[17 - 3]) : own
}

function childPids(pid: number): number[] {
  const pids: number[] = []
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return pids
  }
  for (const task of tasks) {
    try {
      const text = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim()
      if (text !== '') for (const child of text.split(' ')) pids.push(Number(child))
    } catch {
      // The thread exited between readdir and read.
    }
  }
  return pids
}

/**
 * CPU ticks of a process and all its live descendants (e.g. a master and its workers).
 * Children that exited during the run are missed unless `reaped` adds, for each process, the
 * children it has waited for (for servers that fork per request: CGI).
 */
export function processTreeCpuTicks(rootPid: number, reaped = false): number {
  return processTree(rootPid).reduce((ticks, pid) => ticks + processCpuTicks(pid, reaped), 0)
}

/** A process and all its live descendants. */
export function processTree(rootPid: number): number[] {
  const pending = [rootPid]
  const seen = new Set<number>()
  while (pending.length > 0) {
    const pid = pending.pop() as number
    if (seen.has(pid)) continue
    seen.add(pid)
    pending.push(...childPids(pid))
  }
  return [...seen]
}

/** Peak resident memory (VmHWM) of a process and its live descendants, summed, in KiB; 0 if gone. */
export function processTreePeakRssKb(rootPid: number): number {
  let kb = 0
  for (const pid of processTree(rootPid)) {
    try {
      const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (match !== null) kb += Number(match[1])
    } catch {
      // Exited meanwhile.
    }
  }
  return kb
}

/**
 * cutime + cstime of this process: CPU ticks of the children it has waited for. Read before
 * starting a child and after it has been reaped, the difference is exactly what that child (and
 * anything it waited for) used — for tools that exit, whose /proc entry is gone by then.
 */
export function reapedChildrenCpuTicks(): number {
  const fields = statFields(readFileSync('/proc/self/stat', 'utf8'))
  return Number(fields[16 - 3]) + Number(fields[17 - 3])
}
