// Facts about the machine that go into every result file, so a number can be read later
// alongside what produced it.

import { readFileSync } from 'node:fs'
import { cpus, release, totalmem } from 'node:os'

export interface MachineFacts {
  readonly cpuModel: string
  readonly logicalCpus: number
  readonly memoryGiB: number
  readonly kernel: string
  readonly harnessNode: string
}

export function machineFacts(): MachineFacts {
  return {
    cpuModel: cpuModel(),
    logicalCpus: cpus().length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    harnessNode: process.version,
  }
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((text) => text.startsWith('model name'))
    if (line !== undefined) return line.slice(line.indexOf(':') + 1).trim()
  } catch {
    // Not Linux, or /proc is not mounted: fall back to what libuv reports.
  }
  return cpus()[0]?.model ?? 'unknown'
}
