// The client side of TLS to https upstreams: one secure context with the CAs an upstream's
// certificate must chain to (the system's, plus upstreamCa / --proxy-ca), the options each
// connection is made with (SNI from the upstream's host name, never for an IP address, as RFC
// 6066 §3 says; the name checked against the certificate), and a sentence for each way a
// handshake fails, for the log line that goes with the 502.

import tls from 'node:tls'
import type { ProxySettings } from './settings.ts'

/** The shared client context, made on first use (see ProxySettings.upstreamTlsContext). */
export function upstreamTlsContext(settings: ProxySettings): tls.SecureContext {
  if (settings.upstreamTlsContext !== null) return settings.upstreamTlsContext
  // 'default' is Node's bundled Mozilla store (plus NODE_EXTRA_CA_CERTS); 'system' is the
  // operating system's store (/etc/ssl/certs), where a site's own CAs are usually installed.
  const ca = new Set<string>([...tls.getCACertificates('default'), ...tls.getCACertificates('system'), ...settings.upstreamCa])
  settings.upstreamTlsContext = tls.createSecureContext({ ca: [...ca] })
  return settings.upstreamTlsContext
}

/** The warning logged once by a proxy that does not verify its https upstreams. */
export function insecureWarning(label: string): string {
  return `${label}: certificates of https upstreams are NOT verified (--proxy-tls-insecure / upstreamTlsInsecure): anyone on the path to them can read and change the traffic; give their CA with --proxy-ca instead`
}

/** Codes OpenSSL gives a certificate that does not chain to a trusted CA. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
])

/**
 * Why a connection to an https upstream failed, in words: the certificate's names against the
 * upstream's, an untrusted issuer, the validity dates; other errors by their code.
 */
export function describeUpstreamFailure(err: NodeJS.ErrnoException & { cert?: tls.PeerCertificate }, host: string): string {
  const code = err.code ?? ''
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    const names = (err.cert?.subjectaltname ?? '')
      .split(', ')
      .map((entry) => entry.slice(entry.indexOf(':') + 1))
      .filter((name) => name !== '')
    const subject = names.length > 0 ? names.join(', ') : (err.cert?.subject?.CN ?? 'no name')
    return `certificate is for ${subject}, not ${host}`
  }
  if (UNTRUSTED.has(code)) return `certificate not trusted (self-signed / unknown CA: ${code}): give its CA with --proxy-ca`
  // OpenSSL's verification error carries no certificate, so its dates are not at hand here.
  if (code === 'CERT_HAS_EXPIRED') return 'certificate expired: renew it on the upstream'
  if (code === 'CERT_NOT_YET_VALID') return 'certificate not valid yet: check the clocks of the upstream and of this host'
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER') return `answered without TLS (${code}): is it an http:// upstream?`
  if (code.startsWith('ERR_SSL_')) return `TLS handshake failed (${code})`
  // The rest of OpenSSL's verification results (CERT_REVOKED, INVALID_CA, …) name a certificate.
  if (code.includes('CERT')) return `certificate refused (${code})`
  return code !== '' ? code : err.message
}
