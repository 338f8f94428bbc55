// The htpasswd check, run on a pool thread: bcrypt at cost 10 is about 100 ms of one core in
// JavaScript, which on the event loop would stall every connection of the process.
//
// The hash is computed again from the password and the stored hash's salt (bcryptjs for bcrypt,
// apache-md5 for apr1), then compared with the stored one in constant time.

import { Buffer } from 'node:buffer'
import { timingSafeEqual } from 'node:crypto'
import bcrypt from 'bcryptjs'
import apacheMd5 from 'apache-md5'

// A CommonJS module whose module.exports is the function: that is what the default import gives
// at run time, though its declaration file says the function is the `default` property.
const aprMd5 = apacheMd5 as unknown as (password: string, salt: string) => string

export interface VerifyTask {
  password: string
  /** A hash parseHtpasswd accepted (or the dummy one of an unknown user). */
  hash: string
}

/** Whether `password` is the one `hash` was made from. */
export default function verifyHtpasswd(task: VerifyTask): boolean {
  const computed = task.hash.startsWith('$apr1$') ? aprMd5(task.password, task.hash) : bcrypt.hashSync(task.password, task.hash)
  const a = Buffer.from(computed, 'latin1')
  const b = Buffer.from(task.hash, 'latin1')
  return a.length === b.length && timingSafeEqual(a, b)
}
