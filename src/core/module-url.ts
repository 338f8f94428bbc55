/**
 * The URL of a module that Petrel starts in another thread or process (a worker's main, a thread
 * pool's task file), named beside the module that starts it.
 *
 * The repo runs its TypeScript sources directly, so these URLs name `.ts` files. An installed
 * package runs the JavaScript that `npm run build` writes to dist/ instead (Node refuses to strip
 * types under node_modules), and tsc rewrites the extensions of import specifiers only: a URL
 * built from a string would still name a `.ts` file, which dist/ does not have. A module running
 * from a `.js` file is a built one, so its siblings are `.js` files too.
 */
export function moduleUrl(relativeTsPath: string, importerUrl: string): URL {
  const url = new URL(relativeTsPath, importerUrl)
  if (importerUrl.endsWith('.js') && url.pathname.endsWith('.ts')) url.pathname = `${url.pathname.slice(0, -'.ts'.length)}.js`
  return url
}
