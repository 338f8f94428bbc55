// Pre-built status lines and the cached Date header: the parts of every response head that do
// not depend on the request are built once, not per response.

import { STATUS_CODES } from 'node:http'

const statusLines: string[] = []

/** "HTTP/1.1 200 OK\r\n" for any code from 100 to 999; unknown codes get an empty reason phrase. */
export function statusLine(code: number): string {
  let line = statusLines[code]
  if (line === undefined) {
    line = `HTTP/1.1 ${code} ${STATUS_CODES[code] ?? ''}\r\n`
    statusLines[code] = line
  }
  return line
}

for (const code of Object.keys(STATUS_CODES)) statusLine(Number(code))

/** The reason phrase of a status code: "Service Unavailable" for 503; "" when unknown. */
export function statusText(code: number): string {
  return STATUS_CODES[code] ?? ''
}

/** Statuses whose responses never carry a body or body framing headers (RFC 9110 §6.4.1). */
export function statusHasNoBody(code: number): boolean {
  return code < 200 || code === 204 || code === 304
}

let dateLine = ''
let dateTimer: NodeJS.Timeout | null = null
let dateUsers = 0

function refreshDate(): void {
  dateLine = `Date: ${new Date().toUTCString()}\r\n`
}

/** "Date: …\r\n", refreshed once per second while at least one server is running. */
export function dateHeaderLine(): string {
  return dateLine
}

/** Start (or share) the once-per-second refresh; pair every call with releaseDateClock(). */
export function retainDateClock(): void {
  if (dateUsers++ === 0) {
    refreshDate()
    // Aligning to the second boundary keeps the header within a few ms of the wall clock.
    const alignMs = 1000 - (Date.now() % 1000)
    dateTimer = setTimeout(() => {
      refreshDate()
      dateTimer = setInterval(refreshDate, 1000)
      dateTimer.unref()
    }, alignMs)
    dateTimer.unref()
  }
}

export function releaseDateClock(): void {
  if (--dateUsers === 0 && dateTimer !== null) {
    clearTimeout(dateTimer)
    clearInterval(dateTimer)
    dateTimer = null
  }
}
