// AccountStore on PostgreSQL (npm pg): for `--workers N` and for several machines sharing one
// database, sessions included. Each pooled resource is one pg.Client — the pool is Petrel's
// (core/pool.ts), not pg's, so its bounds, timeouts and health checks are the same as SQLite's.
// A client whose connection fails is reported broken and replaced.

import pg from 'pg'
import { PetrelError } from '../../core/errors.ts'
import { ResourcePool } from '../../core/pool.ts'
import { MIGRATIONS, poolBounds, type AccountStore, type NewSession, type Session, type StoreOptions, type User } from './store.ts'

/** Any number; the same for every Petrel process, so concurrent migrations take turns. */
const MIGRATION_LOCK = 7_340_552_193

interface Pooled {
  client: pg.Client
  /** Set by the client's 'error' event: the connection is gone. */
  broken: boolean
}

/** Errors of the connection rather than of the query: the client cannot be used again. */
function connectionError(err: unknown): boolean {
  const code = (err as { code?: string }).code
  return code === undefined || code.startsWith('08') || code === '57P01' || ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(code)
}

export class PgStore implements AccountStore {
  readonly kind = 'postgres'
  private readonly pool: ResourcePool<Pooled>

  private constructor(pool: ResourcePool<Pooled>) {
    this.pool = pool
  }

  static async open(url: string, options: StoreOptions = {}): Promise<PgStore> {
    const pool = new ResourcePool<Pooled>({
      ...poolBounds(options),
      create: async () => {
        const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 })
        const pooled: Pooled = { client, broken: false }
        client.on('error', () => (pooled.broken = true))
        try {
          await client.connect()
        } catch (err) {
          throw new PetrelError('PETREL_ERR_DB_UNAVAILABLE', (err as Error).message)
        }
        return pooled
      },
      destroy: (p) => p.client.end().catch(() => {}),
      check: async (p) => !p.broken && (await p.client.query('SELECT 1 AS ok')).rows[0]?.ok === 1,
    })
    await pool.start()
    const store = new PgStore(pool)
    await store.query(async (client) => migrate(client))
    return store
  }

  /** Borrow a client for `work`; a failed connection is given back broken (and replaced). */
  private query<R>(work: (client: pg.Client) => Promise<R>): Promise<R> {
    return this.pool.use(async (p) => {
      if (p.broken) throw Object.assign(new Error('connection lost'), { code: 'ECONNRESET' })
      return work(p.client)
    }, connectionError)
  }

  createUser(username: string, passwordHash: string): Promise<number | null> {
    return this.query(async (c) => {
      const r = await c.query('INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3) ON CONFLICT (username) DO NOTHING RETURNING id', [
        username,
        passwordHash,
        Date.now(),
      ])
      return r.rows.length === 0 ? null : Number(r.rows[0].id)
    })
  }

  findUser(username: string): Promise<User | null> {
    return this.query(async (c) => {
      const r = await c.query('SELECT id, username, password_hash FROM users WHERE username = $1', [username])
      const row = r.rows[0]
      return row === undefined ? null : { id: Number(row.id), username: String(row.username), passwordHash: String(row.password_hash) }
    })
  }

  createSession(s: NewSession): Promise<void> {
    return this.query(async (c) => {
      await c.query('INSERT INTO sessions (token_hash, user_id, csrf, expires_at) VALUES ($1, $2, $3, $4)', [s.tokenHash, s.userId, s.csrf, s.expiresAt])
    })
  }

  findSession(tokenHash: string, nowMs: number): Promise<Session | null> {
    return this.query(async (c) => {
      const r = await c.query(
        'SELECT s.user_id, u.username, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2',
        [tokenHash, nowMs],
      )
      const row = r.rows[0]
      return row === undefined
        ? null
        : { userId: Number(row.user_id), username: String(row.username), csrf: String(row.csrf), expiresAt: Number(row.expires_at) }
    })
  }

  deleteSession(tokenHash: string): Promise<void> {
    return this.query(async (c) => {
      await c.query('DELETE FROM sessions WHERE token_hash = $1', [tokenHash])
    })
  }

  deleteExpiredSessions(nowMs: number): Promise<number> {
    return this.query(async (c) => (await c.query('DELETE FROM sessions WHERE expires_at <= $1', [nowMs])).rowCount ?? 0)
  }

  secret(name: string, candidate: string): Promise<string> {
    return this.query(async (c) => {
      await c.query('INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING', [name, candidate])
      return String((await c.query('SELECT value FROM secrets WHERE name = $1', [name])).rows[0].value)
    })
  }

  poolStats() {
    return this.pool.snapshot()
  }

  close(): Promise<void> {
    return this.pool.drain()
  }
}

/** The schema to its last version, under an advisory lock held for the transaction. */
async function migrate(client: pg.Client): Promise<void> {
  await client.query('BEGIN')
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK])
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)')
    const current = Number((await client.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations')).rows[0].v)
    for (let v = current + 1; v <= MIGRATIONS.length; v++) {
      await client.query(MIGRATIONS[v - 1]!.replaceAll('{serial}', 'SERIAL PRIMARY KEY'))
      await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [v, Date.now()])
    }
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {})
    throw err
  }
}
