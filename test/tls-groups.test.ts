// TlsOptions.ecdhCurve: the key exchange groups Petrel's TLS offers. Node 26's default gives a
// client that offers it the hybrid post-quantum X25519MLKEM768; a list without it gives X25519
// (13 % less server CPU per full handshake, docs/tls.md). What a client observes is the group
// its handshake used.

import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import type { TestContext } from 'node:test'
import { createServer } from '../src/index.ts'
import { serve } from './helpers/serve.ts'
import { makeTestCa, type IssuedCertificate, type TestCa } from './helpers/tls.ts'

let dir = ''
let ca: TestCa
let leaf: IssuedCertificate

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'petrel-tls-groups-'))
  ca = makeTestCa(path.join(dir, 'ca'))
  leaf = ca.issue(['localhost'])
})
after(() => rmSync(dir, { recursive: true, force: true }))

/** The key exchange group of one handshake with a Petrel server given `ecdhCurve`, as the client saw it. */
async function negotiatedGroup(t: TestContext, ecdhCurve: string | undefined): Promise<string | undefined> {
  const options = { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key), ...(ecdhCurve === undefined ? {} : { ecdhCurve }) }
  const { port } = await serve(t, { tls: options }, (s) => s.get('/', (_req, res) => res.end('ok')))
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(ca.caCert) }, () => {
      const group = socket.getEphemeralKeyInfo()
      socket.destroy()
      resolve(group !== null && 'name' in group ? group.name : undefined)
    })
    socket.on('error', reject)
  })
}

test("by default a client that offers X25519MLKEM768 gets it (Node 26's choice, kept)", async (t) => {
  assert.equal(await negotiatedGroup(t, undefined), 'X25519MLKEM768')
})

test('ecdhCurve X25519:P-256: the same client gets X25519', async (t) => {
  assert.equal(await negotiatedGroup(t, 'X25519:P-256'), 'X25519')
})

test('ecdhCurve P-256: P-256', async (t) => {
  assert.equal(await negotiatedGroup(t, 'P-256'), 'prime256v1')
})

test('a group OpenSSL does not know: createServer refuses it, naming the option', () => {
  assert.throws(
    () => createServer({ tls: { cert: readFileSync(leaf.cert), key: readFileSync(leaf.key), ecdhCurve: 'X25519:nonsense' } }),
    /^InvalidOptionError: tls\.ecdhCurve: OpenSSL takes no group list "X25519:nonsense" \(.*\); give names such as X25519:P-256:P-384$/,
  )
})
