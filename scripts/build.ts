// Builds dist/, the JavaScript and type declarations an installed package runs and imports
// (`npm run build`; npm runs it as `prepack` before packing). The repo itself
// never uses dist/: it runs the TypeScript sources directly. Node refuses to strip types under
// node_modules, so an installed package cannot.
import { execFileSync } from 'node:child_process'
import { cpSync, rmSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const source = path.join(root, 'src')
const output = path.join(root, 'dist')

// A module removed from src/ must not live on in dist/ from an earlier build.
rmSync(output, { recursive: true, force: true })

// The compiler of the devDependency, run by this Node: no shell and no PATH lookup.
const typescriptPackage = createRequire(import.meta.url).resolve('typescript/package.json')
const tsc = path.join(path.dirname(typescriptPackage), 'bin', 'tsc')
execFileSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' })

// Files the code reads beside itself at run time (the dashboard's assets, the CGI spawner's plain
// JavaScript main) go where the built modules will look for them: every file of src/ that is not
// TypeScript, at the same place under dist/.
cpSync(source, output, { recursive: true, filter: (file) => statSync(file).isDirectory() || !file.endsWith('.ts') })
