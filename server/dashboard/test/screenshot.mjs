// Makes the README's screenshot of the overview from a seeded data set and
// prints how long the overview took to show its figures:
//   node test/screenshot.mjs [events] [out.png]
// (defaults: 200000 events, ../docs/dashboard-overview.png). Uses CRUMBS_BIN
// and CRUMBS_SEED_BIN when set, else builds both.
//
// With CRUMBS_SEEDED_EMAIL (and CRUMBS_DATABASE_URL) it measures a database
// seeded before, e.g. the 10M-event one of server/cmd/bench, as it is: that
// owner's password is reset for the run (`crumbs admin reset-password`), no
// seeding, and the screenshot is written only when out.png is given.
//   CRUMBS_DATABASE_URL=mysql://root@127.0.0.1:3306/crumbs_seed CRUMBS_SEEDED_EMAIL=seed@example.com node test/screenshot.mjs
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CrumbsServer, freePort, launchBrowser, root, serverBinary } from './harness.mjs'

const seeded = process.env.CRUMBS_SEEDED_EMAIL
let events = Number(process.argv[2] || 200000)
const out = process.argv[3] || (seeded ? null : join(root, 'server/docs/dashboard-overview.png'))
const work = mkdtempSync(join(tmpdir(), 'crumbs-dashboard-shot-'))
const bin = serverBinary(work)
const db = process.env.CRUMBS_DATABASE_URL || `sqlite:${join(work, 'crumbs.db')}`
const crumbs = new CrumbsServer(bin, await freePort(), db)
if (seeded) {
  crumbs.admin = { email: seeded, password: `Paint-${Math.random().toString(36).slice(2)}-Password1` }
  execFileSync(bin, ['admin', 'reset-password', '--email', seeded], {
    env: { ...crumbs.env, CRUMBS_ADMIN_PASSWORD: crumbs.admin.password },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
} else {
  let seed = process.env.CRUMBS_SEED_BIN
  if (!seed) {
    seed = join(work, 'seed')
    execFileSync('go', ['build', '-o', seed, './server/cmd/seed'], { cwd: root, stdio: 'inherit' })
  }
  crumbs.createAdmin('seed@example.com')
  execFileSync(seed, ['-database-url', db, '-events', String(events), '-devices', String(Math.max(1000, events / 20)), '-leads', '300', '-days', '60', '-owner', 'seed@example.com'], { stdio: 'inherit' })
}
await crumbs.start()
{
  const { apps } = await crumbs.gql('{ apps { id } }')
  if (seeded) {
    const d = await crumbs.gql('query($a: ID!, $r: RangeInput!) { overview(appId: $a, range: $r) { totalEvents } }', { a: apps[0].id, r: { from: new Date(Date.now() - 3 * 365 * 86400000).toISOString(), to: new Date().toISOString(), interval: 'month' } })
    events = d.overview.totalEvents
  }
  const to = new Date(Math.ceil(Date.now() / 60000) * 60000)
  const r = { from: new Date(to - 30 * 86400000).toISOString(), to: to.toISOString(), interval: 'day' }
  for (let i = 0; i < 3; i++) {
    const t0 = Date.now()
    await crumbs.gql('query($a: ID!, $r: RangeInput!) { overview(appId: $a, range: $r) { totalEvents uniqueDevices identifiedLeads newLeads series { count } definitions { count uniqueDevices series { count } } } }', { a: apps[0].id, r })
    console.log(`API overview of the last 30 days (${events} events${seeded ? '' : ' in 60 days'}): ${Date.now() - t0} ms`)
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
  if (out) {
    await page.waitForTimeout(300)
    await page.screenshot({ path: out })
    console.log(`wrote ${out}`)
  }
} finally {
  await close()
  await crumbs.stop()
  rmSync(work, { recursive: true, force: true })
}
