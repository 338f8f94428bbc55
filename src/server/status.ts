// Pre-built status lines and the cached Date header: the parts of every response head that do
// not depend on the request are built once, not per response.

/**
 * Reason phrases: RFC 9110 §15 and the other codes of IANA's registry. Our own table rather than
 * node:http's status table, whose import loads the whole node:http module — about 15 MB of
 * resident memory in every process, measured — for a few dozen strings.
 */
const REASONS: Readonly<Record<number, string>> = {
  100: 'Continue',
  101: 'Switching Protocols',
  102: 'Processing',
  103: 'Early Hints',
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  203: 'Non-Authoritative Information',
  204: 'No Content',
  205: 'Reset Content',
  206: 'Partial Content',
  207: 'Multi-Status',
  208: 'Already Reported',
  226: 'IM Used',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  305: 'Use Proxy',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  409: 'Conflict',
  410: 'Gone',
  411: 'Length Required',
  412: 'Precondition Failed',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Range Not Satisfiable',
  417: 'Expectation Failed',
  421: 'Misdirected Request',
  422: 'Unprocessable Content',
  423: 'Locked',
  424: 'Failed Dependency',
  425: 'Too Early',
  426: 'Upgrade Required',
  428: 'Precondition Required',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  451: 'Unavailable For Legal Reasons',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
  506: 'Variant Also Negotiates',
  507: 'Insufficient Storage',
  508: 'Loop Detected',
  510: 'Not Extended',
  511: 'Network Authentication Required',
}

const statusLines: string[] = []

/** "HTTP/1.1 200 OK\r\n" for any code from 100 to 999; unknown codes get an empty reason phrase. */
export function statusLine(code: number): string {
  let line = statusLines[code]
  if (line === undefined) {
    line = `HTTP/1.1 ${code} ${REASONS[code] ?? ''}\r\n`
    statusLines[code] = line
  }
  return line
}

for (const code of Object.keys(REASONS)) statusLine(Number(code))

/** The reason phrase of a status code: "Service Unavailable" for 503; "" when unknown. */
export function statusText(code: number): string {
  return REASONS[code] ?? ''
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

/** The Date field's value alone (for HTTP/2's fields). */
export function dateValue(): string {
  if (dateLine !== dateValueOf) {
    dateValueOf = dateLine
    lastDateValue = dateLine.slice(6, -2)
  }
  return lastDateValue
}
let dateValueOf = ''
let lastDateValue = ''

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
