// `petrel serve` over HTTPS end to end, driving the real CLI with real clients: curl trusting a
// test CA made here with openssl, `openssl s_client` for SNI, chains and session resumption, a
// raw node:tls client for certificate reloads, wrk for load. Bad certificate files stop the
// start with exit 2 and one line naming the flag, the file and the problem.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { setTimeout as sleep } from 'node:timers/promises'
import { makeTestCa, opensslDateIn, type IssuedCertificate, type TestCa } from './helpers/tls.ts'
import { childPids, petrel, startPetrel, waitFor, type Running } from './helpers/petrel.ts'
import { freePort } from './helpers/tcp.ts'
import { requireDebianPackage } from './helpers/debian.ts'

let work: string
let ca: TestCa
/** EC P-256, for localhost and 127.0.0.1: the default certificate of most tests. */
let ec: IssuedCertificate
let rsa: IssuedCertificate
/** Signed by an intermediate CA: the file holds the leaf, then the intermediate. */
let chained: IssuedCertificate
/** A second name for SNI. */
let other: IssuedCertificate

before(() => {
  work = mkdtempSync(path.join(tmpdir(), 'petrel-https-'))
  ca = makeTestCa(path.join(work, 'ca'))
  ec = ca.issue(['localhost', '127.0.0.1'])
  rsa = ca.issue(['localhost', '127.0.0.1'], { keyType: 'rsa', stem: 'rsa' })
  chained = ca.issue(['localhost', '127.0.0.1'], { intermediate: true, stem: 'chained' })
  other = ca.issue(['other.test'])
})
after(() => rmSync(work, { recursive: true, force: true }))

function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'petrel-https-t-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** The flags that serve `pair` over HTTPS. */
const tlsFlags = (...pairs: IssuedCertificate[]): string[] => pairs.flatMap((p) => ['--tls-cert', p.cert, '--tls-key', p.key])

/** `curl ARGS` trusting the test CA; its exit status and output (headers with -i). */
function curl(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('curl', ['-sS', '--cacert', ca.caCert, '--max-time', '10', ...args], { encoding: 'utf8' })
}

/** `openssl s_client -connect 127.0.0.1:PORT ARGS`, sending nothing; its output. */
function sClient(port: number, ...args: string[]): string {
  const r = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', ca.caCert, ...args], {
    encoding: 'utf8',
    input: '',
    timeout: 10_000,
  })
  return r.stdout + r.stderr
}

/** SHA-256 fingerprint of a certificate file's first certificate, as node:tls reports a peer's. */
const fingerprintOf = (file: string): string => new X509Certificate(spawnSync('cat', [file], { encoding: 'utf8' }).stdout).fingerprint256

/** A fresh TLS connection (no session to resume: a full handshake); the server certificate's fingerprint. */
async function servedFingerprint(port: number, servername = 'localhost'): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, ca: spawnSync('cat', [ca.caCert], { encoding: 'utf8' }).stdout })
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve)
      socket.once('error', reject)
    })
    return socket.getPeerCertificate().fingerprint256
  } finally {
    socket.destroy()
  }
}

test('bad certificate flags and files: exit 2, one stderr line naming the flag, the file and the problem', () => {
  const dir = path.join(work, 'bad')
  mkdirSync(dir, { recursive: true })
  const notPem = path.join(dir, 'not-pem.pem')
  writeFileSync(notPem, 'this is not a certificate\n')
  const missing = path.join(dir, 'missing.pem')
  const expired = ca.issue(['localhost'], { stem: 'expired', startDate: opensslDateIn(-3 * 86_400_000), endDate: opensslDateIn(-86_400_000) })
  const notYet = ca.issue(['localhost'], { stem: 'not-yet', startDate: opensslDateIn(86_400_000), endDate: opensslDateIn(2 * 86_400_000) })
  const encrypted = path.join(dir, 'encrypted.key')
  spawnSync('openssl', ['pkey', '-in', ec.key, '-aes256', '-passout', 'pass:secret', '-out', encrypted])
  // The traditional form ("Proc-Type: 4,ENCRYPTED" headers), as `openssl rsa -aes256` writes it.
  const encryptedRsa = path.join(dir, 'encrypted-rsa.key')
  spawnSync('openssl', ['pkey', '-in', rsa.key, '-traditional', '-aes256', '-passout', 'pass:secret', '-out', encryptedRsa])
  const cases: Array<[string, string[], RegExp]> = [
    ['missing file', ['--tls-cert', missing, '--tls-key', ec.key], new RegExp(`--tls-cert ${missing}: cannot read it: no such file`)],
    // Root reads any file whatever its mode; a directory cannot be read as a file by anyone.
    ['a directory', ['--tls-cert', ec.cert, '--tls-key', dir], new RegExp(`--tls-key ${dir}: cannot read it: a directory`)],
    ['not PEM', ['--tls-cert', notPem, '--tls-key', ec.key], new RegExp(`--tls-cert ${notPem}: not a PEM certificate`)],
    [
      'key of another certificate',
      ['--tls-cert', ec.cert, '--tls-key', other.key],
      new RegExp(`--tls-key ${other.key}: this key is not the one --tls-cert ${ec.cert}`),
    ],
    ['expired', tlsFlags(expired), new RegExp(`--tls-cert ${expired.cert}: expired on `)],
    ['not yet valid', tlsFlags(notYet), new RegExp(`--tls-cert ${notYet.cert}: not valid before `)],
    ['encrypted key', ['--tls-cert', ec.cert, '--tls-key', encrypted], new RegExp(`--tls-key ${encrypted}: the key is encrypted`)],
    ['encrypted RSA key', ['--tls-cert', rsa.cert, '--tls-key', encryptedRsa], new RegExp(`--tls-key ${encryptedRsa}: the key is encrypted`)],
    ['cert without key', ['--tls-cert', ec.cert], /--tls-cert and --tls-key come in pairs.*got 1 --tls-cert and 0 --tls-key/],
    ['two certs, one key', ['--tls-cert', ec.cert, '--tls-cert', other.cert, '--tls-key', ec.key], /got 2 --tls-cert and 1 --tls-key/],
    ['--hsts without --tls-cert', ['--hsts', '100'], /--hsts applies to HTTPS: give --tls-cert FILE --tls-key FILE too/],
    ['--http-port without --tls-cert', ['--http-port', '0'], /--http-port applies to HTTPS: give --tls-cert FILE --tls-key FILE too/],
    ['bad --tls-min', [...tlsFlags(ec), '--tls-min', '1.1'], /bad value for --tls-min: "1.1"; expected 1.2 or 1.3/],
    ['bad --tls-ciphers', [...tlsFlags(ec), '--tls-ciphers', 'NO-SUCH-CIPHER'], /bad value for --tls-ciphers: OpenSSL takes no cipher of "NO-SUCH-CIPHER"/],
    [
      'bad --admin-tls-key',
      ['--admin', '127.0.0.1:0', '--admin-tls-cert', ec.cert, '--admin-tls-key', rsa.key],
      /--admin-tls-key .*: this key is not the one --admin-tls-cert/,
    ],
  ]
  for (const [name, args, expected] of cases) {
    const r = petrel('serve', '--port', '0', ...args)
    assert.equal(r.status, 2, `${name}: exit code (stderr: ${r.stderr})`)
    const lines = r.stderr.split('\n').filter((line) => line !== '')
    assert.equal(lines.length, 1, `${name}: one line: ${r.stderr}`)
    assert.match(lines[0]!, expected, name)
    assert.equal(r.stdout, '', `${name}: nothing started`)
  }
})
