import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '')
export const REPO_DIR = join(BENCH_DIR, '..')
export const BENCH_MODULES_DIR = join(BENCH_DIR, 'node_modules')
/** Where every run writes its report: bench/runs/ (in .gitignore), or $PETREL_BENCH_RUNS_DIR when set. */
export const RUNS_DIR =
  process.env.PETREL_BENCH_RUNS_DIR === undefined || process.env.PETREL_BENCH_RUNS_DIR === ''
    ? join(BENCH_DIR, 'runs')
    : resolve(process.env.PETREL_BENCH_RUNS_DIR)
