// The accounts demo's storage, behind one small interface with two implementations: embedded
// SQLite (node:sqlite, a file; no server) and PostgreSQL (npm pg) to share accounts and sessions
// between workers and machines. Both borrow connections from core/pool.ts and use parameterised
// SQL only. The schema is created and migrated on start, one version at a time, under a lock so
// that workers starting together do it once.

import type { PoolStats } from '../../core/pool.ts'
import { InvalidOptionError } from '../../core/option-error.ts'

export interface User {
  id: number
  username: string
  passwordHash: string
}

export interface Session {
  userId: number
  username: string
  csrf: string
  expiresAt: number
}

export interface NewSession {
  /** SHA-256 of the cookie's token: the token itself is never stored. */
  tokenHash: string
  userId: number
  csrf: string
  expiresAt: number
}

export interface AccountStore {
  readonly kind: 'sqlite' | 'postgres'
  /** The new user's id, or null when the name is taken. */
  createUser(username: string, passwordHash: string): Promise<number | null>
  findUser(username: string): Promise<User | null>
  createSession(session: NewSession): Promise<void>
  /** The live session of this token hash (expired ones are not found). */
  findSession(tokenHash: string, nowMs: number): Promise<Session | null>
  deleteSession(tokenHash: string): Promise<void>
  deleteExpiredSessions(nowMs: number): Promise<number>
  /**
   * The secret called `name`, the same for every server on this database: the first to ask stores
   * `candidate`, and everyone gets what was stored.
   */
  secret(name: string, candidate: string): Promise<string>
  poolStats(): PoolStats
  close(): Promise<void>
}

export interface StoreOptions {
  /** Connections at most (default 4). */
  poolMax?: number
  /** How long a request waits for a free connection before 503 (default 2 s). */
  acquireTimeoutMs?: number
  /** Requests waiting for a connection at once before 503 (default 1,000). */
  maxWaiters?: number
}

export const STORE_DEFAULTS = { poolMax: 4, acquireTimeoutMs: 2_000, maxWaiters: 1_000 } as const

/** The pool bounds both stores use (core/pool.ts): one connection kept, the rest on demand. */
export function poolBounds(options: StoreOptions): { min: number; max: number; acquireTimeoutMs: number; maxWaiters: number } {
  return {
    min: 1,
    max: options.poolMax ?? STORE_DEFAULTS.poolMax,
    acquireTimeoutMs: options.acquireTimeoutMs ?? STORE_DEFAULTS.acquireTimeoutMs,
    maxWaiters: options.maxWaiters ?? STORE_DEFAULTS.maxWaiters,
  }
}

/**
 * Schema versions, in order; each runs once, in a transaction. `{serial}` is the dialect's
 * auto-increment primary key.
 */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE users (
     id {serial},
     username TEXT NOT NULL UNIQUE,
     password_hash TEXT NOT NULL,
     created_at BIGINT NOT NULL
   );
   CREATE TABLE sessions (
     token_hash TEXT PRIMARY KEY,
     user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
     csrf TEXT NOT NULL,
     expires_at BIGINT NOT NULL
   );
   CREATE INDEX sessions_expires_at ON sessions (expires_at)`,
  // Server secrets (the key that signs pre-login CSRF tokens): in the database, so that every
  // worker and every machine on it signs and checks with the same one.
  `CREATE TABLE secrets (
     name TEXT PRIMARY KEY,
     value TEXT NOT NULL
   )`,
]

/** What --database takes, for the message that refuses anything else. */
const DATABASE_FORMS = 'postgres://USER@HOST/DB, postgresql://…, sqlite:PATH, or a file path without ":"'

/**
 * Which store a --database value names: postgres://… or postgresql://…, else an SQLite file
 * (sqlite:PATH, or a PATH without ":"). Any other scheme is refused: `mysql://db/app` taken for a
 * file name would create an SQLite file called "mysql:" and run on it without a word.
 */
export function parseDatabase(value: string): { kind: 'postgres'; url: string } | { kind: 'sqlite'; file: string } {
  if (value.startsWith('postgres://') || value.startsWith('postgresql://')) return { kind: 'postgres', url: value }
  if (value.startsWith('sqlite:')) {
    const file = value.slice(7)
    if (file === '') throw new InvalidOptionError('an SQLite database needs a file: sqlite:PATH')
    return { kind: 'sqlite', file }
  }
  if (value === '' || value.includes(':')) throw new InvalidOptionError(`${JSON.stringify(value)} names no database Petrel can use; give ${DATABASE_FORMS}`)
  return { kind: 'sqlite', file: value }
}

/** The database a --database value names, for a start-up line: a URL's password is left out. */
export function describeDatabase(value: string): string {
  const target = parseDatabase(value)
  if (target.kind === 'sqlite') return `sqlite:${target.file}`
  try {
    // Scheme, user, host and database only: a password may sit in the userinfo or the query.
    const url = new URL(target.url)
    return `${url.protocol}//${url.username === '' ? '' : `${url.username}@`}${url.host}${url.pathname}`
  } catch {
    // Not a URL the WHATWG parser takes: say only what it is.
    return 'postgres (the URL given)'
  }
}
