// Address lists as a net.BlockList: xinetd's only_from (inetd) and the proxies whose X-Forwarded-For is believed (accounts --trust-proxy).

import net from 'node:net'
import { InvalidOptionError } from './option-error.ts'

/**
 * A net.BlockList of the allowed clients. Throws an InvalidOptionError naming the entry that is neither an
 * address nor a CIDR block.
 */
export function allowList(entries: readonly string[]): net.BlockList {
  const list = new net.BlockList()
  for (const entry of entries) {
    const [address, bits] = entry.split('/')
    const family = net.isIPv6(address!) ? 'ipv6' : net.isIPv4(address!) ? 'ipv4' : null
    const prefix = bits === undefined ? (family === 'ipv6' ? 128 : 32) : Number(bits)
    if (family === null || !Number.isInteger(prefix) || prefix < 0 || prefix > (family === 'ipv6' ? 128 : 32) || (bits !== undefined && !/^\d+$/.test(bits))) {
      throw new InvalidOptionError(`${JSON.stringify(entry)} is not an address or CIDR block (e.g. 127.0.0.1, 10.0.0.0/8, ::1)`)
    }
    list.addSubnet(address!, prefix, family)
  }
  return list
}

/** Whether `address` is on `list` (null: everyone is). An IPv4 client of a dual-stack socket arrives as ::ffff:a.b.c.d and is checked as IPv4. */
export function permitted(list: net.BlockList | null, address: string | undefined): boolean {
  if (list === null) return true
  if (address === undefined) return false
  const plain = address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address
  return list.check(plain, net.isIPv6(plain) ? 'ipv6' : 'ipv4')
}
