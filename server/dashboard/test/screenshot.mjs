// Makes the README's screenshot of the overview from a seeded data set and
// prints how long the overview took to show its figures:
//   node test/screenshot.mjs [events] [out.png]
// (defaults: 200000 events, ../docs/dashboard-overview.png). Uses CRUMBS_BIN
// and CRUMBS_SEED_BIN when set, else builds both.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CrumbsServer, freePort, launchBrowser, root, serverBinary } from './harness.mjs'

const events = Number(process.argv[2] || 200000)
const out = process.argv[3] || join(root, 'server/docs/dashboard-overview.png')
const work = mkdtempSync(join(tmpdir(), 'crumbs-dashboard-shot-'))
const bin = serverBinary(work)
let seed = process.env.CRUMBS_SEED_BIN
if (!seed) {
  seed = join(work, 'seed')
  execFileSync('go', ['build', '-o', seed, './server/cmd/seed'], { cwd: root, stdio: 'inherit' })
}
const db = process.env.CRUMBS_DATABASE_URL || `sqlite:${join(work, 'crumbs.db')}`
const crumbs = new CrumbsServer(bin, await freePort(), db)
crumbs.createAdmin('seed@example.com')
execFileSync(seed, ['-database-url', db, '-events', String(events), '-devices', String(Math.max(1000, events / 20)), '-leads', '300', '-days', '60', '-owner', 'seed@example.com'], { stdio: 'inherit' })
await crumbs.start()
{
  const { apps } = await crumbs.gql('{ apps { id } }')
  const to = new Date(Math.ceil(Date.now() / 60000) * 60000)
  const r = { from: new Date(to - 30 * 86400000).toISOString(), to: to.toISOString(), interval: 'day' }
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now()
    await crumbs.gql('query($a: ID!, $r: RangeInput!) { overview(appId: $a, range: $r) { totalEvents uniqueDevices identifiedLeads newLeads series { count } definitions { count uniqueDevices series { count } } } }', { a: apps[0].id, r })
    console.log(`API overview of the last 30 days (${events} events in 60 days): ${Date.now() - t0} ms`)
  }
}
const { context, close } = await launchBrowser()
try {
  const page = await context.newPage()
  await page.goto(`${crumbs.url}/signin`)
  await page.fill('#email', crumbs.admin.email)
  await page.fill('#password', crumbs.admin.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await page.waitForURL(/\/apps\/[^/]+$/)
  await page.locator('.chart canvas').waitFor()
  const url = page.url()
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now()
    await page.goto(url)
    await page.locator('.chart canvas').waitFor()
    console.log(`overview of ${events} events: figures and chart shown ${Date.now() - t0} ms after navigation (reload, sign-in refresh included)`)
  }
  await page.waitForTimeout(300)
  await page.screenshot({ path: out })
  console.log(`wrote ${out}`)
} finally {
  await close()
  await crumbs.stop()
  rmSync(work, { recursive: true, force: true })
}
