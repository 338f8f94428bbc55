// The HTTPS flags of `petrel serve`, and reading the certificate files they name. Files are read
// and checked by the process that parses the flags (the master, before it forks; a single
// process at start and on every reload), so that workers which gave up root never need to read
// a key, and a bad file stops the start — or refuses the reload — with one line naming it.

import { Buffer } from 'node:buffer'
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, watch, type FSWatcher } from 'node:fs'
import path from 'node:path'
import { errorMessage, systemErrorCode, type ErrorCode } from '../core/errors.ts'
import { TLS_DEFAULTS, TlsCertificateError, TlsTerminator, type TlsCertificate, type TlsOptions } from '../server/tls.ts'
import { InvalidOptionError } from '../core/option-error.ts'
import { UsageError, formatDuration, type FlagSpec } from './args.ts'

export const TLS_FLAGS = [
  {
    name: 'tls-cert',
    type: 'list',
    valueName: 'FILE',
    description:
      'serve HTTPS with this PEM certificate (chain); repeatable, each with its --tls-key in the same order: the first is the default, the others are picked by SNI from their DNS names. ECDSA handshakes cost a third less than RSA',
  },
  { name: 'tls-key', type: 'list', valueName: 'FILE', description: 'the PEM private key (EC or RSA, unencrypted) of the --tls-cert in the same position' },
  { name: 'tls-min', type: 'string', valueName: '1.2|1.3', description: 'lowest TLS version accepted (default 1.2)' },
  { name: 'tls-ciphers', type: 'string', valueName: 'LIST', description: "OpenSSL cipher list, TLS 1.3 suites included (default: Mozilla's intermediate)" },
  {
    name: 'tls-groups',
    type: 'string',
    valueName: 'LIST',
    description:
      "key exchange groups, e.g. X25519:P-256 (default: Node's, which prefers the post-quantum X25519MLKEM768 for clients that offer it; docs/tls.md)",
  },
  {
    name: 'tls-ticket-rotate',
    type: 'duration',
    valueName: 'TIME',
    min: 0,
    description: `session ticket keys change this often, the same in every worker (default ${formatDuration(TLS_DEFAULTS.ticketRotationMs)}; 0: never)`,
  },
  {
    name: 'tls-session-timeout',
    type: 'duration',
    valueName: 'TIME',
    min: 1,
    description: `how long a client may resume a session (default ${formatDuration(TLS_DEFAULTS.sessionTimeoutS * 1000)})`,
  },
  { name: 'tls-watch', type: 'boolean', description: 'reload (as SIGHUP does) when a certificate or key file changes' },
  {
    name: 'http-port',
    type: 'integer',
    valueName: 'PORT',
    min: 0,
    max: 65535,
    description: 'also listen for cleartext HTTP on PORT and answer every request with 308 to its https:// URL (needs --tls-cert)',
  },
  {
    name: 'hsts',
    type: 'integer',
    valueName: 'SECONDS',
    min: 0,
    description: 'send Strict-Transport-Security: max-age=SECONDS on HTTPS responses (needs --tls-cert)',
  },
] as const satisfies ReadonlyArray<FlagSpec<string, 'list' | 'string' | 'duration' | 'boolean' | 'integer'>>

interface TlsFlagValues {
  certs: string[] | undefined
  keys: string[] | undefined
  min: string | undefined
  ciphers: string | undefined
  groups?: string | undefined
  rotateMs: number | undefined
  sessionTimeoutMs: number | undefined
}

/**
 * Read and check the certificate files the flags name (`flag` names the cert flag in messages:
 * --tls-cert or --admin-tls-cert). Null when no certificate is given. Throws UsageError naming
 * the flag, the file and the problem.
 */
export function tlsSettings(values: TlsFlagValues, flag = '--tls-cert', keyFlag = '--tls-key'): TlsOptions | null {
  const certs = values.certs ?? []
  const keys = values.keys ?? []
  if (certs.length === 0 && keys.length === 0) return null
  if (certs.length !== keys.length)
    throw new UsageError(
      'PETREL_ERR_CLI_BAD_VALUE',
      `${flag} and ${keyFlag} come in pairs, in the same order: got ${certs.length} ${flag} and ${keys.length} ${keyFlag}`,
    )
  const pairs: TlsCertificate[] = certs.map((cert, i) => ({
    cert: readPem(flag, cert),
    key: readPem(keyFlag, keys[i]!),
    certSource: `${flag} ${cert}`,
    keySource: `${keyFlag} ${keys[i]!}`,
  }))
  const first = pairs[0]!
  const tls: TlsOptions = {
    cert: first.cert,
    key: first.key,
    certSource: first.certSource,
    keySource: first.keySource,
    sni: pairs.slice(1),
  }
  if (values.min !== undefined) {
    if (values.min !== '1.2' && values.min !== '1.3')
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --tls-min: ${JSON.stringify(values.min)}; expected 1.2 or 1.3`)
    tls.minVersion = values.min === '1.3' ? 'TLSv1.3' : 'TLSv1.2'
  }
  if (values.ciphers !== undefined) tls.ciphers = values.ciphers
  if (values.groups !== undefined) tls.ecdhCurve = values.groups
  if (values.rotateMs !== undefined) tls.ticketRotationMs = values.rotateMs
  // OpenSSL counts whole seconds: a shorter time is one.
  if (values.sessionTimeoutMs !== undefined) tls.sessionTimeoutS = Math.max(1, Math.ceil(values.sessionTimeoutMs / 1000))
  // Build the contexts once here, and throw them away: every pair is checked (a key that is not
  // its certificate's, an expired one, a cipher list OpenSSL refuses) before anything starts.
  try {
    new TlsTerminator(tls).close()
  } catch (err) {
    if (err instanceof TlsCertificateError) throw new UsageError('PETREL_ERR_TLS_CERTIFICATE', `${err.source}: ${err.problem}`)
    if (err instanceof InvalidOptionError && err.message.startsWith('tls.ciphers'))
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --tls-ciphers: ${err.message.slice('tls.ciphers: '.length)}`)
    if (err instanceof InvalidOptionError && err.message.startsWith('tls.ecdhCurve'))
      throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for --tls-groups: ${err.message.slice('tls.ecdhCurve: '.length)}`)
    throw err
  }
  return tls
}

/** A PEM file's text; UsageError naming `flag`, the file and why when it cannot be read. */
export function readPem(flag: string, file: string): string {
  return readFlagFile(flag, file, 'latin1', 'PETREL_ERR_TLS_CERTIFICATE')
}

/**
 * Largest file a flag or a site names (certificates, keys, htpasswd files, tokens): a certificate
 * chain is a few KiB, and 16 MiB of htpasswd holds some 270,000 bcrypt users.
 */
export const MAX_FLAG_FILE_BYTES = 16 * 1024 * 1024

/**
 * The text of the file a flag names; a UsageError (exit 2) with `errorCode` naming the flag, the
 * file and why it cannot be read. It is read on the event loop of a running server when a reload
 * reads it again, so only a regular file is read, and at most MAX_FLAG_FILE_BYTES: opened with
 * O_NONBLOCK (a FIFO does not wait for a writer), the descriptor checked with fstat (what was
 * opened, not what the path names a moment later), and reading stops past the limit whatever the
 * file claims its size is — as core/config-file.ts reads the config file.
 */
export function readFlagFile(flag: string, file: string, encoding: BufferEncoding, errorCode: ErrorCode): string {
  const refuse = (why: string): never => {
    throw new UsageError(errorCode, `${flag} ${file}: cannot read it: ${why}`)
  }
  let fd: number
  try {
    fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK | fsConstants.O_NOCTTY)
  } catch (err) {
    const code = systemErrorCode(err)
    return refuse(
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied (the server reads it before dropping privileges: run as a user who can read it)'
          : code === 'ENXIO'
            ? 'a socket, not a file'
            : errorMessage(err),
    )
  }
  try {
    const stats = fstatSync(fd)
    if (stats.isDirectory()) refuse('a directory, not a file')
    if (!stats.isFile()) refuse('not a regular file (a FIFO, a device or a socket); give the path of the file itself')
    const chunks: Buffer[] = []
    let total = 0
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, MAX_FLAG_FILE_BYTES + 1 - total))
      const read = readSync(fd, chunk, 0, chunk.length, null)
      if (read === 0) break
      chunks.push(chunk.subarray(0, read))
      total += read
      if (total > MAX_FLAG_FILE_BYTES) refuse(`over ${MAX_FLAG_FILE_BYTES} bytes, more than any such file needs`)
    }
    return Buffer.concat(chunks, total).toString(encoding)
  } catch (err) {
    if (err instanceof UsageError) throw err
    return refuse(errorMessage(err))
  } finally {
    closeSync(fd)
  }
}

/** Changes to the watched files within this long of each other make one reload (certbot writes four files). */
const TLS_WATCH_DEBOUNCE_MS = 1000

/**
 * --tls-watch: when a certificate or key file changes, the server reloads as SIGHUP makes it
 * (new handshakes use the new files; a bad file is refused and the old ones stay). Each file's
 * directory is watched rather than the file, so that a file replaced by a rename (an editor, a
 * symlink swapped by certbot) is seen as well as one written in place.
 */
export function watchTlsFiles(files: readonly string[], reload: () => void): () => void {
  const byDirectory = new Map<string, Set<string>>()
  for (const file of files) {
    const resolved = path.resolve(file)
    const names = byDirectory.get(path.dirname(resolved)) ?? new Set<string>()
    names.add(path.basename(resolved))
    byDirectory.set(path.dirname(resolved), names)
  }
  let pending: NodeJS.Timeout | null = null
  const changed = (): void => {
    if (pending !== null) clearTimeout(pending)
    pending = setTimeout(() => {
      pending = null
      reload()
    }, TLS_WATCH_DEBOUNCE_MS)
    pending.unref()
  }
  const watchers: FSWatcher[] = []
  for (const [directory, names] of byDirectory) {
    const watcher = watch(directory, { persistent: false }, (_event, name) => {
      // A null name (some file systems) could be any file: reload to be safe.
      if (name === null || names.has(name.toString())) changed()
    })
    watcher.on('error', () => {})
    watchers.push(watcher)
  }
  return () => {
    if (pending !== null) clearTimeout(pending)
    for (const watcher of watchers) watcher.close()
  }
}
