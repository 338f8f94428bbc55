// A real PostgreSQL for the tests (and the accounts benchmark) that need one: Debian's `postgresql` (scripts/install-test-tools.sh installs it),
// a cluster made with initdb in a temporary directory (trust auth, superuser "petrel"), started
// on a free port with fsync off, and stopped by the `stop()` it returns. PostgreSQL refuses to
// run as root, so as root the server runs as the package's `postgres` user.

import { execFileSync, spawn } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import pg from 'pg'
import { freePort } from './tcp.ts'
import { requireDebianPackage } from './debian.ts'
import { lookupUser } from '../../src/process/privileges.ts'

function binDir(): string | null {
  if (!existsSync('/usr/lib/postgresql')) return null
  const versions = readdirSync('/usr/lib/postgresql')
    .filter((v) => existsSync(`/usr/lib/postgresql/${v}/bin/initdb`))
    .sort((a, b) => Number(b) - Number(a))
  return versions.length === 0 ? null : `/usr/lib/postgresql/${versions[0]}/bin`
}

/** Start a throwaway PostgreSQL; `cpu` pins it (and every backend it forks) to that CPU (the benchmarks do). */
export async function startPostgres(options: { cpu?: number } = {}): Promise<{ url: string; pid: number; stop: () => Promise<void> }> {
  requireDebianPackage('postgresql')
  const bin = binDir()
  if (bin === null) throw new Error('postgresql is installed but no initdb was found under /usr/lib/postgresql')
  const asRoot = process.getuid?.() === 0
  const ids = asRoot ? lookupUser('postgres') : null
  if (asRoot && ids === null) throw new Error('running as root and there is no postgres user to run the server as')
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-pg-'))
  const data = path.join(dir, 'data')
  if (ids !== null) chownSync(dir, ids.uid, ids.gid)
  const as = ids === null ? {} : { uid: ids.uid, gid: ids.gid }
  execFileSync(`${bin}/initdb`, ['-D', data, '--auth=trust', '--username=petrel', '--encoding=UTF8', '--no-sync'], { stdio: 'ignore', ...as })
  const port = await freePort()
  const args = ['-D', data, '-p', String(port), '-k', dir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off', '-c', 'max_connections=100']
  // taskset execs postgres in place: the pid is the postmaster's, and the affinity is inherited.
  const server =
    options.cpu === undefined
      ? spawn(`${bin}/postgres`, args, { stdio: 'ignore', ...as })
      : spawn('taskset', ['-c', String(options.cpu), `${bin}/postgres`, ...args], { stdio: 'ignore', ...as })
  const stop = async (): Promise<void> => {
    if (server.exitCode === null && server.signalCode === null) {
      // SIGINT: PostgreSQL's fast shutdown.
      server.kill('SIGINT')
      await once(server, 'exit')
    }
    rmSync(dir, { recursive: true, force: true })
  }
  const url = `postgres://petrel@127.0.0.1:${port}/postgres`
  const deadline = Date.now() + 20_000
  for (;;) {
    const client = new pg.Client({ connectionString: url })
    try {
      await client.connect()
      await client.query('SELECT 1')
      await client.end()
      return { url, pid: server.pid!, stop }
    } catch {
      await client.end().catch(() => {})
      if (Date.now() > deadline || server.exitCode !== null) {
        await stop()
        throw new Error(`postgres did not start on port ${port}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
