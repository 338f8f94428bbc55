// The limits and defaults of HTTP Basic authentication (basic-auth.ts), in a module of their own so
// that the command line can show them in --help and check a realm without loading the checker
// (node:crypto, the router, the limiter).

export const AUTH_DEFAULTS = {
  realm: 'petrel',
  /** Everything. */
  path: '/*',
  /** Password checks (not requests: remembered credentials are not checked again) per client address per window. */
  attemptsPerWindow: 20,
  windowMs: 60_000,
  /** Client addresses the limiter tracks at once; the oldest are forgotten first. */
  trackedAddresses: 10_000,
  /** Characters of the base64 credentials at most: 400 beyond (the decoded USER:PASSWORD is 3/4 of it). */
  maxCredentialChars: 1024,
  /** Credentials remembered as checked, at most; the least recently used are forgotten first. */
  rememberedCredentials: 1024,
} as const

/** Why a realm cannot be sent in a quoted-string as it is, or null. */
export function realmProblem(realm: string): string | null {
  for (let i = 0; i < realm.length; i++) {
    const c = realm.charCodeAt(i)
    if (c < 0x20 || c === 0x7f || c === 0x22 || c === 0x5c) return 'a realm cannot hold ", \\ or control characters'
  }
  return realm === '' ? 'a realm cannot be empty' : null
}
