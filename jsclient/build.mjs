// Builds the script-tag library: node build.mjs [outfile] (default dist/crumbs.js).
import { build } from 'esbuild'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const outfile = process.argv[2] || `${dir}dist/crumbs.js`

await build({
  entryPoints: [`${dir}src/browser.js`],
  outfile,
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  legalComments: 'none',
  charset: 'utf8',
  // Leaves out the hooks that only the ES module can use (src/queue.js).
  define: { 'globalThis.CRUMBS_TAG': 'true' },
  logLevel: 'warning',
})
