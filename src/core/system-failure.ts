// Start-up failures the operating system reports — an address in use, a port that needs root, a
// log in a directory that does not exist — told as one line: what Petrel tried, what is wrong and
// what to do, with a code from the one table (errors.ts). Node's own errors say only the first two
// ("listen EADDRINUSE: address already in use 127.0.0.1:8080") and come with a stack trace that
// reads as a crash. Listeners and log openers build their errors here, so the same line reaches
// the terminal whether it is thrown in this process or sent as text from a worker process, and
// the CLI's top-level handler turns any such error that arrives raw into the same line.

import { existsSync } from 'node:fs'
import path from 'node:path'
import { getSystemErrorMessage } from 'node:util'
import { ERRORS, PetrelError, UsageError, type ErrorCode } from './errors.ts'

/** An operating-system failure at start-up: "cannot WHAT: what is wrong; what to do". */
export class SystemFailure extends PetrelError {
  constructor(code: ErrorCode, what: string, cause: NodeJS.ErrnoException, reason?: string) {
    super(code, undefined, { cause })
    this.name = 'SystemFailure'
    this.message = `cannot ${what}: ${reason ?? ERRORS[code].message}`
  }
}

/** A Node system error: `syscall` tells what was being done; net errors add the address, dns ones the host name. */
type SystemError = NodeJS.ErrnoException & { syscall: string; code: string; address?: string; port?: number; hostname?: string }

function isSystemError(value: unknown): value is SystemError {
  return value instanceof Error && typeof (value as NodeJS.ErrnoException).code === 'string' && typeof (value as NodeJS.ErrnoException).syscall === 'string'
}

/** Ports below this need root or CAP_NET_BIND_SERVICE to listen on (Linux's ip_unprivileged_port_start default). */
const PRIVILEGED_PORTS = 1024

/** How deep a chain of `cause`s is searched for the system error behind a wrapper. */
const MAX_CAUSE_DEPTH = 8

/**
 * The SystemFailure for `err` — a system error from listening, binding, resolving a listen address,
 * opening a file or making a directory, or an error whose `cause` chain holds one — or null for anything else (a
 * real bug keeps its stack trace). `what` says what was being done ("listen on 127.0.0.1:8080");
 * without it, it is told from the system error's own fields. A SystemFailure passes unchanged
 * unless `what` is given.
 */
export function systemFailure(err: unknown, what?: string): SystemFailure | null {
  let current: unknown = err
  for (let depth = 0; depth < MAX_CAUSE_DEPTH && current instanceof Error; depth++) {
    if (current instanceof SystemFailure && what === undefined) return current
    if (isSystemError(current)) return explain(current, what)
    current = current.cause
  }
  return null
}

function explain(err: SystemError, what: string | undefined): SystemFailure | null {
  switch (err.syscall) {
    case 'listen':
    case 'bind': {
      // Node names a TCP bind failure "listen"; "bind" is a UDP socket's.
      const doing = what ?? `listen on ${hostPort(err.address ?? '', err.port)}${err.syscall === 'bind' ? ' (udp)' : ''}`
      if (err.code === 'EADDRINUSE') return new SystemFailure('PETREL_ERR_ADDRESS_IN_USE', doing, err)
      // Below 1024 the kernel wants root or CAP_NET_BIND_SERVICE; above it a refusal comes from
      // elsewhere (a security module), and the system's words are all there is to tell.
      if ((err.code === 'EACCES' || err.code === 'EPERM') && err.port !== undefined && err.port < PRIVILEGED_PORTS)
        return new SystemFailure('PETREL_ERR_LISTEN_DENIED', doing, err)
      if (err.code === 'EADDRNOTAVAIL') return new SystemFailure('PETREL_ERR_ADDRESS_NOT_LOCAL', doing, err)
      return new SystemFailure('PETREL_ERR_LISTEN', doing, err, osReason(err))
    }
    case 'getaddrinfo': {
      const doing = what ?? `resolve ${err.hostname ?? 'the host name'}`
      if (err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN' || err.code === 'EAI_NODATA' || err.code === 'EAI_NONAME')
        return new SystemFailure('PETREL_ERR_HOST_UNKNOWN', doing, err)
      return new SystemFailure('PETREL_ERR_LISTEN', doing, err, osReason(err))
    }
    case 'open':
    case 'mkdir': {
      const file = err.path ?? 'the file'
      const doing = what ?? (err.syscall === 'mkdir' ? `create the directory ${file}` : `open ${file}`)
      if (err.code === 'ENOENT') {
        const directory = path.dirname(path.resolve(file))
        return new SystemFailure(existsSync(directory) ? 'PETREL_ERR_FILE_MISSING' : 'PETREL_ERR_NO_DIRECTORY', doing, err)
      }
      if (err.code === 'EACCES' || err.code === 'EPERM') return new SystemFailure('PETREL_ERR_FILE_DENIED', doing, err)
      if (err.code === 'EISDIR') return new SystemFailure('PETREL_ERR_FILE_IS_DIRECTORY', doing, err)
      return new SystemFailure('PETREL_ERR_FILE_OPEN', doing, err, osReason(err))
    }
    default:
      return null
  }
}

/** "address already in use (EADDRINUSE)": the system's words without Node's "syscall CODE:" prefix. */
function osReason(err: NodeJS.ErrnoException): string {
  const text = typeof err.errno === 'number' ? getSystemErrorMessage(err.errno) : err.message
  return `${text} (${err.code})`
}

/** "127.0.0.1:8080", "[::1]:8080". */
export function hostPort(host: string, port: number | undefined): string {
  const shown = host.includes(':') ? `[${host}]` : host
  return port === undefined ? shown : `${shown}:${port}`
}

/**
 * The one line a command prints for an error it expects — a bad flag or value (the message alone),
 * a failure with a code from the table, or a system error met while starting (an address in use, a
 * port that needs root, a log in a missing directory), even one a lower layer let through raw or
 * wrapped — or null for anything else: a bug in Petrel, whose stack trace should be seen.
 */
export function errorLine(err: unknown): string | null {
  if (err instanceof UsageError) return `petrel: ${err.message}`
  const failure = systemFailure(err) ?? (err instanceof PetrelError ? err : null)
  return failure === null ? null : `petrel: ${failure.message} [${failure.code}]`
}
