// File extension → Content-Type, from mime-db (the database behind the mime-types package, and
// nginx's mime.types' superset), with mime-types' rule for an extension several types claim.
//
// Why not the mime-types package itself: loading it added about 7 MB of resident memory to every
// process (measured: 47 → 54 MB for a bare listener), most of it its module and the ~2,500-type
// maps it builds at once, where the server needs one string per file it serves. Here the
// database is read with require() (no ESM translation of a CommonJS module) and the extension
// map is made the first time a file's type is asked for.
//
//   contentTypeFor('index.html') → 'text/html; charset=utf-8'
//   contentTypeFor('logo.svg')   → 'image/svg+xml; charset=utf-8'
//   contentTypeFor('data.bin9')  → 'application/octet-stream'

import { createRequire } from 'node:module'
import path from 'node:path'

interface MediaType {
  source?: string
  charset?: string
  extensions?: string[]
}

const UNKNOWN = 'application/octet-stream'

let byExtension: Map<string, string> | null = null

/** The Content-Type for `file` by its extension: text and XML-based types with charset=utf-8. */
export function contentTypeFor(file: string): string {
  const extension = path.extname(`x.${file}`).slice(1).toLowerCase()
  return (byExtension ??= buildMap()).get(extension) ?? UNKNOWN
}

function buildMap(): Map<string, string> {
  const db = createRequire(import.meta.url)('mime-db') as Record<string, MediaType>
  const chosen = new Map<string, string>()
  for (const type of Object.keys(db)) {
    for (const extension of db[type]!.extensions ?? []) {
      const current = chosen.get(extension)
      if (current === undefined || score(type, db[type]!.source) > score(current, db[current]!.source)) chosen.set(extension, type)
    }
  }
  const map = new Map<string, string>()
  for (const [extension, type] of chosen) map.set(extension, withCharset(type, db[type]!))
  return map
}

/**
 * mime-types' preference when extensions collide ("mime-score"): a standards-tree type over
 * vnd., x. and prs. ones, IANA's over Apache's over nginx's, application over the rest, font,
 * audio and video over what they are not, the shorter name when all else is equal, and
 * octet-stream last.
 */
function score(type: string, source: string | undefined): number {
  if (type === UNKNOWN) return 0
  const slash = type.indexOf('/')
  const top = type.slice(0, slash)
  const subtype = type.slice(slash + 1)
  const facet = subtype.startsWith('prs.') ? 100 : subtype.startsWith('x-') ? 200 : subtype.startsWith('x.') ? 300 : subtype.startsWith('vnd.') ? 400 : 900
  const origin = source === 'nginx' ? 10 : source === 'apache' ? 20 : source === 'iana' ? 40 : 30
  const family = top === 'application' ? 1 : top === 'font' || top === 'audio' ? 2 : top === 'video' ? 3 : 0
  return facet + origin + family + (1 - type.length / 100)
}

/** The type as a Content-Type value: the database's charset, else utf-8 for text/* and XML-based types. */
function withCharset(type: string, media: MediaType): string {
  if (media.charset !== undefined) return `${type}; charset=${media.charset.toLowerCase()}`
  return type.startsWith('text/') || type.endsWith('+xml') ? `${type}; charset=utf-8` : type
}
