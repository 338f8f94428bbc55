// The accounts demo's limits (accounts.ts), in a module of their own so that the command line
// can show them in --help without loading the demo (node:crypto, scrypt's worker code).

export const ACCOUNT_LIMITS = {
  maxFormBytes: 4096,
  usernameMin: 3,
  usernameMax: 32,
  passwordMin: 8,
  passwordMax: 128,
  /** Login and register attempts per client address per window. */
  attemptsPerWindow: 10,
  windowMs: 60_000,
  /** Client addresses tracked by the limiter at once; the oldest are forgotten first. */
  trackedAddresses: 10_000,
  sessionTtlMs: 24 * 3600_000,
} as const
