// Real peers from Debian's packages. Tests do not install them: scripts/install-test-tools.sh does,
// from the list in scripts/test-tools.txt, and .ci/run runs it before the tests. A test whose tool
// is missing fails at once with the command that installs it, instead of calling apt-get in the
// middle of a run (slow, needs the network and root, and hides a missing CI step) or skipping
// (which passes a run that tested nothing).

import { fileURLToPath } from 'node:url'
import { globSync, readFileSync } from 'node:fs'

const TOOL_LIST = fileURLToPath(new URL('../../scripts/test-tools.txt', import.meta.url))
export const INSTALL_COMMAND = 'scripts/install-test-tools.sh'

/** PACKAGE → the files (globs) that show it is installed, from `listFile` (scripts/test-tools.txt). */
function toolList(listFile: string): Map<string, string[]> {
  const packages = new Map<string, string[]>()
  for (const line of readFileSync(listFile, 'utf8').split('\n')) {
    const [pkg, file] = line.trim().split(/\s+/)
    if (pkg === undefined || pkg === '' || pkg.startsWith('#') || file === undefined) continue
    packages.set(pkg, [...(packages.get(pkg) ?? []), file])
  }
  return packages
}

/**
 * Throws unless Debian package `pkg` is installed (every file scripts/test-tools.txt lists for it
 * exists); the error names the missing file and the command that installs it.
 */
export function requireDebianPackage(pkg: string, listFile = TOOL_LIST): void {
  const files = toolList(listFile).get(pkg)
  if (files === undefined) throw new Error(`${pkg} is not in ${listFile}: add it there (PACKAGE FILE) so that ${INSTALL_COMMAND} installs it`)
  const absent = files.filter((file) => globSync(file).length === 0)
  if (absent.length === 0) return
  throw new Error(`this test needs Debian's ${pkg} (${absent.join(', ')} not found): run ${INSTALL_COMMAND} (as root), or apt-get install ${pkg}`)
}
