// AccountStore on embedded SQLite (node:sqlite): a file, no server. Connections are
// DatabaseSync handles in core/pool.ts, each with its prepared statements; WAL mode lets the
// workers of `--workers N` read at once and write one at a time (busy_timeout waits for the
// lock). node:sqlite is synchronous: every statement here is a primary-key or unique-index
// lookup of microseconds, so the event loop is held no longer than a hash-map lookup would;
// heavier queries belong on PostgreSQL.

import { mkdirSync } from 'node:fs'
import path from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { ResourcePool } from '../../core/pool.ts'
import { MIGRATIONS, poolBounds, type AccountStore, type NewSession, type Session, type StoreOptions, type User } from './store.ts'

class Connection {
  readonly db: DatabaseSync
  private readonly statements = new Map<string, StatementSync>()

  constructor(file: string) {
    this.db = new DatabaseSync(file)
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL')
  }

  /** A prepared statement, made once per connection. */
  sql(text: string): StatementSync {
    let statement = this.statements.get(text)
    if (statement === undefined) {
      statement = this.db.prepare(text)
      this.statements.set(text, statement)
    }
    return statement
  }
}

export class SqliteStore implements AccountStore {
  readonly kind = 'sqlite'
  private readonly pool: ResourcePool<Connection>

  private constructor(pool: ResourcePool<Connection>) {
    this.pool = pool
  }

  static async open(file: string, options: StoreOptions = {}): Promise<SqliteStore> {
    mkdirSync(path.dirname(path.resolve(file)), { recursive: true })
    const pool = new ResourcePool<Connection>({
      ...poolBounds(options),
      create: async () => new Connection(file),
      destroy: (c) => c.db.close(),
      check: async (c) => c.sql('SELECT 1 AS ok').get()?.ok === 1,
    })
    await pool.start()
    await pool.use(async (c) => migrate(c.db))
    return new SqliteStore(pool)
  }

  createUser(username: string, passwordHash: string): Promise<number | null> {
    return this.pool.use(async (c) => {
      const row = c
        .sql('INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT (username) DO NOTHING RETURNING id')
        .get(username, passwordHash, Date.now())
      return row === undefined ? null : Number(row.id)
    })
  }

  findUser(username: string): Promise<User | null> {
    return this.pool.use(async (c) => {
      const row = c.sql('SELECT id, username, password_hash FROM users WHERE username = ?').get(username)
      return row === undefined ? null : { id: Number(row.id), username: String(row.username), passwordHash: String(row.password_hash) }
    })
  }

  createSession(s: NewSession): Promise<void> {
    return this.pool.use(async (c) => {
      c.sql('INSERT INTO sessions (token_hash, user_id, csrf, expires_at) VALUES (?, ?, ?, ?)').run(s.tokenHash, s.userId, s.csrf, s.expiresAt)
    })
  }

  findSession(tokenHash: string, nowMs: number): Promise<Session | null> {
    return this.pool.use(async (c) => {
      const row = c
        .sql('SELECT s.user_id, u.username, s.csrf, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ?')
        .get(tokenHash, nowMs)
      return row === undefined
        ? null
        : { userId: Number(row.user_id), username: String(row.username), csrf: String(row.csrf), expiresAt: Number(row.expires_at) }
    })
  }

  deleteSession(tokenHash: string): Promise<void> {
    return this.pool.use(async (c) => {
      c.sql('DELETE FROM sessions WHERE token_hash = ?').run(tokenHash)
    })
  }

  deleteExpiredSessions(nowMs: number): Promise<number> {
    return this.pool.use(async (c) => Number(c.sql('DELETE FROM sessions WHERE expires_at <= ?').run(nowMs).changes))
  }

  secret(name: string, candidate: string): Promise<string> {
    return this.pool.use(async (c) => {
      c.sql('INSERT INTO secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING').run(name, candidate)
      return String(c.sql('SELECT value FROM secrets WHERE name = ?').get(name)!.value)
    })
  }

  poolStats() {
    return this.pool.snapshot()
  }

  close(): Promise<void> {
    return this.pool.drain()
  }
}

/** Bring the schema to the last version; BEGIN IMMEDIATE takes the write lock, so concurrent starters wait. */
function migrate(db: DatabaseSync): void {
  db.exec('BEGIN IMMEDIATE')
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)')
    const current = Number(db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get()?.v ?? 0)
    for (let v = current + 1; v <= MIGRATIONS.length; v++) {
      db.exec(MIGRATIONS[v - 1]!.replaceAll('{serial}', 'INTEGER PRIMARY KEY AUTOINCREMENT'))
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, Date.now())
    }
    db.exec('COMMIT')
  } catch (err) {
    db.exec('ROLLBACK')
    throw err
  }
}
