// `petrel inetd --config FILE`: xinetd's configuration language, the part of it that a
// super-server of small services and external programs needs.
//
//   defaults
//   {
//       instances = 32
//       only_from = 127.0.0.0/8 ::1
//   }
//
//   service upper
//   {
//       port        = 10100
//       server      = /usr/bin/tr a-z A-Z
//       instances   = 4
//   }
//
// A service named after a built-in (echo, discard, chargen, daytime, time) with no `server` is
// the built-in; any other needs `server`, an absolute path to an executable file that runs once
// per TCP connection with the socket as its stdin and stdout. Every mistake is reported with the
// file, the line and the key, so a reload that fails can say exactly why the old configuration
// is still running.

import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import { isIP } from 'node:net'
import { DEFAULT_MAX_CONFIG_BYTES, readConfigFile } from '../../core/config-file.ts'
import { UsageError } from '../../core/errors.ts'
import { lookupUser, type UserIds } from '../../process/privileges.ts'
import { allowList } from '../../core/allow-list.ts'
import { SERVICE_NAMES, STANDARD_PORTS, type ServiceName } from './services.ts'

export type Protocol = 'tcp' | 'udp'

/** An external program run per connection. */
export interface ServerProgram {
  /** Absolute path of the executable. */
  path: string
  args: string[]
  /** Extra environment (xinetd's `env`), added to PATH and the REMOTE_* variables. */
  env: Record<string, string>
  /** Run as this user (when Petrel runs as root). */
  user: (UserIds & { name: string }) | null
}

export interface ServiceConfig {
  name: string
  /** Where the service was declared, for log lines ("inetd.conf:12"). */
  origin: string
  protocols: Protocol[]
  bind: string
  port: number
  builtin: ServiceName | null
  program: ServerProgram | null
  /** TCP connections at once; more are closed as they arrive. */
  instances: number
  /** Allowed clients as CIDR blocks or addresses; null: anyone. */
  onlyFrom: string[] | null
  /** Built-in TCP services: close a connection idle this long. */
  idleTimeoutMs: number
  /** UDP: answers per second to one client address; datagrams beyond it are dropped. */
  udpRate: number
}

/** What a configuration file does not say: the command-line flags. */
export interface ConfigDefaults {
  bind: string
  portOffset: number
  instances: number
  onlyFrom: string[] | null
  idleTimeoutMs: number
  udpRate: number
}

/** Keys a `service` section takes (xinetd's names; idle_timeout and udp_rate are Petrel's). */
const SERVICE_KEYS = new Set([
  'bind',
  'interface',
  'port',
  'protocol',
  'socket_type',
  'wait',
  'server',
  'server_args',
  'instances',
  'only_from',
  'user',
  'env',
  'disable',
  'type',
  'idle_timeout',
  'udp_rate',
])
/** Keys `defaults` takes. */
const DEFAULTS_KEYS = new Set(['bind', 'interface', 'instances', 'only_from', 'idle_timeout', 'udp_rate'])

interface Assignment {
  key: string
  value: string
  line: number
}

interface Section {
  kind: 'defaults' | 'service'
  name: string
  line: number
  assignments: Assignment[]
}

/**
 * Reads and checks FILE without blocking the event loop (it runs on reload, beside the services):
 * only a regular file of at most `maxBytes`. Throws a UsageError naming the file, and for a
 * mistake in it the line and the key.
 */
export async function loadInetdConfig(file: string, defaults: ConfigDefaults, maxBytes: number = DEFAULT_MAX_CONFIG_BYTES): Promise<ServiceConfig[]> {
  const text = await readConfigFile(file, { maxBytes, maxBytesKnob: '--max-config-bytes', code: 'PETREL_ERR_INETD_CONFIG' })
  return parseInetdConfig(text, file, defaults)
}

export function parseInetdConfig(text: string, file: string, flagDefaults: ConfigDefaults): ServiceConfig[] {
  const fail = (line: number, message: string): never => {
    throw new UsageError('PETREL_ERR_INETD_CONFIG', `${file}:${line}: ${message}`)
  }
  const sections = splitSections(text, fail)
  const base: ConfigDefaults = { ...flagDefaults }
  const services: ServiceConfig[] = []
  const taken = new Map<string, string>()
  for (const section of sections) {
    if (section.kind === 'defaults') {
      const values = settings(section, DEFAULTS_KEYS, fail)
      Object.assign(base, common(values, base, fail))
      continue
    }
    const values = settings(section, SERVICE_KEYS, fail)
    const at = (key: string): number => values.get(key)?.line ?? section.line
    const disable = values.get('disable')
    if (disable !== undefined && !['yes', 'no'].includes(disable.value)) fail(disable.line, `disable = ${disable.value}: expected yes or no`)
    if (disable?.value === 'yes') continue
    const shared = common(values, base, fail)
    const serverLine = values.get('server')
    const type = values.get('type')
    if (type !== undefined && !type.value.split(/\s+/).every((t) => t === 'INTERNAL' || t === 'UNLISTED'))
      fail(type.line, `type = ${type.value}: Petrel knows INTERNAL and UNLISTED`)
    const builtin = serverLine === undefined && (SERVICE_NAMES as readonly string[]).includes(section.name) ? (section.name as ServiceName) : null
    if (serverLine === undefined && builtin === null) {
      fail(section.line, `service ${section.name} has no "server" and is not a built-in (${SERVICE_NAMES.join(', ')}); add server = /path/to/program`)
    }
    if (serverLine !== undefined && type?.value.includes('INTERNAL'))
      fail(type.line, `service ${section.name}: type = INTERNAL and a server together; drop one`)

    let protocols: Protocol[] = builtin !== null ? ['tcp', 'udp'] : ['tcp']
    const protocol = values.get('protocol')
    if (protocol !== undefined) {
      const list = protocol.value.split(/[\s,]+/)
      if (!list.every((p) => p === 'tcp' || p === 'udp') || new Set(list).size !== list.length)
        fail(protocol.line, `protocol = ${protocol.value}: expected tcp, udp or "tcp udp"`)
      protocols = list as Protocol[]
    }
    const socketType = values.get('socket_type')
    if (socketType !== undefined) {
      const implied = socketType.value === 'stream' ? 'tcp' : socketType.value === 'dgram' ? 'udp' : null
      if (implied === null) fail(socketType.line, `socket_type = ${socketType.value}: expected stream or dgram`)
      if (protocol === undefined) protocols = [implied!]
      else if (protocols.length !== 1 || protocols[0] !== implied)
        fail(socketType.line, `socket_type = ${socketType.value} disagrees with protocol = ${protocol.value}`)
    }
    if (serverLine !== undefined && protocols.includes('udp'))
      fail(at('protocol'), `service ${section.name}: external programs serve TCP only (wait = no); UDP is for the built-ins`)
    if (values.has('udp_rate') && !protocols.includes('udp'))
      fail(at('udp_rate'), `udp_rate limits UDP answers; service ${section.name} has no UDP (protocol = ${protocols.join(' ')})`)
    const wait = values.get('wait')
    if (wait !== undefined && wait.value !== 'no') fail(wait.line, `wait = ${wait.value}: Petrel runs one program per connection (wait = no) only`)

    const portLine = values.get('port')
    let port: number
    if (portLine !== undefined) {
      port = Number(portLine.value)
      if (!/^\d+$/.test(portLine.value) || port < 1 || port > 65535) fail(portLine.line, `port = ${portLine.value}: expected 1 to 65535`)
    } else if (builtin !== null) {
      port = STANDARD_PORTS[builtin] + base.portOffset
    } else {
      port = fail(section.line, `service ${section.name} needs a port (e.g. port = 10100)`)
    }

    let program: ServerProgram | null = null
    if (serverLine !== undefined) {
      const words = splitWords(serverLine.value, serverLine.line, fail)
      const exe = words[0]!
      if (!path.isAbsolute(exe)) fail(serverLine.line, `server = ${serverLine.value}: give the program's absolute path (no shell runs it)`)
      try {
        if (!statSync(exe).isFile()) fail(serverLine.line, `server = ${exe}: not a regular file`)
        accessSync(exe, constants.X_OK)
      } catch (err) {
        if (err instanceof UsageError) throw err
        fail(serverLine.line, `server = ${exe}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : 'not executable'}`)
      }
      const extra = values.get('server_args')
      const env: Record<string, string> = {}
      const envLine = values.get('env')
      for (const pair of envLine === undefined ? [] : envLine.value.split(/\s+/)) {
        const eq = pair.indexOf('=')
        if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(pair.slice(0, eq))) fail(envLine!.line, `env: ${JSON.stringify(pair)} is not NAME=VALUE`)
        env[pair.slice(0, eq)] = pair.slice(eq + 1)
      }
      let user: ServerProgram['user'] = null
      const userLine = values.get('user')
      if (userLine !== undefined) {
        const ids = lookupUser(userLine.value)
        if (ids === null) fail(userLine.line, `user = ${userLine.value}: no such user in /etc/passwd`)
        user = { name: userLine.value, ...ids! }
      }
      program = { path: exe, args: [...words.slice(1), ...(extra === undefined ? [] : splitWords(extra.value, extra.line, fail))], env, user }
    } else {
      for (const key of ['server_args', 'env', 'user']) if (values.has(key)) fail(values.get(key)!.line, `${key} needs a server; ${section.name} is a built-in`)
    }

    const service: ServiceConfig = {
      name: section.name,
      origin: `${path.basename(file)}:${section.line}`,
      protocols,
      bind: shared.bind,
      port,
      builtin,
      program,
      instances: shared.instances,
      onlyFrom: shared.onlyFrom,
      idleTimeoutMs: shared.idleTimeoutMs,
      udpRate: shared.udpRate,
    }
    for (const p of protocols) {
      const key = listenerKey(p, service.bind, port)
      const other = taken.get(key)
      if (other !== undefined) fail(at('port'), `service ${section.name}: ${p} ${service.bind}:${port} is already taken by ${other}`)
      taken.set(key, `${section.name} (line ${section.line})`)
    }
    services.push(service)
  }
  if (services.length === 0) fail(1, 'no enabled service; declare at least one `service NAME { … }`')
  return services
}

/** The identity of a listening socket: what a reload keeps when it reappears. */
export function listenerKey(protocol: Protocol, bind: string, port: number): string {
  return `${protocol} ${bind} ${port}`
}

/**
 * Words of a command line: split at blanks, with "double quotes" keeping blanks inside a word
 * (with \" and \\ for a quote and a backslash inside them). No shell: no variables, globs or redirections.
 */
export function splitWords(text: string, line: number, fail: (line: number, message: string) => never): string[] {
  const words: string[] = []
  let word: string | null = null
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (c === ' ' || c === '\t') {
      if (word !== null) words.push(word)
      word = null
    } else if (c === '"') {
      word ??= ''
      for (i++; i < text.length && text[i] !== '"'; i++) {
        if (text[i] === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) i++
        word += text[i]
      }
      if (i >= text.length) fail(line, `unterminated quote in ${JSON.stringify(text)}`)
    } else word = (word ?? '') + c
  }
  if (word !== null) words.push(word)
  return words
}

/** The keys `defaults` and `service` share, over the defaults so far. */
function common(values: Map<string, Assignment>, base: ConfigDefaults, fail: (line: number, message: string) => never): ConfigDefaults {
  const out = { ...base }
  const bind = values.get('bind') ?? values.get('interface')
  if (bind !== undefined) {
    if (isIP(bind.value) === 0) fail(bind.line, `${bind.key} = ${bind.value}: expected an IP address such as 127.0.0.1 or ::1`)
    out.bind = bind.value
  }
  const instances = values.get('instances')
  if (instances !== undefined) {
    if (instances.value === 'UNLIMITED') out.instances = Number.MAX_SAFE_INTEGER
    else if (/^\d+$/.test(instances.value) && Number(instances.value) >= 1) out.instances = Number(instances.value)
    else fail(instances.line, `instances = ${instances.value}: expected a number ≥ 1 or UNLIMITED`)
  }
  const onlyFrom = values.get('only_from')
  if (onlyFrom !== undefined) {
    const entries = onlyFrom.value.split(/[\s,]+/)
    try {
      allowList(entries)
    } catch (err) {
      fail(onlyFrom.line, `only_from: ${(err as Error).message}`)
    }
    out.onlyFrom = entries
  }
  const idle = values.get('idle_timeout')
  if (idle !== undefined) {
    if (!/^\d+$/.test(idle.value) || Number(idle.value) < 1) fail(idle.line, `idle_timeout = ${idle.value}: expected whole seconds ≥ 1`)
    out.idleTimeoutMs = Number(idle.value) * 1000
  }
  const udpRate = values.get('udp_rate')
  if (udpRate !== undefined) {
    if (!/^\d+$/.test(udpRate.value) || Number(udpRate.value) < 1)
      fail(udpRate.line, `udp_rate = ${udpRate.value}: expected answers per second to one client address, a whole number ≥ 1`)
    out.udpRate = Number(udpRate.value)
  }
  return out
}

/** A section's assignments by key; unknown and repeated keys are errors. */
function settings(section: Section, allowed: Set<string>, fail: (line: number, message: string) => never): Map<string, Assignment> {
  const values = new Map<string, Assignment>()
  for (const a of section.assignments) {
    if (!allowed.has(a.key))
      fail(a.line, `unknown key "${a.key}" in ${section.kind === 'defaults' ? 'defaults' : `service ${section.name}`}; known keys: ${[...allowed].join(', ')}`)
    if (values.has(a.key))
      fail(
        a.line,
        `"${a.key}" is set twice in ${section.kind === 'defaults' ? 'defaults' : `service ${section.name}`} (first on line ${values.get(a.key)!.line})`,
      )
    values.set(a.key, a)
  }
  return values
}

/** Lines → sections: `defaults` or `service NAME`, then `{`, `key = value` lines, `}`. */
function splitSections(text: string, fail: (line: number, message: string) => never): Section[] {
  const sections: Section[] = []
  let current: Section | null = null
  let open = false
  const lines = text.split(/\r?\n/)
  for (let i = 0; i < lines.length; i++) {
    const n = i + 1
    const hash = lines[i]!.indexOf('#')
    let line = (hash >= 0 ? lines[i]!.slice(0, hash) : lines[i]!).trim()
    if (line === '') continue
    if (current !== null && !open) {
      if (line !== '{') fail(n, `expected "{" to open ${current.kind === 'defaults' ? 'defaults' : `service ${current.name}`}`)
      open = true
      continue
    }
    if (open) {
      if (line === '}') {
        sections.push(current!)
        current = null
        open = false
        continue
      }
      const eq = line.indexOf('=')
      if (eq <= 0) fail(n, `expected "key = value" or "}", got ${JSON.stringify(line)}`)
      const key = line.slice(0, eq).trim()
      if (key.endsWith('+') || key.endsWith('-')) fail(n, `"${key}=": Petrel takes plain "=" only; write the whole value`)
      const value = line.slice(eq + 1).trim()
      if (value === '') fail(n, `"${key}" has no value`)
      current!.assignments.push({ key, value, line: n })
      continue
    }
    const opensHere = line.endsWith('{')
    if (opensHere) line = line.slice(0, -1).trim()
    const words = line.split(/\s+/)
    if (words[0] === 'defaults' && words.length === 1) current = { kind: 'defaults', name: 'defaults', line: n, assignments: [] }
    else if (words[0] === 'service' && words.length === 2 && /^[A-Za-z0-9_.-]+$/.test(words[1]!))
      current = { kind: 'service', name: words[1]!, line: n, assignments: [] }
    else fail(n, `expected "service NAME" or "defaults", got ${JSON.stringify(line)}`)
    open = opensHere
  }
  if (current !== null) fail(current.line, `${current.kind === 'defaults' ? 'defaults' : `service ${current.name}`} is not closed with "}"`)
  return sections
}
