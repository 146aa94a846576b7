// End-to-end: the real @stacksee/analytics (the version pinned in
// package.json) in Debian's headless Chromium, configured with the Crumbs
// client provider beside a recording provider, against the real Crumbs
// server; events are read back through GraphQL.
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { CrumbsServer, counts, freePort, launchBrowser, serverBinary, sleep, until } from '../e2e/harness.mjs'
import { project } from './app.mjs'

let dir, server, browser, app, bundle

// The page's script: the library with two providers, as an app configures it.
const PAGE_JS = `
import { createClientAnalytics } from '@stacksee/analytics/client'
import { CrumbsClientProvider } from 'crumbs-jsclient/stacksee'

// A second provider that records what the library hands it.
class RecordingProvider {
  name = 'Recording'
  calls = []
  initialize() {}
  identify(userId, traits) { this.calls.push(['identify', userId, traits]) }
  track(event) { this.calls.push(['track', event.action, event.properties]) }
  pageView(properties) { this.calls.push(['pageView', properties]) }
  reset() { this.calls.push(['reset']) }
}

const refusals = []
const crumbs = new CrumbsClientProvider({ ...window.CRUMBS, onError: (r) => refusals.push(r) })
const recording = new RecordingProvider()
window.analytics = createClientAnalytics({ providers: [crumbs, recording] })
Object.assign(window, { crumbsProvider: crumbs, recording, refusals })
`

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crumbs-stacksee-e2e-'))
  server = new CrumbsServer(serverBinary(dir), await freePort(), join(dir, 'crumbs.db'))
  server.createAdmin()
  await server.start()
  browser = await launchBrowser()
  app = project()
  app.write('page.js', PAGE_JS)
  bundle = await app.bundle('page.js')
})

after(async () => {
  await browser?.close()
  await server?.stop()
  app?.close()
  rmSync(dir, { recursive: true, force: true })
})

// A site on its own origin that serves the bundle and pages that load it with this config.
async function site(t, config) {
  const http = createServer((req, res) => {
    if (req.url == '/page.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript' })
      return res.end(bundle)
    }
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
    res.end(`<!doctype html><html><head><meta charset="utf-8"><title>Shop</title>
<script>window.CRUMBS = ${JSON.stringify(config)}</script>
<script type="module" src="/page.js"></script></head><body>shop</body></html>`)
  })
  const port = await freePort()
  await new Promise((r) => http.listen(port, '127.0.0.1', r))
  t.after(() => new Promise((r) => (http.close(r), http.closeAllConnections())))
  return `http://127.0.0.1:${port}`
}

// Waits until the timeline has at least these counts, then a little longer,
// and checks that each arrived exactly once.
async function expectCounts(events, want, what) {
  await until(async () => {
    const c = counts(await events())
    return Object.entries(want).every(([k, n]) => (c[k] || 0) >= n) && c
  }, 20000, what)
  await sleep(1500)
  const got = counts(await events())
  assert.deepEqual(got, want, what)
}

test('page views, tracks and an identify arrive once; the lead keeps the anonymous history; refusals reach onError', async (t) => {
  const appId = await server.createApp()
  await server.defineEvent(appId, 'order_completed')
  await server.defineEvent(appId, 'old_thing', false)
  const url = await site(t, { appId, endpoint: server.url, allowAutomation: true, debug: true })
  const page = await browser.context.newPage()
  t.after(() => page.close())
  const console_ = []
  page.on('console', (m) => console_.push(m.text()))
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))

  await page.goto(`${url}/`)
  await page.waitForFunction(() => window.analytics)
  // Anonymous: two page views (one after a single-page-app navigation) and tracks.
  await page.evaluate(async () => {
    analytics.pageView()
    await analytics.track('Order Completed', { amount: 42, currency: 'EUR' })
    await analytics.track('Never Defined!', {})
    await analytics.track('Old thing', {})
    history.pushState({}, '', '/checkout?step=2')
    analytics.pageView({ step: 2 })
  })
  const device = await page.evaluate(() => crumbsProvider.deviceId())
  assert.match(device, /^\d{16,}$/)
  const events = async () => (await server.device(appId, device)).events
  await expectCounts(events, { view: 2, order_completed: 1 }, 'anonymous events')

  await page.evaluate(async () => {
    analytics.identify('user-7', { email: 'ada@example.com', name: 'Ada', plan: 'pro' })
    await analytics.track('Order Completed', { amount: 7 })
  })
  await expectCounts(events, { view: 2, order_completed: 2 }, 'events after identify')
  const { lead, events: timeline } = await server.device(appId, device)
  assert.equal(lead?.email, 'ada@example.com')
  const first = timeline.find((e) => e.code == 'order_completed')
  assert.deepEqual(JSON.parse(JSON.stringify(first.properties)), { amount: 42, currency: 'EUR' })
  assert.equal(first.source, 'js')
  const views = timeline.filter((e) => e.code == 'view')
  assert.deepEqual(views.map((e) => new URL(e.url).pathname + new URL(e.url).search), ['/', '/checkout?step=2'])
  assert.equal(views[1].referrer, `${url}/`)
  assert.deepEqual(views[1].properties, { step: 2 })

  // The lead's timeline holds the anonymous history from before identify.
  const leadTimeline = await server.leadTimeline(lead.id)
  assert.equal(leadTimeline.email, 'ada@example.com')
  assert.deepEqual(counts(leadTimeline.events), { view: 2, order_completed: 2 })
  const leadData = await server.gql('query($id: ID!) { lead(id: $id) { name fields } }', { id: lead.id })
  assert.equal(leadData.lead.name, 'Ada')
  assert.deepEqual(leadData.lead.fields, { plan: 'pro', userId: 'user-7' })

  // Refusals came through onError, not as exceptions into the page.
  await until(() => page.evaluate(() => refusals.length >= 2 && refusals), 10000, 'refusals')
  const refusals = await page.evaluate(() => refusals)
  assert.deepEqual(
    refusals.map((r) => [r.code, r.eventCode]).sort(),
    [['EVENT_DISABLED', 'old_thing'], ['UNKNOWN_EVENT_CODE', 'never_defined']],
  )
  assert.ok(console_.some((l) => /refused/.test(l) && /UNKNOWN_EVENT_CODE/.test(l)), 'debug output names the refusal')
  assert.deepEqual(pageErrors, [])

  // The recording provider beside it saw the same calls.
  const calls = await page.evaluate(() => recording.calls)
  assert.deepEqual(calls.map((c) => c[0] + (c[0] == 'track' ? ':' + c[1] : '')), [
    'pageView',
    'track:Order Completed',
    'track:Never Defined!',
    'track:Old thing',
    'pageView',
    'identify',
    'track:Order Completed',
  ])
})

test('reset starts a new anonymous device; what was queued stays with the old one', async (t) => {
  const appId = await server.createApp()
  await server.defineEvent(appId, 'logout')
  const url = await site(t, { appId, endpoint: `${server.url}/graphql`, allowAutomation: true })
  const page = await browser.context.newPage()
  t.after(() => page.close())
  await page.goto(`${url}/`)
  await page.waitForFunction(() => window.analytics)
  await page.evaluate(() => analytics.identify('u-1', { email: 'bob@example.com' }))
  const before = await page.evaluate(() => crumbsProvider.deviceId())
  // Logout: the reset follows the track at once, while the event still waits in the queue.
  await page.evaluate(async () => {
    await analytics.track('logout', {})
    analytics.reset()
    analytics.pageView()
  })
  const afterReset = await page.evaluate(() => crumbsProvider.deviceId())
  assert.notEqual(afterReset, before)
  await expectCounts(async () => (await server.device(appId, before)).events, { logout: 1 }, 'old device')
  await expectCounts(async () => (await server.device(appId, afterReset)).events, { view: 1 }, 'new device')
  assert.equal((await server.device(appId, before)).lead?.email, 'bob@example.com')
  assert.equal((await server.device(appId, afterReset)).lead, null)
  // Another page load keeps the new device id.
  await page.reload()
  await page.waitForFunction(() => window.analytics)
  assert.equal(await page.evaluate(() => crumbsProvider.deviceId()), afterReset)
})

test('identify without an email is reported, not thrown', async (t) => {
  const appId = await server.createApp()
  const url = await site(t, { appId, endpoint: `${server.url}/graphql`, allowAutomation: true })
  const page = await browser.context.newPage()
  t.after(() => page.close())
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(`${url}/`)
  await page.waitForFunction(() => window.analytics)
  await page.evaluate(() => analytics.identify('user-without-email', { plan: 'free' }))
  assert.deepEqual(await page.evaluate(() => refusals.map((r) => r.code)), ['BAD_USER_INPUT'])
  assert.deepEqual(pageErrors, [])
})

test('flush resolves once the server has answered; flush(true) and pageLeave send at once with keepalive', async (t) => {
  const appId = await server.createApp()
  await server.defineEvent(appId, 'order_completed')
  const url = await site(t, { appId, endpoint: server.url, allowAutomation: true })
  const page = await browser.context.newPage()
  t.after(() => page.isClosed() || page.close())
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(`${url}/`)
  await page.waitForFunction(() => window.analytics)
  // Records the requests that the library makes (it calls the global fetch).
  await page.evaluate(() => {
    const f = fetch
    window.sent = []
    window.fetch = (u, o) => (sent.push({ url: String(u), keepalive: o.keepalive, events: JSON.parse(o.body).events }), f(u, o))
  })
  const device = await page.evaluate(() => crumbsProvider.deviceId())
  const events = async () => (await server.device(appId, device)).events

  // flush: sent at once instead of after the batch window, and stored (or
  // refused, which onError has heard of) by the time it resolves.
  const flushed = await page.evaluate(async () => {
    await analytics.track('Order Completed', { n: 1 })
    await analytics.track('Never Defined', {})
    await analytics.flush()
    return { requests: sent.length, refusals: refusals.map((r) => [r.code, r.eventCode]) }
  })
  assert.deepEqual(flushed, { requests: 1, refusals: [['UNKNOWN_EVENT_CODE', 'never_defined']] })
  assert.deepEqual(counts(await events()), { order_completed: 1 }, 'stored before flush resolved')

  // flush(true) and pageLeave: the request goes out before they return, with keepalive.
  const atOnce = await page.evaluate(async () => {
    const out = []
    for (const [n, leave] of [[2, () => analytics.flush(true)], [3, () => analytics.pageLeave({ duration: 5 })]]) {
      sent.length = 0
      await analytics.track('Order Completed', { n })
      leave()
      out.push(sent.map((r) => [new URL(r.url).pathname, r.keepalive, r.events.map((e) => [e.code, e.properties.n])]))
    }
    return out
  })
  // What was sent with keepalive stays queued until an answer comes, so
  // pageLeave sends the event of flush(true) again, with its message id.
  const path = `/api/v1/apps/${appId}/events`
  assert.deepEqual(atOnce, [
    [[path, true, [['order_completed', 2]]]],
    [[path, true, [['order_completed', 2], ['order_completed', 3]]]],
  ])
  // The page is gone at once: what pageLeave sent arrives, each event once
  // (the queue sent them again, which the server stored once), and no
  // page-leave event was made.
  await page.close()
  await expectCounts(events, { order_completed: 3 }, 'events after flush(true) and pageLeave')
  assert.deepEqual((await events()).map((e) => e.properties.n), [1, 2, 3])
  assert.deepEqual(pageErrors, [])
})
