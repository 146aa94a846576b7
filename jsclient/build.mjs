// Builds the script-tag library: node build.mjs [outfile] (default dist/crumbs.js).
// esbuild bundles; terser then compresses the bundle a little harder than
// esbuild does (three passes, arrow functions), which the gzip budget
// (scripts/size.mjs) needs.
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
const text = bundle.outputFiles[0].text
// unsafe_arrows turns function expressions that use no `this` into arrow
// functions, which differ only in having no prototype, arguments or
// new.target: the sources use none of them, and this check keeps it so.
if (/\barguments\b|\bnew\.target\b|\.prototype\b/.test(text)) throw new Error('unsafe_arrows needs a bundle without arguments, new.target and prototype')
const { code } = await minify(text, {
  ecma: 2021,
  compress: { passes: 3, unsafe_arrows: true },
  format: { ascii_only: false },
})
writeFileSync(outfile, code)
