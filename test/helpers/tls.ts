// Certificates made at run time with the openssl command: a test CA, and leaf certificates it
// signs for the names a test needs. Nothing that expires is committed; every file is written in
// the directory the test gives (its temp dir).

import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'

export interface IssueOptions {
  /** Key type (default ec: P-256). */
  keyType?: 'ec' | 'rsa'
  /** Validity as openssl ca dates (YYYYMMDDHHMMSSZ); default: from an hour ago for two days. */
  startDate?: string
  endDate?: string
  /** Signed by an intermediate CA; the cert file holds the leaf, then the intermediate (a chain). */
  intermediate?: boolean
  /** File name stem in the CA's directory (default: the first name, made file-safe). */
  stem?: string
}

export interface IssuedCertificate {
  /** PEM certificate (chain) file. */
  cert: string
  /** PEM private key file (unencrypted). */
  key: string
}

export interface TestCa {
  dir: string
  /** The CA certificate file (PEM): what a client trusts. */
  caCert: string
  /** A leaf certificate for `names` (DNS names, or IP addresses), signed by this CA. */
  issue(names: string[], options?: IssueOptions): IssuedCertificate
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] })
}

function newKey(file: string, keyType: 'ec' | 'rsa', cwd: string): void {
  if (keyType === 'rsa') openssl(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file], cwd)
  else openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], cwd)
}

function opensslDate(ms: number): string {
  return `${new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14)}Z`
}

/**
 * A CA, self-signed, in `dir`, that signs leaf certificates with `openssl ca` (which, unlike
 * `openssl x509` in OpenSSL 3.0, takes any start and end date: expired and not-yet-valid
 * certificates too).
 */
export function makeTestCa(dir: string, name = 'Petrel Test CA'): TestCa {
  mkdirSync(dir, { recursive: true })
  newKey('ca.key', 'ec', dir)
  openssl(
    [
      'req',
      '-x509',
      '-new',
      '-key',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '3',
      '-subj',
      `/CN=${name}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  )
  const caDb = (stem: string): string => {
    writeFileSync(path.join(dir, `${stem}.index`), '')
    writeFileSync(path.join(dir, `${stem}.serial`), `${Date.now().toString(16).padStart(16, '0')}\n`)
    const config = path.join(dir, `${stem}.cnf`)
    writeFileSync(
      config,
      [
        '[ca]',
        'default_ca = test',
        '[test]',
        `database = ${stem}.index`,
        `serial = ${stem}.serial`,
        'new_certs_dir = .',
        'default_md = sha256',
        'policy = any',
        'unique_subject = no',
        'copy_extensions = copy',
        '[any]',
        'commonName = supplied',
      ].join('\n'),
    )
    return config
  }
  let count = 0
  const sign = (csr: string, out: string, caCert: string, caKey: string, startDate: string, endDate: string, extensions: string): void => {
    const stem = `db${++count}`
    const config = caDb(stem)
    const extFile = path.join(dir, `${stem}.ext`)
    writeFileSync(extFile, extensions)
    openssl(
      [
        'ca',
        '-batch',
        '-config',
        config,
        '-cert',
        caCert,
        '-keyfile',
        caKey,
        '-in',
        csr,
        '-out',
        out,
        '-notext',
        '-startdate',
        startDate,
        '-enddate',
        endDate,
        '-extfile',
        extFile,
      ],
      dir,
    )
  }
  return {
    dir,
    caCert: path.join(dir, 'ca.pem'),
    issue(names: string[], options: IssueOptions = {}): IssuedCertificate {
      const stem = options.stem ?? names[0]!.replace(/[^a-zA-Z0-9.-]/g, '_')
      const now = Date.now()
      const startDate = options.startDate ?? opensslDate(now - 3_600_000)
      const endDate = options.endDate ?? opensslDate(now + 2 * 86_400_000)
      let issuerCert = 'ca.pem'
      let issuerKey = 'ca.key'
      if (options.intermediate === true) {
        newKey(`${stem}.int.key`, 'ec', dir)
        openssl(['req', '-new', '-key', `${stem}.int.key`, '-out', `${stem}.int.csr`, '-subj', '/CN=Petrel Test Intermediate'], dir)
        sign(
          `${stem}.int.csr`,
          `${stem}.int.pem`,
          'ca.pem',
          'ca.key',
          opensslDate(now - 3_600_000),
          opensslDate(now + 2 * 86_400_000),
          'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n',
        )
        issuerCert = `${stem}.int.pem`
        issuerKey = `${stem}.int.key`
      }
      newKey(`${stem}.key`, options.keyType ?? 'ec', dir)
      openssl(['req', '-new', '-key', `${stem}.key`, '-out', `${stem}.csr`, '-subj', `/CN=${names[0]}`], dir)
      const san = names.map((name) => (/^[\d.]+$|:/.test(name) ? `IP:${name}` : `DNS:${name}`)).join(',')
      sign(
        `${stem}.csr`,
        `${stem}.pem`,
        issuerCert,
        issuerKey,
        startDate,
        endDate,
        `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n`,
      )
      const cert = path.join(dir, `${stem}.pem`)
      if (options.intermediate === true) writeFileSync(cert, readFileSync(cert, 'utf8') + readFileSync(path.join(dir, `${stem}.int.pem`), 'utf8'))
      return { cert, key: path.join(dir, `${stem}.key`) }
    },
  }
}

/** An openssl date (YYYYMMDDHHMMSSZ) `ms` from now. */
export function opensslDateIn(ms: number): string {
  return opensslDate(Date.now() + ms)
}
