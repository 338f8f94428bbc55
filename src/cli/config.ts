// `petrel serve --config FILE`: a JSON file that sets what the flags set. It is checked against the
// same FlagSpec list as the command line, so a flag added to a command is a key of its config file
// the moment it is declared, and the two can never drift apart.
//
// Keys are the long flag names without dashes ("port", "max-body-bytes", "headers-timeout"), plus
// "root" for the ROOT positional. Values keep their JSON types: integers are JSON integers (a
// quoted "8080" is refused, so a typo cannot hide behind a string), durations are numbers of
// seconds (as a bare number is on the command line: "keepalive-timeout": 5 is 5 s) or strings
// such as "500ms" and "5s", booleans are true/false, lists are arrays of strings. A string setting
// whose value may be a number ("workers": 4, or "auto") takes a JSON number too.

import path from 'node:path'
import { DEFAULT_MAX_CONFIG_BYTES, readConfigFile } from '../core/config-file.ts'
import { errorMessage } from '../core/errors.ts'
import { MAX_DURATION_MS, MAX_DURATION_TEXT, UsageError, parseDurationMs, type FlagMap, type FlagSpec, type FlagValue, type Flags } from './args.ts'

export interface LoadConfigOptions {
  /** Flags that make no sense in a file (e.g. "help", "config", "signal"); naming one is an error. */
  exclude?: string[]
  /** The largest file read (default 1 MiB), and the flag that sets it, for the refusal. */
  maxBytes?: number
  maxBytesKnob?: string
  /**
   * Keys that hold more than a flag's value (`sites`): each is given its JSON value, as parsed,
   * to check and keep; what it throws is the caller's refusal.
   */
  sections?: Record<string, (value: unknown) => void>
}

/** The key for the ROOT positional, accepted unless a spec of that name exists. */
const ROOT_KEY = 'root'

const EXAMPLE = '{"port": 8080}'

/** What a config file sets: any of the flags (none has a default here), and "root". */
export type ConfigFlags<Specs extends readonly FlagSpec[]> = Partial<Flags<Specs>> & { root?: string }

/**
 * Reads and validates a JSON config file. The result has the shape parseArgs gives for flags:
 * a `false` boolean and an empty list are left out, as they are when the flag is not given.
 * A relative "root" is resolved against the config file's directory, not the working directory,
 * so the file means the same thing wherever petrel is started.
 *
 * As with parseArgs, the typed signature is declared over the untyped one: each value is
 * converted by its spec's type below, which the compiler cannot follow through the loop.
 */
export async function loadConfig<const Specs extends readonly FlagSpec[]>(
  file: string,
  specs: Specs,
  options?: LoadConfigOptions,
): Promise<FlagMap<ConfigFlags<Specs>>>
export async function loadConfig(
  file: string,
  specs: readonly FlagSpec[],
  options: LoadConfigOptions = {},
): Promise<FlagMap<Record<string, FlagValue | undefined>>> {
  const text = await readConfigText(file, options)
  const parsed = parseJson(file, text)
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `config file ${file} must hold a JSON object such as ${EXAMPLE}, not ${describeJson(parsed)}`)
  }
  const exclude = new Set(options.exclude ?? [])
  const allowed = specs.filter((s) => !exclude.has(s.name))
  const byName = new Map(allowed.map((s) => [s.name, s] as const))
  const acceptsRoot = !exclude.has(ROOT_KEY) && !specs.some((s) => s.name === ROOT_KEY)
  const flags = new Map<string, FlagValue>()
  for (const [key, value] of Object.entries(parsed)) {
    const spec = byName.get(key)
    const section = options.sections !== undefined && Object.hasOwn(options.sections, key) ? options.sections[key] : undefined
    if (section !== undefined) {
      section(value)
    } else if (spec !== undefined) {
      const converted = convert(file, spec.name, spec, value)
      if (converted !== false && !(Array.isArray(converted) && converted.length === 0)) flags.set(spec.name, converted)
    } else if (key === ROOT_KEY && acceptsRoot) {
      if (typeof value !== 'string' || value === '') throw badValue(file, ROOT_KEY, value, 'a non-empty string')
      flags.set(ROOT_KEY, path.resolve(path.dirname(path.resolve(file)), value))
    } else if (exclude.has(key)) {
      throw new UsageError('PETREL_ERR_CLI_UNKNOWN_FLAG', `key "${key}" cannot be set in config file ${file}; give it on the command line instead`)
    } else {
      const known = [...byName.keys(), ...(acceptsRoot ? [ROOT_KEY] : []), ...Object.keys(options.sections ?? {})]
      const closest = closestKey(key, known, allowed)
      const hint = closest !== undefined ? `did you mean "${closest}"?` : `known keys: ${known.join(', ')}`
      throw new UsageError('PETREL_ERR_CLI_UNKNOWN_FLAG', `unknown key "${key}" in ${file}; ${hint}`)
    }
  }
  return flags
}

/**
 * Command-line flags win over the config file; a list given on the command line replaces the
 * file's. The file's "root" is the ROOT positional, not a flag: the caller takes it with get().
 */
export function mergeFlags<Values>(fromConfig: Iterable<[string, FlagValue]>, fromCli: FlagMap<Values>): FlagMap<Values>
export function mergeFlags(
  fromConfig: Iterable<[string, FlagValue]>,
  fromCli: FlagMap<Record<string, FlagValue | undefined>>,
): FlagMap<Record<string, FlagValue | undefined>> {
  const merged = new Map<string, FlagValue>()
  for (const [name, value] of fromConfig) if (name !== ROOT_KEY) merged.set(name, value)
  for (const [name, value] of fromCli) merged.set(name, value)
  return merged
}

/**
 * The file's text: a regular file only, at most maxBytes, read off the event loop — a reload
 * (SIGHUP) reads it while serving, and a FIFO or /dev/zero in its place must not stop the server.
 */
async function readConfigText(file: string, options: LoadConfigOptions): Promise<string> {
  let text: string
  try {
    text = await readConfigFile(file, {
      maxBytes: options.maxBytes ?? DEFAULT_MAX_CONFIG_BYTES,
      maxBytesKnob: options.maxBytesKnob ?? '--max-config-bytes',
      code: 'PETREL_ERR_CLI_BAD_VALUE',
    })
  } catch (err) {
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `config file ${errorMessage(err)}`)
  }
  // Editors on Windows may save a byte-order mark, which JSON.parse refuses.
  return text.startsWith('\uFEFF') ? text.slice(1) : text
}

function parseJson(file: string, text: string): unknown {
  if (text.trim() === '') throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `config file ${file} is empty; expected a JSON object such as ${EXAMPLE}`)
  try {
    return JSON.parse(text)
  } catch (err) {
    const message = errorMessage(err)
    // V8 says "... in JSON at position N" for most errors and "Unexpected end of JSON input" at the
    // end; for a bad literal (True, NaN, undefined) it quotes a snippet instead of a position, so
    // then a small scan of our own finds where the text stops being JSON.
    const at = /^(.*) in JSON at position (\d+)/s.exec(message)
    let offset: number
    let reason: string
    if (at !== null) {
      offset = Number(at[2])
      reason = lowerFirst(at[1]!)
    } else if (/end of JSON input/.test(message)) {
      offset = text.length
      reason = 'unexpected end of JSON input'
    } else {
      offset = syntaxErrorOffset(text)
      const word = /^[\w$.+-]+/.exec(text.slice(offset))?.[0] ?? text.charAt(offset)
      reason = `unexpected ${JSON.stringify(word)}`
    }
    const { line, column } = lineAndColumn(text, offset)
    throw new UsageError('PETREL_ERR_CLI_BAD_VALUE', `config file ${file} is not valid JSON at line ${line}, column ${column}: ${reason}`)
  }
}

function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1
  let lineStart = 0
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++
      lineStart = i + 1
    }
  }
  return { line, column: offset - lineStart + 1 }
}

/** Offset of the first character where `text` stops being JSON (only used when V8 gives none). */
function syntaxErrorOffset(text: string): number {
  let i = 0
  const skipSpace = () => {
    while (i < text.length && ' \t\n\r'.includes(text.charAt(i))) i++
  }
  const string = (): boolean => {
    i++
    for (;;) {
      const c = text[i]
      if (c === undefined || c < ' ') return false
      if (c === '"') break
      if (c === '\\') {
        const next = text[i + 1]
        if (next !== undefined && '"\\/bfnrt'.includes(next)) i += 2
        else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6
        else return false
      } else {
        i++
      }
    }
    i++
    return true
  }
  const value = (): boolean => {
    skipSpace()
    const c = text[i]
    if (c === '{' || c === '[') {
      const close = c === '{' ? '}' : ']'
      i++
      skipSpace()
      if (text[i] === close) {
        i++
        return true
      }
      for (;;) {
        if (c === '{') {
          skipSpace()
          if (text[i] !== '"' || !string()) return false
          skipSpace()
          if (text[i] !== ':') return false
          i++
        }
        if (!value()) return false
        skipSpace()
        if (text[i] === close) {
          i++
          return true
        }
        if (text[i] !== ',') return false
        i++
      }
    }
    if (c === '"') return string()
    const number = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y
    number.lastIndex = i
    if (number.test(text)) {
      i = number.lastIndex
      return true
    }
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length
        return true
      }
    }
    return false
  }
  if (!value()) return i
  skipSpace()
  return i
}

function badValue(file: string, key: string, shown: unknown, expected: string): UsageError {
  return new UsageError('PETREL_ERR_CLI_BAD_VALUE', `bad value for "${key}" in ${file}: ${show(shown)}; expected ${expected}`)
}

/** A value the spec accepts; `false` for a boolean turned off, which the caller leaves out. */
function convert(file: string, key: string, spec: FlagSpec, value: unknown): FlagValue | false {
  const bad = (expected: string, shown: unknown = value): UsageError => badValue(file, key, shown, expected)
  switch (spec.type) {
    case 'integer': {
      // The same numbers the command line takes (/^\d+$/): no sign, no fraction, no quotes.
      if (typeof value === 'string' && /^\d+$/.test(value)) throw bad(`a whole number without quotes: ${value}`)
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw bad('a whole number')
      return inRange(spec, value, '', bad)
    }
    case 'duration': {
      // A number means seconds, as a bare number does on the command line: 5 and "5" are both
      // five seconds, 0.25 is 250 ms.
      let ms: number | null = null
      if (typeof value === 'string') ms = parseDurationMs(value)
      else if (typeof value === 'number' && Number.isFinite(value) && value >= 0) ms = Math.round(value * 1000)
      if (ms === null) throw bad('a number of seconds or a duration string such as "500ms", "5s" or "1m"')
      if (ms > MAX_DURATION_MS) throw bad(MAX_DURATION_TEXT)
      return inRange(spec, ms, 'ms', bad)
    }
    case 'boolean':
      if (typeof value !== 'boolean') throw bad(value === 'true' || value === 'false' ? `${value} without quotes` : 'true or false')
      return value
    case 'string':
      if (spec.wholeNumber === true && typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return String(value)
      if (typeof value !== 'string' || value === '') throw bad(spec.wholeNumber === true ? 'a whole number or a non-empty string' : 'a non-empty string')
      return value
    case 'list': {
      if (!Array.isArray(value)) throw bad(typeof value === 'string' ? `an array of strings: [${show(value)}]` : 'an array of non-empty strings')
      const items: string[] = []
      for (const [index, item] of value.entries()) {
        if (typeof item !== 'string' || item === '') throw bad(`a non-empty string at index ${index}`, item)
        items.push(item)
      }
      return items
    }
  }
}

function inRange(spec: Pick<FlagSpec, 'min' | 'max'>, value: number, unit: string, bad: (expected: string) => UsageError): number {
  if (spec.min !== undefined && value < spec.min) throw bad(`at least ${spec.min}${unit}`)
  if (spec.max !== undefined && value > spec.max) throw bad(`at most ${spec.max}${unit}`)
  return value
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 40 ? `${text.slice(0, 37)}...` : text
}

function describeJson(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return `a ${typeof value}`
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1)
}

/**
 * The known key a mistyped one most likely meant: its short flag ("p" → "port"), the same name in
 * another spelling ("maxBodyBytes", "--port"), a prefix ("max-body"), or a few edits away.
 */
function closestKey(key: string, known: readonly string[], specs: readonly FlagSpec[]): string | undefined {
  const bare = key.replace(/^-+/, '')
  const short = specs.find((s) => s.short === bare)
  if (short !== undefined) return short.name
  const normalize = (s: string) =>
    s
      .replace(/^-+/, '')
      .toLowerCase()
      .replace(/[-_\s]/g, '')
  const wanted = normalize(key)
  const threshold = Math.max(2, Math.floor(wanted.length / 3))
  let best: string | undefined
  let bestDistance = Infinity
  for (const name of known) {
    const candidate = normalize(name)
    const distance = editDistance(wanted, candidate)
    const prefix = wanted.length >= 3 && (candidate.startsWith(wanted) || wanted.startsWith(candidate))
    if ((distance <= threshold || prefix) && distance < bestDistance) {
      best = name
      bestDistance = distance
    }
  }
  return best
}

/** Levenshtein distance with adjacent transpositions counted as one edit ("prot" → "port"). */
function editDistance(a: string, b: string): number {
  // rows[i][j] is the distance between the first i characters of a and the first j of b; the
  // loops fill row i left to right after row i - 1, so every cell read below is already set.
  const rows: number[][] = []
  for (let i = 0; i <= a.length; i++) {
    rows.push([i])
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        rows[0]![j] = j
        continue
      }
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, rows[i - 2]![j - 2]! + 1)
      rows[i]![j] = d
    }
  }
  return rows[a.length]![b.length]!
}
