// Builds the dashboard into dist/ (or the folder given): one script and one
// stylesheet under assets/, named by their content hash, and index.html
// that loads them. No inline script or style, so the strict CSP holds.
// node build.mjs [outdir]
import { build } from 'esbuild'
import { createHash } from 'node:crypto'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const dir = fileURLToPath(new URL('.', import.meta.url))
const out = process.argv[2] || `${dir}dist`

const result = await build({
  entryPoints: [`${dir}src/main.js`],
  outdir: 'out',
  bundle: true,
  minify: true,
  write: false,
  format: 'esm',
  target: 'es2020',
  legalComments: 'none',
  charset: 'utf8',
  logLevel: 'warning',
})
rmSync(out, { recursive: true, force: true })
mkdirSync(`${out}/assets`, { recursive: true })
const names = {}
for (const f of result.outputFiles) {
  const ext = f.path.endsWith('.css') ? 'css' : 'js'
  const name = `app.${createHash('sha256').update(f.contents).digest('hex').slice(0, 12)}.${ext}`
  writeFileSync(`${out}/assets/${name}`, f.contents)
  names[ext] = name
}
writeFileSync(`${out}/index.html`, `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Crumbs</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/${names.css}">
<script type="module" src="/assets/${names.js}"></script>
</head>
<body>
<noscript>The Crumbs dashboard needs JavaScript.</noscript>
<div id="root"></div>
</body>
</html>
`)
