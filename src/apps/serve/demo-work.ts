// The demo site's CPU-heavy task: scrypt password hashing (about 17 ms of one core each). The
// demo answers it two ways — inline on the event loop, where every other request waits behind
// it, and on the thread pool, where the loop goes on serving — so the difference can be seen
// and measured (`npm run bench -- logic`).

import { scryptSync } from 'node:crypto'

export const SCRYPT = { N: 2 ** 13, r: 8, p: 1, keyBytes: 32 } as const
const SALT = 'petrel-demo-salt'

export interface HashTask {
  password: string
}

/** The pool's entry point (the module's default export), also called inline. */
export default function hashPassword(task: HashTask): string {
  return scryptSync(task.password, SALT, SCRYPT.keyBytes, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p }).toString('hex')
}
