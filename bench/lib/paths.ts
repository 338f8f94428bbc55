import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '')
export const REPO_DIR = join(BENCH_DIR, '..')
export const BENCH_MODULES_DIR = join(BENCH_DIR, 'node_modules')
/** Where every run writes its report; not committed (.gitignore). */
export const RUNS_DIR = join(BENCH_DIR, 'runs')
