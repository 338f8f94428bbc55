// The HTML directory listing of `petrel serve ROOT --list`, in the spirit of nginx's autoindex.
// It is a pure function of the directory's URL path and its entries: static.ts reads the
// directory (through the file cache, from a descriptor checked to be inside ROOT), looks each
// name up, leaves out dotfiles, and sends what renderListing() returns as text/html.
//
// File names come from whoever can write to ROOT, so they are untrusted text. Every name and
// the path are HTML-escaped wherever they appear, and every link is built from a single
// percent-encoded segment prefixed with "./", so no name can add markup, leave an attribute,
// become a scheme ("javascript:"), a query, a fragment or another path. The page has no scripts.
//
// Example (in static.ts, for a directory URL that ends in "/"):
//   const names = (await cache.readDirectory(dir)) ?? []   // null: no longer a directory inside ROOT
//   ... look each name up in the cache into { name, isDirectory, size, mtimeMs } ...
//   res.setHeader('Content-Type', 'text/html; charset=utf-8')
//   res.end(renderListing(decodedUrlPath, listed))

/** One directory entry as the listing needs it. */
export interface ListingEntry {
  /** The file name, a single path segment as returned by readdir. */
  name: string
  isDirectory: boolean
  /** Size in bytes; ignored for directories. */
  size: number
  /** Modification time in milliseconds since the epoch. */
  mtimeMs: number
}

/**
 * A complete HTML5 page listing `entries` of the directory at `urlPath`.
 *
 * `urlPath` is the decoded path of the directory as it should be displayed, e.g. "/docs/a b/".
 * The links are relative ("./name", "../"), so the page must be served at a URL ending in "/";
 * the caller redirects "/docs" to "/docs/" first, as nginx does.
 *
 * Directories come first, then files, each group in code-unit order of the names, which is the
 * same on every machine whatever its locale. Names starting with "." are skipped: the caller
 * already hides dotfiles, and skipping them here too means a caller that forgets does not
 * reveal ".env" or ".git/" (and "." and ".." can never become rows). Empty names are skipped
 * because their link would point back at the listing itself.
 */
export function renderListing(urlPath: string, entries: readonly ListingEntry[]): string {
  const shown = entries.filter((entry) => entry.name !== '' && !entry.name.startsWith('.'))
  shown.sort(compareEntries)

  const title = `Index of ${escapeHtml(urlPath)}`
  const rows: string[] = []
  if (!isRoot(urlPath)) {
    rows.push('<tr><td><a href="../">../</a></td><td></td><td></td></tr>')
  }
  for (const entry of shown) rows.push(renderRow(entry))

  return (
    '<!DOCTYPE html>\n' +
    '<html>\n' +
    '<head>\n' +
    '<meta charset="utf-8">\n' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    `<title>${title}</title>\n` +
    '<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}' +
    'th,td{padding:.2em 1.5em .2em 0;text-align:left}td:nth-child(2){text-align:right}' +
    'td:nth-child(3){font-family:monospace;white-space:nowrap}</style>\n' +
    '</head>\n' +
    '<body>\n' +
    `<h1>${title}</h1>\n` +
    '<table>\n' +
    '<thead><tr><th>Name</th><th>Size</th><th>Last modified</th></tr></thead>\n' +
    '<tbody>\n' +
    rows.map((row) => row + '\n').join('') +
    '</tbody>\n' +
    '</table>\n' +
    '</body>\n' +
    '</html>\n'
  )
}

function renderRow(entry: ListingEntry): string {
  // toWellFormed() replaces lone surrogates with U+FFFD: encodeURIComponent throws on them, and
  // readdir never returns them, but a pure function should not throw on odd input.
  const name = entry.name.toWellFormed()
  const slash = entry.isDirectory ? '/' : ''
  const href = `./${encodeURIComponent(name)}${slash}`
  const link = `<a href="${escapeHtml(href)}">${escapeHtml(displayName(name))}${slash}</a>`
  const size = entry.isDirectory || !isByteCount(entry.size) ? '<td>-</td>' : `<td title="${entry.size}">${formatSize(entry.size)}</td>`
  return `<tr><td>${link}</td>${size}<td>${formatDate(entry.mtimeMs)}</td></tr>`
}

/**
 * The name as shown: control characters (C0 and DEL) become U+FFFD, as `ls` shows them as "?".
 * HTML would render a newline or tab as a space, so "a\nb" would look exactly like "a b"; the
 * link still carries the exact name.
 */
function displayName(name: string): string {
  return name.replace(/[\u0000-\u001f\u007f]/g, '\uFFFD')
}

function isRoot(urlPath: string): boolean {
  return urlPath === '/' || urlPath === ''
}

function isByteCount(size: number): boolean {
  return Number.isSafeInteger(size) && size >= 0
}

/** Directories before files; within a group, names by UTF-16 code units (no locale involved). */
function compareEntries(a: ListingEntry, b: ListingEntry): number {
  if (a.isDirectory !== b.isDirectory) return a.isDirectory ? -1 : 1
  if (a.name < b.name) return -1
  if (a.name > b.name) return 1
  return 0
}

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Text safe both between tags and inside a quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]!)
}

const SIZE_UNITS = ['KiB', 'MiB', 'GiB'] as const

/**
 * A byte count for people: "0 B" … "1023 B", then one decimal in KiB, MiB or GiB ("1.5 KiB").
 * The unit is chosen after rounding, so 1048575 bytes is "1.0 MiB" rather than "1024.0 KiB".
 */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  let value = bytes / 1024
  let unit = 0
  while (unit < SIZE_UNITS.length - 1 && Number(value.toFixed(1)) >= 1024) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(1)} ${SIZE_UNITS[unit]}`
}

/** "2026-11-26 14:03" in UTC, or "-" for a time that is not a valid date. */
export function formatDate(ms: number): string {
  const date = new Date(ms)
  if (Number.isNaN(date.getTime())) return '-'
  const iso = date.toISOString() // YYYY-MM-DDTHH:MM:SS.sssZ, always UTC
  if (iso.length !== 24) return '-' // years outside 0000–9999 come out as ±YYYYYY
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}`
}
