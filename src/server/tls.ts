// TLS termination on node:tls. The server accepts plain TCP sockets (so that a connection over
// limits.maxConnections is refused before any handshake work is done) and wraps each accepted
// one in a TLSSocket built from this module's options; the connection then reads decrypted
// bytes exactly as it reads a plain socket's.
//
// Certificates: the first pair is the default, each further pair is chosen by SNI when the
// client's server name matches one of its certificate's DNS names (subjectAltName, one-label
// wildcards; the subject's CN only when there is no SAN, as browsers no longer do but curl and
// older clients might expect). Every pair is checked before it is used — a PEM certificate, a
// PEM key that is the certificate's, inside its validity period — so a bad file is refused
// with a sentence naming it, at start and on reload alike, and a reload that fails keeps the
// certificates in use.
//
// Session resumption: TLS 1.3 tickets and TLS 1.2 session tickets are encrypted with one
// 48-byte ticket key set on every context (SNI switches contexts mid-handshake; each must
// decrypt what another issued). Each rotation period has a secret, the HMAC of the period
// before's (a ratchet: whoever holds today's secret cannot compute yesterday's), and its key is
// derived from it (HMAC-SHA384, exactly 48 bytes). Processes given the same secret for the same
// period — a master's workers, old and new across a reload — hold the same key at the same
// time and step to the next together at each period's end, with no message between them; a
// client resumes on any worker. A server given no secret makes its own. Node keeps one key per
// context, so a rotation ends the resumption of tickets issued under the old key: those
// clients make one full handshake, once per period.

import { Buffer } from 'node:buffer'
import type { KeyObject, X509Certificate } from 'node:crypto'
import type tls from 'node:tls'
import type { Socket } from 'node:net'
import { PetrelError } from '../core/errors.ts'
import { InvalidOptionError } from '../core/option-error.ts'
import { WheelTimer, type Scheduler } from '../core/timers/index.ts'
import type { TimerOwner } from './server.ts'

// node:tls and node:crypto are taken when a TLS server is made, not when this module is imported:
// every HttpServer imports it, and a cleartext worker should not hold them (test/memory.test.ts).
const tlsModule = (): typeof tls => process.getBuiltinModule('node:tls')
const cryptoModule = (): typeof import('node:crypto') => process.getBuiltinModule('node:crypto')

/** A certificate (chain, PEM) and its private key (PEM), as text or bytes. */
export interface TlsCertificate {
  cert: string | Buffer
  key: string | Buffer
  /** Names the certificate and key take in error messages (their file paths); default "certificate", "key". */
  certSource?: string
  keySource?: string
}

export interface TlsOptions {
  /** The default certificate chain (PEM): for clients that send no server name, or one no certificate has. */
  cert: string | Buffer
  key: string | Buffer
  certSource?: string
  keySource?: string
  /** Further certificates, chosen by the client's server name (SNI) against their DNS names. */
  sni?: TlsCertificate[]
  /** Lowest protocol version accepted (default TLSv1.2; TLSv1.3 refuses TLS 1.2 clients). */
  minVersion?: 'TLSv1.2' | 'TLSv1.3'
  /** OpenSSL cipher list; TLS 1.3 suites (TLS_…) and TLS 1.2 ones in one string. Default: MOZILLA_INTERMEDIATE_CIPHERS. */
  ciphers?: string
  /**
   * Secret (16+ bytes) of rotation period `ticketSecretPeriod`, from which this period's ticket
   * key and every later period's are derived; give processes the same pair to share sessions.
   * Absent: a random one.
   */
  ticketSecret?: string | Buffer
  /** The period `ticketSecret` belongs to (TicketRatchet.current()); default: the period now. */
  ticketSecretPeriod?: number
  /** How long one ticket key is used before the next (default 12 h; 0: one key for the server's life). */
  ticketRotationMs?: number
  /** Lifetime of a session (ticket) a client may resume, in seconds (default 3600). */
  sessionTimeoutS?: number
  /** Protocols offered through ALPN, most preferred first (default ['http/1.1']). */
  alpnProtocols?: string[]
  /**
   * Key exchange groups, most preferred first, in OpenSSL's names ("X25519:P-256:P-384"). Default
   * Node's "auto": on Node 26 the hybrid post-quantum X25519MLKEM768 first, which clients that
   * offer it (Node, current browsers) get at 13 % more CPU per full handshake than X25519
   * (docs/tls.md). Keep X25519 first: a list that starts with P-256 costs a HelloRetryRequest.
   */
  ecdhCurve?: string
}

/**
 * Mozilla's "intermediate" configuration (ssl-config.mozilla.org, version 5.7): the TLS 1.3
 * suites, then the ECDHE TLS 1.2 suites with AEAD ciphers. The DHE suites of that list are left
 * out: they need Diffie-Hellman parameters, and every client that offers them offers ECDHE too.
 * A custom list without TLS 1.3 names keeps Node's TLS 1.3 suites (Node 26; older Node turned
 * TLS 1.3 off then).
 */
export const MOZILLA_INTERMEDIATE_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':')

export const TLS_DEFAULTS = Object.freeze({
  minVersion: 'TLSv1.2' as const,
  ticketRotationMs: 12 * 60 * 60 * 1000,
  sessionTimeoutS: 3600,
})

/** Fewest bytes of a ticket secret. */
const MIN_TICKET_SECRET_BYTES = 16

/** A fresh ticket secret, as hex (it crosses IPC to workers as text). */
export function newTicketSecret(): string {
  return cryptoModule().randomBytes(32).toString('hex')
}

/** The number of the rotation period `nowMs` falls in (0 when keys do not rotate). */
export function ticketPeriod(nowMs: number, rotationMs: number): number {
  return rotationMs === 0 ? 0 : Math.floor(nowMs / rotationMs)
}

/**
 * The secrets of the ticket keys, one per rotation period, each the HMAC-SHA256 of the one
 * before: it holds the current period's only, and steps forward, never back.
 */
export class TicketRatchet {
  readonly rotationMs: number
  private secret: Buffer
  private period: number

  constructor(secret: string | Buffer, rotationMs: number, period = ticketPeriod(Date.now(), rotationMs)) {
    if ((typeof secret !== 'string' && !Buffer.isBuffer(secret)) || Buffer.byteLength(secret) < MIN_TICKET_SECRET_BYTES)
      throw new InvalidOptionError(`tls.ticketSecret must be a string or Buffer of ${MIN_TICKET_SECRET_BYTES} bytes or more`)
    if (!Number.isSafeInteger(period) || period < 0) throw new InvalidOptionError(`tls.ticketSecretPeriod must be a whole number ≥ 0, not ${period}`)
    this.rotationMs = rotationMs
    this.secret = Buffer.from(secret)
    this.period = period
  }

  /** The secret of the period `nowMs` falls in, as hex (it crosses IPC), and that period; earlier ones are forgotten. */
  current(nowMs = Date.now()): { secret: string; period: number } {
    this.advance(nowMs)
    return { secret: this.secret.toString('hex'), period: this.period }
  }

  /**
   * The ticket key of the period `nowMs` falls in: 48 bytes as node:tls takes them (16 of key
   * name, 16 of HMAC secret, 16 of AES key).
   */
  key(nowMs = Date.now()): Buffer {
    this.advance(nowMs)
    return cryptoModule().createHmac('sha384', this.secret).update('petrel tls ticket key').digest()
  }

  private advance(nowMs: number): void {
    const target = ticketPeriod(nowMs, this.rotationMs)
    const crypto = cryptoModule()
    // A secret given for a later period (a clock that differs) is used as it is until then.
    while (this.period < target) {
      this.secret = crypto.createHmac('sha256', this.secret).update('petrel tls ticket secret, next period').digest()
      this.period++
    }
  }
}

/** A checked certificate: its context, and the names SNI matches it by. */
interface Identity {
  context: tls.SecureContext
  /** Exact names, lower case. */
  names: string[]
  /** "*.example.com" as ".example.com": matches a name with exactly one more label in front. */
  wildcardSuffixes: string[]
}

/** What the TLS side of a server needs per connection, built once and reused for every accept. */
export class TlsTerminator {
  private identities: Identity[]
  private readonly settings: ContextSettings
  private readonly tickets: TicketRatchet
  private ticketKey: Buffer
  private rotation: NodeJS.Timeout | null = null
  private readonly socketOptions: tls.TLSSocketOptions
  private readonly TLSSocket: typeof tls.TLSSocket

  constructor(options: TlsOptions) {
    if (options === null || typeof options !== 'object') throw new InvalidOptionError('tls must be an object with cert and key')
    const minVersion = options.minVersion ?? TLS_DEFAULTS.minVersion
    if (minVersion !== 'TLSv1.2' && minVersion !== 'TLSv1.3')
      throw new InvalidOptionError(`tls.minVersion must be "TLSv1.2" or "TLSv1.3", not ${JSON.stringify(minVersion)}`)
    const sessionTimeoutS = options.sessionTimeoutS ?? TLS_DEFAULTS.sessionTimeoutS
    if (!Number.isInteger(sessionTimeoutS) || sessionTimeoutS < 1)
      throw new InvalidOptionError(`tls.sessionTimeoutS must be a whole number of seconds ≥ 1, not ${sessionTimeoutS}`)
    const rotationMs = options.ticketRotationMs ?? TLS_DEFAULTS.ticketRotationMs
    if (!Number.isInteger(rotationMs) || rotationMs < 0 || rotationMs > 2 ** 31 - 1)
      throw new InvalidOptionError(`tls.ticketRotationMs must be a whole number of ms from 0 to 2^31-1, not ${rotationMs}`)
    const tickets = new TicketRatchet(options.ticketSecret ?? newTicketSecret(), rotationMs, options.ticketSecretPeriod)
    const ciphers = options.ciphers ?? MOZILLA_INTERMEDIATE_CIPHERS
    try {
      tlsModule().createSecureContext({ ciphers, minVersion })
    } catch (err) {
      throw new InvalidOptionError(`tls.ciphers: OpenSSL takes no cipher of ${JSON.stringify(ciphers)} (${(err as Error).message}); see \`openssl ciphers -v\``)
    }
    const ecdhCurve = options.ecdhCurve ?? 'auto'
    try {
      if (typeof ecdhCurve !== 'string' || ecdhCurve === '') throw new Error('not a non-empty string')
      tlsModule().createSecureContext({ ecdhCurve })
    } catch (err) {
      throw new InvalidOptionError(
        `tls.ecdhCurve: OpenSSL takes no group list ${JSON.stringify(ecdhCurve)} (${(err as Error).message}); give names such as X25519:P-256:P-384`,
      )
    }
    this.settings = { minVersion, ciphers, sessionTimeoutS, ecdhCurve }
    this.tickets = tickets
    this.ticketKey = tickets.key()
    this.identities = buildIdentities(certificatesOf(options), this.settings, this.ticketKey)
    const alpn = options.alpnProtocols ?? ['http/1.1']
    // One options object for every accepted socket; the ALPN list is converted to its wire form
    // once here rather than in each TLSSocket's constructor.
    this.TLSSocket = tlsModule().TLSSocket
    this.socketOptions = {
      isServer: true,
      secureContext: this.identities[0]!.context,
      SNICallback: this.identities.length > 1 ? this.pickContext : undefined,
      ALPNProtocols: alpnWireForm(alpn),
    }
    this.scheduleRotation()
  }

  /** Begin TLS on an accepted socket: the handshake starts with the client's first bytes. */
  wrap(socket: Socket): tls.TLSSocket {
    return new this.TLSSocket(socket, this.socketOptions)
  }

  /**
   * Use these certificates for new handshakes; connections already made keep theirs. Throws
   * (PETREL_ERR_TLS_CERTIFICATE, naming the file) and changes nothing when any pair is bad.
   */
  replaceCertificates(options: Pick<TlsOptions, 'cert' | 'key' | 'certSource' | 'keySource' | 'sni'>): void {
    const identities = buildIdentities(certificatesOf(options), this.settings, this.ticketKey)
    this.identities = identities
    this.socketOptions.secureContext = identities[0]!.context
    this.socketOptions.SNICallback = identities.length > 1 ? this.pickContext : undefined
  }

  /** At the end of the current period, every context takes the next period's key. */
  private scheduleRotation(): void {
    const rotationMs = this.tickets.rotationMs
    if (rotationMs === 0) return
    const next = (ticketPeriod(Date.now(), rotationMs) + 1) * rotationMs
    this.rotation = setTimeout(this.rotate, Math.max(1, next - Date.now()))
    this.rotation.unref()
  }

  private readonly rotate = (): void => {
    this.ticketKey = this.tickets.key()
    for (const identity of this.identities) identity.context.context.setTicketKeys(this.ticketKey)
    this.scheduleRotation()
  }

  /** Stop rotating the ticket key (the server is closing). */
  close(): void {
    if (this.rotation !== null) clearTimeout(this.rotation)
    this.rotation = null
  }

  /** SNICallback: the certificate for the client's server name; the default when none has it. */
  private readonly pickContext = (servername: string, done: (err: Error | null, ctx?: tls.SecureContext) => void): void => {
    // A name may end in the root's dot ("example.com."), which RFC 6066 does not allow but
    // clients send: it names the same host.
    const name = servername.endsWith('.') ? servername.slice(0, -1) : servername
    done(null, matchIdentity(this.identities, name.toLowerCase())?.context ?? this.identities[0]!.context)
  }
}

/** A certificate or key that cannot be used: `source` names it (its file), `problem` says why. */
export class TlsCertificateError extends PetrelError {
  readonly source: string
  readonly problem: string

  constructor(source: string, problem: string, cause?: unknown) {
    super('PETREL_ERR_TLS_CERTIFICATE', `${source}: ${problem}`, cause === undefined ? undefined : { cause })
    this.source = source
    this.problem = problem
  }
}

/** What a handshake needs from its server: the timer scheduler, and where a finished or failed one goes. */
export interface HandshakeOwner {
  readonly scheduler: Scheduler<TimerOwner>
  /** The handshake is done: HTTP starts on `socket`. */
  handshakeDone(handshake: TlsHandshake, socket: tls.TLSSocket): void
  /** The socket closed (or failed) before its handshake was done. */
  handshakeGone(handshake: TlsHandshake): void
  countProtocolError(code: 'PETREL_ERR_TLS_PROTOCOL'): void
  /** The client spoke plain HTTP to the TLS port: `raw`, the TCP socket under the TLS one, may still take a cleartext answer. */
  plainHttpOnTlsPort(raw: Socket): void
  countTimeout(code: 'PETREL_ERR_TLS_HANDSHAKE_TIMEOUT'): void
}

/**
 * One connection's TLS handshake, before any HTTP: on the server's timing wheel for
 * timeouts.handshakeMs (a client that connects and says nothing, or stalls mid-handshake, is
 * closed like a slow request head, without an answer it could not read anyway). When the
 * handshake is done, the socket goes to the HTTP engine the ALPN protocol names.
 */
export class TlsHandshake {
  readonly socket: tls.TLSSocket
  readonly timer: WheelTimer<TimerOwner>
  private readonly owner: HandshakeOwner

  /** The TCP socket under the TLS one. */
  private readonly raw: Socket

  constructor(owner: HandshakeOwner, socket: tls.TLSSocket, raw: Socket, timeoutMs: number) {
    this.owner = owner
    this.raw = raw
    this.socket = socket
    this.timer = new WheelTimer<TimerOwner>(this)
    // on(), not once(): once() wraps each listener in a closure per socket, and release() takes
    // every listener off anyway.
    socket.on('secure', this.onSecure)
    socket.on('error', this.onError)
    socket.on('end', this.onEnd)
    socket.on('close', this.onClose)
    owner.scheduler.armIn(this.timer, timeoutMs)
  }

  /** The handshake timer fired. */
  expired(): void {
    this.owner.countTimeout('PETREL_ERR_TLS_HANDSHAKE_TIMEOUT')
    this.socket.destroy()
  }

  /** Close now (the server stops). */
  destroy(): void {
    this.socket.destroy()
  }

  private readonly onSecure = (): void => {
    // As node:tls's own server does once a handshake is done: an OpenSSL error from now on (a
    // bad record) ends the socket. On a TLSSocket made outside a tls.Server, Node only tells it
    // to '_tlsError' listeners, and the connection would stay open until a timer closed it.
    this.socket.on('_tlsError', destroyWithError)
    this.release()
    this.owner.handshakeDone(this, this.socket)
  }

  // Every handshake failure is the client's (a scanner, no version, cipher or ALPN protocol in
  // common): counted, not logged, as nginx logs them at info. Plain HTTP sent to the HTTPS port
  // is answered in plain HTTP, as nginx answers it: the TLS socket is gone by now, the TCP one
  // under it still takes the few bytes of a 400 before it closes.
  private readonly onError = (err: Error): void => {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ERR_SSL_HTTP_REQUEST') this.owner.plainHttpOnTlsPort(this.raw)
    else if (code !== 'ECONNRESET' && code !== 'EPIPE') this.owner.countProtocolError('PETREL_ERR_TLS_PROTOCOL')
  }

  /** The client closed its side before the handshake was done: nothing can follow, so the socket goes now, not at the timeout. */
  private readonly onEnd = (): void => {
    this.socket.destroy()
  }

  private readonly onClose = (): void => {
    this.release()
    this.owner.handshakeGone(this)
  }

  private release(): void {
    this.owner.scheduler.cancel(this.timer)
    this.socket.off('secure', this.onSecure)
    this.socket.off('error', this.onError)
    this.socket.off('end', this.onEnd)
    this.socket.off('close', this.onClose)
  }
}

function destroyWithError(this: tls.TLSSocket, err: Error): void {
  this.destroy(err)
}

/** An error code a TLS socket reports when its client broke the protocol after the handshake (a bad record, a bad alert). */
export function isTlsClientFault(code: string | undefined): boolean {
  return code !== undefined && code.startsWith('ERR_SSL_')
}

interface ContextSettings {
  minVersion: 'TLSv1.2' | 'TLSv1.3'
  ciphers: string
  sessionTimeoutS: number
  ecdhCurve: string
}

function certificatesOf(options: Pick<TlsOptions, 'cert' | 'key' | 'certSource' | 'keySource' | 'sni'>): TlsCertificate[] {
  const first: TlsCertificate = { cert: options.cert, key: options.key }
  if (options.certSource !== undefined) first.certSource = options.certSource
  if (options.keySource !== undefined) first.keySource = options.keySource
  if (options.sni !== undefined && !Array.isArray(options.sni)) throw new InvalidOptionError('tls.sni must be an array of { cert, key }')
  return [first, ...(options.sni ?? [])]
}

function buildIdentities(pairs: TlsCertificate[], settings: ContextSettings, ticketKey: Buffer): Identity[] {
  return pairs.map((pair) => checkedIdentity(pair, settings, ticketKey))
}

/** The identity among `identities` whose certificate names `servername` (lower case): exact names first, then wildcards. */
function matchIdentity(identities: Identity[], servername: string): Identity | undefined {
  for (const identity of identities) if (identity.names.includes(servername)) return identity
  const dot = servername.indexOf('.')
  if (dot <= 0) return undefined
  const suffix = servername.slice(dot)
  for (const identity of identities) if (identity.wildcardSuffixes.includes(suffix)) return identity
  return undefined
}

function checkedIdentity(pair: TlsCertificate, settings: ContextSettings, ticketKey: Buffer): Identity {
  const certSource = pair.certSource ?? 'certificate'
  const keySource = pair.keySource ?? 'key'
  const refuse = (source: string, problem: string, cause?: unknown): never => {
    throw new TlsCertificateError(source, problem, cause)
  }
  if (!isPem(pair.cert)) refuse(certSource, 'not a PEM certificate (no "-----BEGIN CERTIFICATE-----" line)')
  if (!isPem(pair.key)) refuse(keySource, 'not a PEM private key (no "-----BEGIN … PRIVATE KEY-----" line)')
  if (isEncryptedPem(pair.key)) refuse(keySource, 'the key is encrypted; give it unencrypted (openssl pkey -in KEY -out PLAIN_KEY)')
  let x509: X509Certificate
  try {
    x509 = new (cryptoModule().X509Certificate)(pair.cert)
  } catch (err) {
    return refuse(certSource, `not a readable PEM certificate (${(err as Error).message})`, err)
  }
  let key: KeyObject
  try {
    key = cryptoModule().createPrivateKey(pair.key)
  } catch (err) {
    return refuse(keySource, `not a readable PEM private key (${(err as Error).message})`, err)
  }
  if (!x509.checkPrivateKey(key)) {
    // A CA first (the chain in the wrong order) says so; a self-signed certificate is a CA too, and fine when the key is its own.
    if (x509.ca)
      refuse(
        certSource,
        'the first certificate in the file is a CA, not the one the key was made for; put the server’s own certificate first, then its intermediates',
      )
    refuse(keySource, `this key is not the one ${certSource} was made for`)
  }
  // Keys OpenSSL loads but browsers cannot use (secp256k1, Ed25519): every handshake would fail.
  const keyType = key.asymmetricKeyType
  const curve = key.asymmetricKeyDetails?.namedCurve
  if (keyType !== 'rsa' && !(keyType === 'ec' && curve !== undefined && SERVER_CURVES.has(curve)))
    refuse(
      keySource,
      `a ${keyType === 'ec' ? `${keyType} ${curve ?? ''}`.trim() : keyType} key, which clients cannot use; give an RSA key or an EC key on P-256 or P-384`,
    )
  const now = Date.now()
  const notAfter = x509.validToDate
  if (notAfter.getTime() <= now) refuse(certSource, `expired on ${notAfter.toISOString()}`)
  if (x509.validFromDate.getTime() > now) refuse(certSource, `not valid before ${x509.validFromDate.toISOString()}`)
  let context: tls.SecureContext
  try {
    context = tlsModule().createSecureContext({
      cert: pair.cert,
      key: pair.key,
      minVersion: settings.minVersion,
      ciphers: settings.ciphers,
      ecdhCurve: settings.ecdhCurve,
      honorCipherOrder: true,
      sessionTimeout: settings.sessionTimeoutS,
      sessionIdContext: 'petrel',
      // No renegotiation (as nginx): a TLS 1.2 client could make a server do full handshakes on
      // one connection without end, outside the connection limit and the handshake timeout.
      secureOptions: cryptoModule().constants.SSL_OP_NO_RENEGOTIATION,
      ticketKeys: ticketKey,
    })
  } catch (err) {
    return refuse(certSource, `OpenSSL refused it: ${(err as Error).message}`, err)
  }
  const { names, wildcardSuffixes } = namesOf(x509)
  return { context, names, wildcardSuffixes }
}

/** The EC curves of server keys every client takes. */
const SERVER_CURVES = new Set(['prime256v1', 'secp384r1', 'secp521r1'])

function isPem(text: string | Buffer): boolean {
  return (typeof text === 'string' ? text : text.toString('latin1')).includes('-----BEGIN ')
}

/** PKCS#8 "ENCRYPTED PRIVATE KEY", or a traditional PEM key with a Proc-Type: 4,ENCRYPTED header. */
function isEncryptedPem(text: string | Buffer): boolean {
  const pem = typeof text === 'string' ? text : text.toString('latin1')
  return pem.includes('-----BEGIN ENCRYPTED PRIVATE KEY-----') || pem.includes('Proc-Type: 4,ENCRYPTED')
}

/** The DNS names a certificate is for: its subjectAltName DNS entries, else its subject's CN. */
function namesOf(x509: X509Certificate): { names: string[]; wildcardSuffixes: string[] } {
  const names: string[] = []
  const wildcardSuffixes: string[] = []
  const add = (name: string): void => {
    const lower = name.toLowerCase()
    if (lower.startsWith('*.')) wildcardSuffixes.push(lower.slice(1))
    else names.push(lower)
  }
  const san = x509.subjectAltName
  if (san !== undefined) {
    for (const entry of san.split(', ')) if (entry.startsWith('DNS:')) add(entry.slice(4))
  }
  if (names.length === 0 && wildcardSuffixes.length === 0) {
    for (const line of x509.subject.split('\n')) if (line.startsWith('CN=')) add(line.slice(3))
  }
  return { names, wildcardSuffixes }
}

/** An ALPN protocol list as it goes on the wire (RFC 7301 3.1): each name after its length byte. */
function alpnWireForm(protocols: string[]): Buffer {
  if (!Array.isArray(protocols) || protocols.length === 0) throw new InvalidOptionError('tls.alpnProtocols must be a non-empty array of protocol names')
  const parts: Buffer[] = []
  for (const name of protocols) {
    const bytes = Buffer.from(String(name), 'latin1')
    if (bytes.length === 0 || bytes.length > 255) throw new InvalidOptionError(`an ALPN protocol name must be 1 to 255 bytes: ${JSON.stringify(name)}`)
    parts.push(Buffer.from([bytes.length]), bytes)
  }
  return Buffer.concat(parts)
}
