// Builds the script-tag library: node build.mjs [outfile] (default dist/crumbs.js).
// esbuild bundles; terser then compresses the bundle a little harder than
// esbuild does (three passes), which the gzip budget (scripts/size.mjs) needs.
import { build } from 'esbuild'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { minify } from 'terser'

const dir = fileURLToPath(new URL('.', import.meta.url))
const outfile = process.argv[2] || `${dir}dist/crumbs.js`

const bundle = await build({
  entryPoints: [`${dir}src/browser.js`],
  bundle: true,
  minify: true,
  format: 'iife',
  // ES2021 (||=): Chrome 85, Firefox 79, Safari 14, all from 2020.
  target: 'es2021',
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
  // Leaves out what only the ES module can use (see ES in src/config.js).
  define: { 'globalThis.CRUMBS_TAG': 'true' },
  write: false,
})
const { code } = await minify(bundle.outputFiles[0].text, {
  ecma: 2021,
  compress: { passes: 3 },
  format: { ascii_only: false },
})
writeFileSync(outfile, code)
