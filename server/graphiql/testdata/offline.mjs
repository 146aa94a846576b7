// Opens GraphiQL in Debian's Chromium with every request that does not go to
// a loopback address refused, runs the stored query with the stored headers,
// and prints what happened as JSON: the answer GraphiQL shows, the requests
// that were refused, and the page's errors (CSP violations included).
//
// Environment: GRAPHIQL_URL, GRAPHIQL_QUERY, GRAPHIQL_HEADERS, EXPECT (text the
// answer must contain), JSCLIENT_DIR (whose node_modules has playwright-core).
import { createRequire } from 'node:module'
import { join } from 'node:path'

const require = createRequire(join(process.env.JSCLIENT_DIR, 'package.json'))
const { chromium } = require('playwright-core')

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
})
const result = { answer: '', blocked: [], errors: [] }
try {
  const context = await browser.newContext()
  const loopback = (host) => host === 'localhost' || host === '[::1]' || /^127\./.test(host)
  await context.route('**/*', (route) => {
    const url = new URL(route.request().url())
    if (url.protocol === 'data:' || loopback(url.hostname)) return route.continue()
    result.blocked.push(url.href)
    return route.abort('internetdisconnected')
  })
  await context.addInitScript(([query, headers]) => {
    if (!sessionStorage.getItem('seeded')) {
      localStorage.setItem('crumbs:graphiql:query', query)
      localStorage.setItem('crumbs:graphiql:headers', headers)
      sessionStorage.setItem('seeded', '1')
    }
  }, [process.env.GRAPHIQL_QUERY, process.env.GRAPHIQL_HEADERS])
  const page = await context.newPage()
  page.on('pageerror', (e) => result.errors.push(`pageerror: ${e.message}`))
  page.on('console', (m) => { if (m.type() === 'error') result.errors.push(`console: ${m.text()}`) })
  page.on('response', async (r) => { if (r.status() >= 400) result.errors.push(`response ${r.status()} ${r.url()}: ${(await r.text()).slice(0, 300)} for ${(r.request().postData() || '').slice(0, 200)}`) })
  await page.goto(process.env.GRAPHIQL_URL)
  const run = page.locator('.graphiql-execute-button')
  await run.waitFor({ state: 'visible', timeout: 60000 })
  await run.click()
  const answer = page.locator('.graphiql-response')
  await answer.filter({ hasText: process.env.EXPECT }).waitFor({ timeout: 60000 })
  result.answer = await answer.innerText()
} catch (e) {
  result.errors.push(`test: ${e.message}`)
} finally {
  await browser.close()
}
console.log(JSON.stringify(result))
