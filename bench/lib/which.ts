import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'

/**
 * Finds an executable on PATH. `skipDir` lets a caller ignore some PATH entries: `npm run`
 * puts node_modules/.bin first, and there `node` is the pinned Node 26, not the machine's own.
 */
export function findOnPath(name: string, skipDir: (dir: string) => boolean = () => false): string[] {
  const found: string[] = []
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '' || skipDir(dir)) continue
    const candidate = join(dir, name)
    if (isExecutable(candidate) && !found.includes(candidate)) found.push(candidate)
  }
  return found
}

export function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK)
    return true
  } catch {
    return false
  }
}
