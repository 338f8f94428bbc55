// Petrel's version, from package.json: for --version, SERVER_SOFTWARE and the like.

import { readFileSync } from 'node:fs'

export const PETREL_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
