// Prints the gzipped size of dist/crumbs.js and fails over the budget of about 2.7 KB.
// The server's Go gzip (what browsers get) comes out a few bytes larger: TestGzip
// checks that one against the same budget.
import { readFileSync } from 'node:fs'
import { gzipSync } from 'node:zlib'

const BUDGET = 2750
const file = new URL('../dist/crumbs.js', import.meta.url)
const src = readFileSync(file)
const size = gzipSync(src, { level: 9 }).length
console.log(`dist/crumbs.js: ${src.length} bytes, ${size} bytes gzipped (budget ${BUDGET})`)
if (size > BUDGET) {
  console.error(`over budget by ${size - BUDGET} bytes`)
  process.exit(1)
}
