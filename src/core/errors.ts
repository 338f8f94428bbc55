// The one table of Petrel's error codes. Every error a user can meet — a malformed request, a
// bad flag, a limit hit — has a stable code here, the HTTP status it maps to (when it is an HTTP
// error) and a sentence that tells the user what to do about it.

export interface ErrorSpec {
  /** HTTP status sent to the client, or 0 when the error is not an HTTP answer. */
  readonly status: number
  readonly message: string
}

export const ERRORS = {
  // Request parsing (protocol/http1). Framing errors close the connection after the answer.
  PETREL_ERR_INVALID_METHOD: { status: 400, message: 'request method contains a character that is not a token character' },
  PETREL_ERR_INVALID_TARGET: {
    status: 400,
    message:
      'request target must be /path[?query], http://host[:port]/path (absolute-form), host:port (CONNECT only) or * (OPTIONS only), without control characters or spaces',
  },
  PETREL_ERR_INVALID_HOST: {
    status: 400,
    message:
      'the Host field, or the authority of an absolute-form target, is not host[:port] (RFC 9112 3.2): send a name, an IPv4 address or a [bracketed] IPv6 address, then optionally ":" and digits',
  },
  PETREL_ERR_INVALID_PATH_ENCODING: {
    status: 400,
    message: 'request path has a "%" not followed by two hex digits, or an encoded NUL (%00); send "%" itself as %25',
  },
  PETREL_ERR_PATH_ABOVE_ROOT: { status: 400, message: 'request path climbs above "/" with ".." segments (RFC 3986 5.2.4); remove them' },
  PETREL_ERR_AMBIGUOUS_PATH: {
    status: 400,
    message: 'request path has ".." next to an encoded slash (%2F, %5C), a backslash or a ";", which a server behind may read as a parent directory; remove it',
  },
  PETREL_ERR_INVALID_VERSION: { status: 400, message: 'request line does not end in a valid HTTP-version' },
  PETREL_ERR_UNSUPPORTED_VERSION: { status: 505, message: 'only HTTP/1.0 and HTTP/1.1 are supported' },
  PETREL_ERR_INVALID_REQUEST_LINE: { status: 400, message: 'request line is malformed' },
  PETREL_ERR_INVALID_HEADER_NAME: { status: 400, message: 'header name contains a character that is not a token character' },
  PETREL_ERR_INVALID_HEADER_VALUE: { status: 400, message: 'header value contains a forbidden character (NUL, bare CR or control)' },
  PETREL_ERR_WHITESPACE_BEFORE_COLON: { status: 400, message: 'whitespace between a header name and its colon is not allowed (RFC 9112 5.1)' },
  PETREL_ERR_OBS_FOLD: { status: 400, message: 'obsolete line folding in a header is not accepted (RFC 9112 5.2)' },
  PETREL_ERR_BARE_LF: { status: 400, message: 'a line in the request head ends in a bare LF; CRLF is required' },
  PETREL_ERR_BARE_CR: { status: 400, message: 'a CR in the request head is not followed by LF' },
  PETREL_ERR_MISSING_HOST: { status: 400, message: 'an HTTP/1.1 request must carry exactly one Host header' },
  PETREL_ERR_DUPLICATE_HOST: { status: 400, message: 'an HTTP/1.1 request must carry exactly one Host header' },
  PETREL_ERR_INVALID_CONTENT_LENGTH: { status: 400, message: 'Content-Length must be plain decimal digits' },
  PETREL_ERR_CONFLICTING_CONTENT_LENGTH: { status: 400, message: 'differing Content-Length headers' },
  PETREL_ERR_CONTENT_LENGTH_WITH_TRANSFER_ENCODING: { status: 400, message: 'Content-Length and Transfer-Encoding together are ambiguous framing' },
  PETREL_ERR_INVALID_TRANSFER_ENCODING: { status: 400, message: 'Transfer-Encoding is not a valid list of transfer codings' },
  PETREL_ERR_TRANSFER_ENCODING_NOT_CHUNKED: { status: 400, message: 'the final transfer coding of a request must be chunked' },
  PETREL_ERR_UNKNOWN_TRANSFER_ENCODING: { status: 501, message: 'transfer coding not implemented' },
  PETREL_ERR_INVALID_CHUNK: { status: 400, message: 'chunked body is malformed' },
  PETREL_ERR_CHUNK_SIZE_OVERFLOW: { status: 400, message: 'chunk size is too large' },
  PETREL_ERR_URI_TOO_LONG: { status: 414, message: 'request target is longer than limits.maxUriBytes' },
  PETREL_ERR_HEADERS_TOO_LARGE: { status: 431, message: 'request head is larger than limits.maxHeaderBytes' },
  PETREL_ERR_TOO_MANY_HEADERS: { status: 431, message: 'request has more headers than limits.maxHeaderCount' },
  PETREL_ERR_BODY_TOO_LARGE: { status: 413, message: 'request body is larger than limits.maxBodyBytes' },

  // Connection lifecycle (server/).
  PETREL_ERR_HEADERS_TIMEOUT: { status: 408, message: 'request head not received within timeouts.headersMs' },
  PETREL_ERR_BODY_TIMEOUT: { status: 408, message: 'request body stalled for longer than timeouts.bodyMs' },
  PETREL_ERR_HANDLER_TIMEOUT: { status: 503, message: 'the handler did not start its response within timeouts.handlerMs' },
  PETREL_ERR_SEND_TIMEOUT: { status: 0, message: 'client did not read the response for longer than timeouts.sendMs' },
  PETREL_ERR_TOO_MANY_CONNECTIONS: { status: 503, message: 'connection refused: limits.maxConnections reached' },
  PETREL_ERR_HANDLER_FAILED: { status: 500, message: 'the request handler threw or rejected' },
  PETREL_ERR_RESPONSE_HEADERS_SENT: { status: 0, message: 'response headers were already sent; set status and headers before the first write' },
  PETREL_ERR_RESPONSE_FINISHED: { status: 0, message: 'response was already ended; do not write after end()' },
  PETREL_ERR_INVALID_HEADER_FOR_RESPONSE: { status: 0, message: 'response header name must be a token and its value must not contain CR, LF or NUL' },
  PETREL_ERR_CONNECTION_CLOSED: { status: 0, message: 'the client closed the connection; the response cannot be delivered' },
  PETREL_ERR_BODY_ALREADY_READ: { status: 0, message: 'request body can be consumed once: call body() or stream(), not both' },
  PETREL_ERR_ROUTE_CONFLICT: { status: 0, message: 'a route with this method and path shape is already registered' },

  // TLS (server/tls.ts).
  PETREL_ERR_TLS_CERTIFICATE: {
    status: 0,
    message: 'a TLS certificate or key cannot be used; give a PEM certificate (chain) and the unencrypted PEM private key made for it, still valid',
  },
  PETREL_ERR_TLS_PROTOCOL: {
    status: 0,
    message: 'a client broke TLS: a failed handshake (not TLS at all, no version, cipher or ALPN protocol in common) or a bad record; the connection is closed',
  },
  PETREL_ERR_PLAIN_HTTP_TO_HTTPS: { status: 400, message: 'a plain HTTP request was sent to the HTTPS port; use an https:// URL' },
  PETREL_ERR_TLS_HANDSHAKE_TIMEOUT: { status: 0, message: 'TLS handshake not finished within timeouts.handshakeMs' },
  PETREL_ERR_H2_MALFORMED: {
    status: 0,
    message: 'an HTTP/2 request broke a rule of RFC 9113 §8 (pseudo-headers, field names or values, connection-specific fields); its stream is reset',
  },

  // WebSocket (server/websocket.ts).
  PETREL_ERR_WS_PROTOCOL: {
    status: 0,
    message:
      'a WebSocket client broke RFC 6455 (framing, masking, fragmentation, UTF-8, sizes, close codes); the connection is closed with the code the RFC names',
  },
  PETREL_ERR_WS_BACKPRESSURE: { status: 0, message: 'a WebSocket client let more than maxBackpressureBytes wait for it; it is closed with 1008' },
  PETREL_ERR_WS_PONG_TIMEOUT: { status: 0, message: 'a WebSocket client did not answer a ping within pongTimeoutMs; the connection is cut' },

  // Command line and configuration.
  PETREL_ERR_CLI_UNKNOWN_COMMAND: { status: 0, message: 'unknown command; run `petrel --help` for the list' },
  PETREL_ERR_CLI_UNKNOWN_FLAG: { status: 0, message: 'unknown flag; run `petrel <command> --help` for the flags it takes' },
  PETREL_ERR_CLI_BAD_VALUE: { status: 0, message: 'bad value for a flag' },
  PETREL_ERR_INVALID_OPTION: {
    status: 0,
    message: 'an option or argument given to the API has a value it cannot take; change it as the rest of this message says',
  },
  PETREL_ERR_CLI_MISSING_VALUE: { status: 0, message: 'flag needs a value' },
  PETREL_ERR_CLI_BAD_ARGUMENT: { status: 0, message: 'unexpected argument' },
  PETREL_ERR_ROOT_NOT_DIRECTORY: { status: 0, message: 'ROOT must be an existing directory' },
  PETREL_ERR_LISTEN: { status: 0, message: 'could not listen on the address' },
  // Start-up failures told by the operating system (core/system-failure.ts): the line names what
  // was tried ("cannot listen on 127.0.0.1:8080: ") before these sentences.
  PETREL_ERR_ADDRESS_IN_USE: {
    status: 0,
    message: 'the address is already in use; stop the program that holds it (`ss -ltnup` shows which) or choose another port',
  },
  PETREL_ERR_LISTEN_DENIED: {
    status: 0,
    message: 'permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port from 1024 up, or start as root',
  },
  PETREL_ERR_ADDRESS_NOT_LOCAL: {
    status: 0,
    message: 'no network interface of this machine has that address; give one it has (`ip -brief address` lists them), 127.0.0.1, or 0.0.0.0 for all',
  },
  PETREL_ERR_HOST_UNKNOWN: {
    status: 0,
    message: 'the host name does not resolve; give an IP address such as 127.0.0.1 or 0.0.0.0, or a name this machine resolves',
  },
  PETREL_ERR_NO_DIRECTORY: { status: 0, message: 'its directory does not exist; create the directory or give a path in one that exists' },
  PETREL_ERR_FILE_MISSING: { status: 0, message: 'there is no such file; check the path' },
  PETREL_ERR_FILE_DENIED: { status: 0, message: 'permission denied; give a path the user running petrel may open, or change its permissions' },
  PETREL_ERR_FILE_IS_DIRECTORY: { status: 0, message: 'it is a directory; give the path of a file' },
  PETREL_ERR_FILE_OPEN: { status: 0, message: 'the system refused to open the file; fix what it names or give another path' },
  PETREL_ERR_PIDFILE_HELD: { status: 0, message: 'the pidfile is held by a running server' },
  PETREL_ERR_NO_SERVER: { status: 0, message: 'no running server to signal' },
  PETREL_ERR_NOT_PETREL: {
    status: 0,
    message: 'the pidfile names a process that is not a Petrel server (a stale pidfile whose pid was reused); remove the file',
  },
  PETREL_ERR_LOG_OPEN: { status: 0, message: 'cannot open a log file; create its directory, fix its permissions or give another path' },
  PETREL_ERR_WORKER_START: {
    status: 0,
    message: 'a worker process failed to start; fix what the line names, or raise --worker-start-timeout for a slow start',
  },
  PETREL_ERR_CHAT_WORKER_START: {
    status: 0,
    message:
      'a chat worker process failed to start, so the room is not open; fix what the line names (a Redis that does not answer, a taken port), or raise --worker-start-timeout for a slow start',
  },
  PETREL_ERR_CHAT_WORKER_STALLED: {
    status: 0,
    message:
      "a chat worker stopped reading the room's lines from the master; it is killed and replaced (its clients reconnect): look for what blocks its event loop",
  },
  PETREL_ERR_CHAT_UNREACHABLE: { status: 0, message: 'cannot reach the chat room; start it (`petrel chat --port PORT`) or check HOST:PORT' },
  PETREL_ERR_REDIS_UNAVAILABLE: { status: 0, message: 'cannot reach Redis; start it, or give the URL of one that runs' },
  PETREL_ERR_POOL_QUEUE_FULL: { status: 503, message: 'the thread pool is busy and its queue is full; try again shortly' },
  PETREL_ERR_POOL_TIMEOUT: { status: 503, message: "the task did not finish within the thread pool's task timeout" },
  PETREL_ERR_DB_POOL_TIMEOUT: { status: 503, message: 'every database connection is busy; try again shortly' },
  PETREL_ERR_DB_POOL_FULL: { status: 503, message: 'too many requests are waiting for a database connection; try again shortly' },
  PETREL_ERR_DB_POOL_CLOSED: { status: 503, message: 'the database pool is shutting down' },
  PETREL_ERR_DB_UNAVAILABLE: { status: 503, message: 'the database cannot be reached' },
  PETREL_ERR_OUT_OF_DESCRIPTORS: { status: 503, message: 'the server has no file descriptor free to open the file; try again shortly' },
  PETREL_ERR_NO_PROC_FD: {
    status: 0,
    message: 'serving files needs Linux with /proc mounted: each opened file is checked through /proc/self/fd to keep paths inside ROOT; mount /proc',
  },
  PETREL_ERR_UPSTREAM_FAILED: { status: 502, message: 'the upstream server refused, reset or garbled the exchange' },
  PETREL_ERR_UPSTREAM_TIMEOUT: { status: 504, message: 'the upstream server did not answer in time' },
  // Response parsing (protocol/http1/response-parser.ts): what an upstream (or a benchmarked server)
  // sent cannot be framed. A proxy answers 502 and drops the connection it came on.
  PETREL_ERR_UPSTREAM_INVALID_STATUS_LINE: {
    status: 502,
    message: "the upstream's response does not start with an HTTP/1.x status line and a 3-digit status; check that the upstream speaks HTTP/1.1",
  },
  PETREL_ERR_UPSTREAM_INVALID_HEADER: {
    status: 502,
    message: "the upstream sent a malformed header line (a name that is not a token, no colon, or obsolete line folding); fix the upstream's headers",
  },
  PETREL_ERR_UPSTREAM_BARE_LF: { status: 502, message: "a line of the upstream's response ends in a bare LF; HTTP/1.1 requires CRLF: fix the upstream" },
  PETREL_ERR_UPSTREAM_HEADERS_TOO_LARGE: {
    status: 502,
    message:
      "the upstream's response head (or trailer section) is larger than the proxy allows; raise --proxy-max-response-header-bytes or trim the upstream's headers",
  },
  PETREL_ERR_UPSTREAM_TOO_MANY_HEADERS: {
    status: 502,
    message: "the upstream's response has more header fields than the proxy allows; raise --proxy-max-response-header-count or trim the upstream's headers",
  },
  PETREL_ERR_UPSTREAM_INVALID_FRAMING: {
    status: 502,
    message: "the upstream's Content-Length or Transfer-Encoding is malformed or contradictory, so the end of its response is unknown; fix the upstream",
  },
  PETREL_ERR_UPSTREAM_INVALID_CHUNK: { status: 502, message: "the upstream's chunked body is malformed; fix the upstream" },
  PETREL_ERR_PROXY_FORBIDDEN: { status: 403, message: 'this proxy does not go to that destination' },
  PETREL_ERR_ADMIN_MISDIRECTED: {
    status: 421,
    message:
      'this admin listener answers only to its address, localhost, the --admin name and the names given with --admin-host; use one of them, or add this name with --admin-host NAME',
  },
  PETREL_ERR_ADMIN_UNAUTHORIZED: {
    status: 401,
    message:
      'this admin listener needs its token: send Authorization: Bearer TOKEN (petrel top --admin-token-file FILE; Prometheus: authorization.credentials_file) or enter it on the dashboard page',
  },
  PETREL_ERR_BENCH_RESOLVE: { status: 0, message: 'cannot resolve the host name in the URL' },
  PETREL_ERR_BENCH_THREAD: { status: 0, message: 'a load-generator thread failed' },
  PETREL_ERR_INETD_CONFIG: { status: 0, message: 'the inetd configuration is invalid' },
  PETREL_ERR_HTPASSWD: {
    status: 0,
    message:
      'the htpasswd file cannot be used: fix or remove the line named, or make it again with `htpasswd -B FILE USER` (bcrypt) or `htpasswd -m FILE USER` (apr1-MD5)',
  },
  PETREL_ERR_AUTH_REQUIRED: { status: 401, message: 'this path needs a user name and password (HTTP Basic authentication); send the right ones' },
  PETREL_ERR_AUTH_MALFORMED: {
    status: 400,
    message:
      'the Authorization field is not `Basic` and the base64 of USER:PASSWORD in UTF-8 (one colon, no control characters, within the size limit); send it as RFC 7617 says',
  },
  PETREL_ERR_AUTH_TOO_MANY: {
    status: 429,
    message: 'too many password checks from your address in this window; wait the seconds Retry-After names, then send the right password',
  },
  PETREL_ERR_CONFIG_RELOAD: {
    status: 0,
    message:
      'a reload was refused: the new configuration failed to load, or its server or first new worker failed to start; the running server keeps the old one: fix what the line names and reload again',
  },
} as const satisfies Record<string, ErrorSpec>

export type ErrorCode = keyof typeof ERRORS

/** An error with a stable code from the table above. `detail` adds the specifics of this case. */
export class PetrelError extends Error {
  readonly code: ErrorCode
  readonly status: number

  constructor(code: ErrorCode, detail?: string, options?: ErrorOptions) {
    const spec = ERRORS[code]
    super(detail === undefined ? spec.message : `${spec.message}: ${detail}`, options)
    this.name = 'PetrelError'
    this.code = code
    this.status = spec.status
  }
}

/** Bad input from the command line or a config file: the CLI prints the detail alone and exits 2. */
export class UsageError extends PetrelError {
  constructor(code: ErrorCode, detail: string) {
    super(code, detail)
    this.name = 'UsageError'
    this.message = detail
  }
}

export function statusOf(code: ErrorCode): number {
  return ERRORS[code].status
}

/** The message of anything thrown: an Error's message, or the value itself as text. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The system error code of anything thrown (`ENOENT`, `EPERM` …), or undefined when it has none. */
export function systemErrorCode(err: unknown): string | undefined {
  if (!(err instanceof Error) || !('code' in err)) return undefined
  return typeof err.code === 'string' ? err.code : undefined
}
