// End-to-end: the built library in Debian's headless Chromium against the
// real Crumbs server (CRUMBS_BIN, or built from the repository).
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { CrumbsServer, counts, dist, freePort, launchBrowser, serverBinary, sleep, startSite, until } from './harness.mjs'

let dir, server, browser

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crumbs-e2e-'))
  server = new CrumbsServer(serverBinary(dir), await freePort(), join(dir, 'crumbs.db'))
  server.createAdmin()
  await server.start()
  browser = await launchBrowser()
})

after(async () => {
  await browser?.close()
  await server?.stop()
  rmSync(dir, { recursive: true, force: true })
})

// A fresh site (its own origin, so its own storage), app and page.
async function setup(t, { defs = [], disabled = [] } = {}) {
  const site = await startSite()
  t.after(() => site.close())
  const appId = await server.createApp()
  for (const code of defs) await server.defineEvent(appId, code)
  for (const code of disabled) await server.defineEvent(appId, code, false)
  const page = await browser.context.newPage()
  const consoleLines = []
  const requests = []
  page.on('console', (m) => consoleLines.push(m.text()))
  page.on('request', (r) => r.url().includes('/api/v1/') && requests.push(r.postData() || ''))
  t.after(() => page.close())
  // The /graphql endpoint of earlier versions: the library derives the JSON API from it.
  const attrs = (extra = {}) => ({
    'app-id': appId,
    endpoint: `${server.url}/graphql`,
    'allow-automation': true,
    debug: true,
    ...extra,
  })
  const deviceId = () => page.evaluate(() => crumbs('deviceId'))
  const events = async () => (await server.device(appId, await deviceId())).events
  return { site, appId, page, attrs, deviceId, events, consoleLines, requests }
}

// How many items of the app wait in the page's storage queue.
const queued = (page, appId) => page.evaluate((p) => Object.keys(localStorage).filter((k) => k.startsWith(p)).length, `crumbs_${appId}_q`)

// Waits until the device's timeline has exactly these counts, then a little
// longer to be sure that nothing arrives twice.
async function expectCounts(events, want, what) {
  await until(async () => {
    const c = counts(await events())
    return Object.entries(want).every(([k, n]) => (c[k] || 0) >= n) && c
  }, 20000, what)
  await sleep(1500)
  const got = counts(await events())
  for (const [k, n] of Object.entries(want)) assert.equal(got[k] || 0, n, `${what}: ${k} in ${JSON.stringify(got)}`)
  return got
}

test('page views, including single-page-app navigations', async (t) => {
  const { site, page, attrs, events } = await setup(t)
  const url = site.add('/spa', { title: 'Home', attrs: attrs() })
  await page.goto(url)
  await page.evaluate(() => crumbs('deviceId'))
  await page.evaluate(() => history.pushState({}, '', '/spa/pricing'))
  await page.evaluate(() => history.replaceState({}, '', '/spa/pricing')) // same URL: no view
  await page.evaluate(() => history.pushState({}, '', '/spa/pricing#faq')) // fragment only: no view
  await page.evaluate(() => history.replaceState({}, '', '/spa/signup?plan=pro'))
  await page.evaluate(() => history.back()) // popstate
  await page.waitForURL(/\/spa\/pricing$/)
  await expectCounts(events, { view: 4 }, 'views')
  const views = await events()
  assert.deepEqual(
    views.map((e) => new URL(e.url).pathname + new URL(e.url).search),
    ['/spa', '/spa/pricing', '/spa/signup?plan=pro', '/spa/pricing'],
  )
  assert.equal(views[1].referrer, url, 'an SPA view refers to the previous page')
  assert.equal(views[0].title, 'Home')
  assert.ok(views.every((e) => e.source == 'js'))
})

test('clicks on links, buttons and data-crumbs-event elements, including ones added later', async (t) => {
  const { site, page, attrs, events } = await setup(t, { defs: ['trial_click'] })
  const next = site.add('/next', { attrs: attrs() })
  site.add('/clicks', {
    attrs: attrs(),
    body: `<button id="buy">Buy now</button>
      <div data-crumbs-event="trial_click" data-crumbs-prop-plan="pro" data-crumbs-source="shortcode">
        <button id="trial">Start trial</button></div>
      <a id="out" href="/next" target="_self">Pricing page</a>
      <script>setTimeout(() => document.body.insertAdjacentHTML('beforeend',
        '<span id="late" data-crumbs-event="trial_click" data-crumbs-prop-plan="late" data-crumbs-source="block">Late</span>'), 100)</script>`,
  })
  await page.goto(`${site.url}/clicks`)
  await page.click('#buy')
  await page.click('#trial')
  await page.click('#late')
  // Navigates away at once: the click goes out by beacon and again from storage on the next page.
  await page.click('#out')
  await page.waitForURL(next)
  await expectCounts(events, { view: 2, click: 2, trial_click: 2 }, 'clicks')
  const evs = await events()
  const clicks = evs.filter((e) => e.code == 'click')
  assert.deepEqual(clicks.map((e) => e.properties.text), ['Buy now', 'Pricing page'])
  assert.equal(clicks[1].properties.url, next)
  assert.equal(clicks[1].properties.target, '_self')
  const trials = evs.filter((e) => e.code == 'trial_click')
  assert.deepEqual(trials.map((e) => [e.properties.plan, e.source]), [['pro', 'shortcode'], ['late', 'block']])
})

test('a click on a link of an inline SVG sends its URL, resolved against the page as an HTML link is', async (t) => {
  // Before, the SVG <a>'s href (an SVGAnimatedString) went as url: {}, which the server refuses.
  const { site, page, attrs, events } = await setup(t)
  const next = site.add('/charts/next', { attrs: attrs() })
  site.add('/charts/svg', {
    attrs: attrs(),
    body: `<svg width="100" height="100"><a href="next" target="_self"><rect id="bar" width="100" height="100"/></a></svg>`,
  })
  await page.goto(`${site.url}/charts/svg`)
  await page.click('#bar')
  await page.waitForURL(next)
  await expectCounts(events, { view: 2, click: 1 }, 'SVG link click')
  const click = (await events()).find((e) => e.code == 'click')
  assert.equal(click.properties.url, next)
  assert.equal(click.properties.target, '_self')
})

test('view and visible triggers fire once per page view, also for elements added later', async (t) => {
  const { site, page, attrs, events } = await setup(t, { defs: ['promo_view', 'pdf_seen', 'late_seen'] })
  site.add('/visible', {
    attrs: attrs(),
    body: `<div data-crumbs-event="promo_view" data-crumbs-on="view">promo</div>
      <div style="height:3000px"></div>
      <div id="pdf" data-crumbs-event="pdf_seen" data-crumbs-on="visible" data-crumbs-prop-file="guide.pdf">PDF</div>
      <div style="height:3000px"></div>
      <script>setTimeout(() => document.body.insertAdjacentHTML('beforeend',
        '<div id="late" data-crumbs-event="late_seen" data-crumbs-on="visible">late</div>'), 100)</script>`,
  })
  await page.goto(`${site.url}/visible`)
  await expectCounts(events, { view: 1, promo_view: 1, pdf_seen: 0 }, 'before scrolling')
  await page.locator('#pdf').scrollIntoViewIfNeeded()
  await page.evaluate(() => scrollTo(0, 0))
  await page.locator('#pdf').scrollIntoViewIfNeeded()
  await page.locator('#late').scrollIntoViewIfNeeded()
  const got = await expectCounts(events, { pdf_seen: 1, late_seen: 1 }, 'after scrolling')
  assert.equal(got.promo_view, 1)
  assert.equal((await events()).find((e) => e.code == 'pdf_seen').properties.file, 'guide.pdf')
  // A new (SPA) page view fires them again.
  await page.evaluate(() => scrollTo(0, 0))
  await page.evaluate(() => history.pushState({}, '', '/visible/2'))
  await expectCounts(events, { view: 2, promo_view: 2, pdf_seen: 1 }, 'after navigation')
})

test('form submit identifies from the email field only; the lead timeline includes earlier events', async (t) => {
  const { site, page, attrs, events, requests, deviceId, appId } = await setup(t)
  site.add('/thanks', { attrs: attrs() })
  site.add('/signup', {
    attrs: attrs({ 'identify-forms': true }),
    body: `<form id="f" action="/thanks" method="post">
      <input type="email" name="email"><input type="password" name="pw"><input name="company">
      <button type="submit">Sign up</button></form>`,
  })
  await page.goto(`${site.url}/signup`)
  await until(async () => counts(await events()).view, 10000, 'first view')
  await page.fill('[name=email]', 'Ada@Example.com')
  await page.fill('[name=pw]', 'hunter2-secret')
  await page.fill('[name=company]', 'Secret Corp')
  await page.click('button[type=submit]')
  await page.waitForURL(`${site.url}/thanks`)
  const id = await deviceId()
  const lead = await until(async () => (await server.device(appId, id)).lead, 15000, 'identify')
  assert.equal(lead.email.toLowerCase(), 'ada@example.com')
  await expectCounts(events, { view: 2, click: 1, submit: 1 }, 'submit')
  const submit = (await events()).find((e) => e.code == 'submit')
  assert.equal(submit.properties.action, '/thanks')
  assert.equal(submit.properties.id, 'f')
  for (const body of requests) assert.ok(!/hunter2|Secret Corp/.test(body), `a request carried another field: ${body}`)
  const timeline = await server.leadTimeline(lead.id)
  assert.deepEqual(counts(timeline.events), { view: 2, click: 1, submit: 1 })
  assert.equal(new URL(timeline.events[0].url).pathname, '/signup', 'the anonymous first view is on the lead timeline')
})

test('events survive a reload while the server is down and arrive exactly once', async (t) => {
  const { site, page, attrs, events, deviceId, appId } = await setup(t, { defs: ['trial_click'] })
  const url = site.add('/down', { attrs: attrs() })
  await page.goto(url)
  await expectCounts(events, { view: 1 }, 'first view')
  const id = await deviceId()
  await server.stop()
  t.after(() => server.proc || server.start())
  await page.evaluate(() => [1, 2, 3].forEach((n) => crumbs('track', 'trial_click', { n })))
  await sleep(1500) // the first attempt fails and a retry is scheduled
  await page.reload() // the beacon fails too; the queue is in storage
  await sleep(1000)
  assert.equal(await deviceId(), id, 'same device after reload')
  assert.equal(await queued(page, appId), 4, 'three events and the new view wait')
  await server.start()
  await expectCounts(events, { view: 2, trial_click: 3 }, 'after the server is back')
  const ns = (await events()).filter((e) => e.code == 'trial_click').map((e) => e.properties.n)
  assert.deepEqual(ns.sort(), [1, 2, 3])
  await page.reload()
  await expectCounts(events, { view: 3, trial_click: 3 }, 'after another reload')
})

test('a disabled or unknown code is refused once, reported in debug mode and not retried', async (t) => {
  const { site, page, attrs, events, requests, consoleLines, appId } = await setup(t, { disabled: ['promo'] })
  site.add('/disabled', { attrs: attrs() })
  await page.goto(`${site.url}/disabled`)
  await expectCounts(events, { view: 1 }, 'view')
  await page.evaluate(() => {
    crumbs('track', 'promo')
    crumbs('track', 'no_such_code')
  })
  await sleep(5000)
  assert.equal(requests.filter((b) => b.includes('"promo"')).length, 1, requests.join('\n'))
  assert.equal(requests.filter((b) => b.includes('"no_such_code"')).length, 1)
  assert.ok(consoleLines.some((l) => l.includes('refused EVENT_DISABLED')), consoleLines.join('\n'))
  assert.ok(consoleLines.some((l) => l.includes('refused UNKNOWN_EVENT_CODE')), consoleLines.join('\n'))
  assert.equal(await queued(page, appId), 0)
  assert.deepEqual(counts(await events()), { view: 1 })
})

test('automation is skipped unless allowed, and debug mode says why', async (t) => {
  const { site, page, attrs, requests, consoleLines } = await setup(t)
  const a = attrs()
  delete a['allow-automation']
  site.add('/bot', { attrs: a })
  await page.goto(`${site.url}/bot`)
  await sleep(1500)
  assert.equal(requests.length, 0)
  assert.ok(consoleLines.some((l) => l.includes('not sent bot')), consoleLines.join('\n'))
})

test('with requireConsent nothing is stored or sent until consent, then the queued events go', async (t) => {
  const { site, page, attrs, requests, events, appId } = await setup(t)
  site.add('/consent', { attrs: attrs({ 'require-consent': true }) })
  await page.goto(`${site.url}/consent`)
  await page.evaluate(() => crumbs('track', 'click', { early: true }))
  await sleep(1500)
  assert.equal(requests.length, 0)
  assert.equal(await page.evaluate(() => localStorage.length + document.cookie.length), 0)
  await page.evaluate(() => crumbs('consent', true))
  await expectCounts(events, { view: 1, click: 1 }, 'after consent')
  assert.ok(await page.evaluate((a) => localStorage[`crumbs_${a}_id`], appId))
})

test('cookieless mode sends but stores nothing', async (t) => {
  const { site, page, attrs, events } = await setup(t)
  site.add('/cookieless', { attrs: attrs({ cookieless: true }) })
  await page.goto(`${site.url}/cookieless`)
  await expectCounts(events, { view: 1 }, 'view')
  await page.evaluate(() => dispatchEvent(new Event('pagehide')))
  assert.equal(await page.evaluate(() => localStorage.length + document.cookie.length), 0)
})

test('with cookieDomain the device id cookie is SameSite=Lax, and Secure in a secure context', async (t) => {
  const { site, page, attrs, deviceId, appId } = await setup(t)
  // Cookies ignore ports: clear this one so later tests on 127.0.0.1 start without it.
  t.after(() => page.context().clearCookies())
  site.add('/cookie', { attrs: attrs({ 'cookie-domain': '127.0.0.1' }) })
  await page.goto(`${site.url}/cookie`)
  const id = await deviceId()
  const cookie = (await page.context().cookies(site.url)).find((c) => c.name == `crumbs_${appId}_id`)
  assert.equal(cookie?.value, id, 'the device id cookie was not stored')
  assert.equal(cookie.sameSite, 'Lax')
  // Browsers count http://127.0.0.1 as a secure context, as they do https pages (the unit
  // tests cover a plain http page, where the cookie must not be Secure).
  assert.equal(await page.evaluate(() => isSecureContext), true)
  assert.equal(cookie.secure, true)
  assert.ok(cookie.expires * 1000 > Date.now() + 300 * 864e5, 'kept for more than 300 days')
})

test('the server serves /crumbs.js, whose default endpoint is that server', async (t) => {
  const res = await fetch(`${server.url}/crumbs.js`)
  assert.equal(res.status, 200, 'GET /crumbs.js (jsclient.Register wired into the server routes?)')
  const immutable = res.headers.get('crumbs-immutable-path')
  assert.match(immutable || '', /^\/crumbs\.[0-9a-f]{12}\.js$/, 'the immutable URL is named in a header')
  const pinned = await fetch(server.url + immutable)
  assert.equal(pinned.status, 200)
  assert.match(pinned.headers.get('cache-control'), /immutable/)
  assert.ok(await res.text() == readFileSync(dist, 'utf8'), 'the served library differs from dist/crumbs.js (server built before the last npm run build?)')
  const { site, page, appId, events } = await setup(t)
  site.add('/served', { src: `${server.url}/crumbs.js`, attrs: { 'app-id': appId, 'allow-automation': true } })
  await page.goto(`${site.url}/served`)
  await expectCounts(events, { view: 1 }, 'view through the default endpoint')
})

for (const locks of [true, false])
  test(`two tabs queueing while the server is down: nothing lost, nothing stored twice once it is up${locks ? '' : ' (no Web Locks)'}`, async (t) => {
  const { site, page, attrs, events, appId, deviceId } = await setup(t, { defs: ['trial_click'] })
  const url = site.add('/tabs', { attrs: attrs() })
  await page.goto(url)
  await expectCounts(events, { view: 1 }, 'first view')
  const other = await browser.context.newPage()
  t.after(() => other.close())
  // Plain http pages and older browsers have no Web Locks: tabs may then send an item twice,
  // which the server stores once (message_id).
  if (!locks) for (const p of [page, other]) await p.addInitScript(() => delete Navigator.prototype.locks)
  if (!locks) await page.reload()
  await other.goto(url)
  assert.equal(await other.evaluate(() => !!navigator.locks), locks)
  assert.equal(await other.evaluate(() => crumbs('deviceId')), await deviceId(), 'one device for the origin')
  await expectCounts(events, { view: locks ? 2 : 3 }, 'second tab view')
  await server.stop()
  t.after(() => server.proc || server.start())
  // Both tabs queue while the server is down, interleaved, as in the bug report
  // (tab A's trial_click vanished when tab B queued a click).
  for (let n = 0; n < 6; n++) await (n % 2 ? other : page).evaluate((n) => crumbs('track', 'trial_click', { n }), n)
  await sleep(2000) // both tabs try, fail and schedule retries
  assert.equal(await queued(page, appId), 6, 'all six wait in storage')
  await other.reload() // one tab reloads while down: its view joins the queue
  await sleep(500)
  assert.equal(await queued(page, appId), 7)
  await server.start()
  const got = await expectCounts(events, { view: locks ? 3 : 4, trial_click: 6 }, 'after the server is back')
  const ns = (await events()).filter((e) => e.code == 'trial_click').map((e) => e.properties.n)
  assert.deepEqual(ns.sort(), [0, 1, 2, 3, 4, 5], JSON.stringify(got))
  await until(async () => (await queued(page, appId)) == 0, 10000, 'empty queue')
})

test('two apps on one origin keep their own device ids and queues; earlier unprefixed keys are taken over', async (t) => {
  const { site, page, attrs, appId, deviceId } = await setup(t)
  const appB = await server.createApp()
  site.add('/old', { attrs: { ...attrs(), 'app-id': 'app_none' } })
  await page.goto(`${site.url}/old`)
  // What an earlier version left: one origin-wide device id and queue.
  await page.evaluate(() => {
    for (const k of Object.keys(localStorage)) delete localStorage[k]
    localStorage.crumbs_id = '4242424242424242'
    localStorage.crumbs_q = JSON.stringify([{ code: 'view', url: location.href, occurredAt: new Date().toISOString(), messageId: 'old-1' }])
  })
  site.add('/a', { attrs: attrs() })
  site.add('/b', { attrs: { ...attrs(), 'app-id': appB } })
  await page.goto(`${site.url}/a`)
  assert.equal(await deviceId(), '4242424242424242', 'the first app takes over the old id')
  const evA = async () => (await server.device(appId, '4242424242424242')).events
  // Its queue (one array, a format of earlier builds) is removed, not sent.
  await expectCounts(evA, { view: 1 }, 'the new view')
  assert.ok(!(await evA()).some((e) => e.url.endsWith('/old')))
  assert.equal(await page.evaluate(() => localStorage.crumbs_id ?? localStorage.crumbs_q ?? 'gone'), 'gone')
  assert.equal(await queued(page, appId), 0)
  await page.goto(`${site.url}/b`)
  const idB = await deviceId()
  assert.notEqual(idB, '4242424242424242', 'another app on the origin gets its own device')
  await expectCounts(async () => (await server.device(appB, idB)).events, { view: 1 }, 'app B view')
})

test('data-crumbs-prop-2fa keeps a name that starts with a digit', async (t) => {
  const { site, page, attrs, events } = await setup(t, { defs: ['login_click'] })
  site.add('/2fa', { attrs: attrs(), body: '<button id="b" data-crumbs-event="login_click" data-crumbs-prop-2fa="on" data-crumbs-prop-plan-name="pro">Log in</button>' })
  await page.goto(`${site.url}/2fa`)
  await page.click('#b')
  await expectCounts(events, { login_click: 1 }, 'click')
  assert.deepEqual((await events()).find((e) => e.code == 'login_click').properties, { '2fa': 'on', planName: 'pro' })
})

test('a single-page-app view takes the title the router sets after pushState', async (t) => {
  const { site, page, attrs, events } = await setup(t)
  site.add('/app', { title: 'Home', attrs: attrs() })
  await page.goto(`${site.url}/app`)
  await expectCounts(events, { view: 1 }, 'first view')
  // A router: pushState first, the new title once its data has loaded.
  await page.evaluate(() => {
    history.pushState({}, '', '/app/pricing')
    setTimeout(() => (document.title = 'Pricing'), 250)
  })
  await expectCounts(events, { view: 2 }, 'pricing view')
  // A router that sets the title at once.
  await page.evaluate(() => {
    history.pushState({}, '', '/app/about')
    document.title = 'About'
  })
  await expectCounts(events, { view: 3 }, 'views')
  const views = await events()
  assert.deepEqual(views.map((e) => [new URL(e.url).pathname, e.title]), [['/app', 'Home'], ['/app/pricing', 'Pricing'], ['/app/about', 'About']])
})

test('the ES module queues track() before init()', async (t) => {
  const { site, page, appId, events } = await setup(t, { defs: ['early_click'] })
  site.raw('/module', `<!doctype html><title>Module</title><script type="module">
    import { init, track, deviceId } from '/src/index.js'
    track('early_click', { when: 'before init' })
    init({ appId: ${JSON.stringify(appId)}, endpoint: ${JSON.stringify(server.url)}, allowAutomation: true })
    window.crumbs = (cmd) => cmd == 'deviceId' && deviceId()
  </script>`)
  await page.goto(`${site.url}/module`)
  await page.waitForFunction(() => window.crumbs)
  await expectCounts(events, { view: 1, early_click: 1 }, 'the early event')
  assert.equal((await events()).find((e) => e.code == 'early_click').properties.when, 'before init')
})

test('the ES module keeps consent() called before init()', async (t) => {
  // Before, consent() before init() was dropped: with requireConsent nothing was ever sent.
  const { site, page, appId, events } = await setup(t)
  site.raw('/module-consent', `<!doctype html><title>Module</title><script type="module">
    import { consent, init, deviceId } from '/src/index.js'
    consent(false)
    consent(true)
    init({ appId: ${JSON.stringify(appId)}, endpoint: ${JSON.stringify(server.url)}, allowAutomation: true, requireConsent: true })
    window.crumbs = (cmd) => cmd == 'deviceId' && deviceId()
  </script>`)
  await page.goto(`${site.url}/module-consent`)
  await page.waitForFunction(() => window.crumbs)
  await expectCounts(events, { view: 1 }, 'the view after early consent')
  assert.ok(await page.evaluate((a) => localStorage[`crumbs_${a}_consent`] && localStorage[`crumbs_${a}_id`], appId), 'consent and id stored')
})

test('bots and headless browsers by user agent are not tracked', async (t) => {
  const { site, page, attrs, requests, consoleLines, events } = await setup(t)
  // This Chromium as a crawler or a plain headless browser would be: no
  // WebDriver flag, and so no allow-automation; only the user agent differs.
  await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'webdriver', { get: () => false }))
  const a = attrs()
  delete a['allow-automation']
  site.add('/crawl', { attrs: a })
  const cdp = await page.context().newCDPSession(page)
  const ua = (userAgent) => cdp.send('Emulation.setUserAgentOverride', { userAgent })
  for (const bot of [
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36',
  ]) {
    await ua(bot)
    await page.goto(`${site.url}/crawl`)
    await sleep(1000)
    assert.equal(requests.length, 0, bot)
  }
  assert.ok(consoleLines.some((l) => l.includes('not sent bot')), consoleLines.join('\n'))
  // The same browser with a person's user agent is tracked.
  await ua('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36')
  await page.goto(`${site.url}/crawl`)
  await expectCounts(events, { view: 1 }, 'a person')
})

test('reset() starts a new device; onError receives refusals', async (t) => {
  const { site, page, appId, events } = await setup(t, { defs: ['trial_click'] })
  site.raw('/reset', `<!doctype html><title>Reset</title><script type="module">
    import { init, track, deviceId, reset } from '/src/index.js'
    window.refusals = []
    init({ appId: ${JSON.stringify(appId)}, endpoint: ${JSON.stringify(server.url)}, allowAutomation: true, onError: (e) => refusals.push(e) })
    window.crumbs = (cmd, ...a) => ({ deviceId, reset, track })[cmd](...a)
  </script>`)
  await page.goto(`${site.url}/reset`)
  await page.waitForFunction(() => window.crumbs)
  const first = await page.evaluate(() => crumbs('deviceId'))
  await page.evaluate(() => {
    crumbs('track', 'trial_click', { who: 'before' })
    crumbs('reset')
    crumbs('track', 'trial_click', { who: 'after' })
    crumbs('track', 'no_such_code')
  })
  const second = await page.evaluate(() => crumbs('deviceId'))
  assert.notEqual(second, first)
  await expectCounts(async () => (await server.device(appId, first)).events, { view: 1, trial_click: 1 }, 'old device')
  await expectCounts(events, { trial_click: 1 }, 'new device')
  assert.equal((await events()).find((e) => e.code == 'trial_click').properties.who, 'after')
  const refusals = await until(() => page.evaluate(() => refusals.length && refusals), 10000, 'onError')
  assert.deepEqual(refusals.map((r) => [r.code, r.eventCode]), [['UNKNOWN_EVENT_CODE', 'no_such_code']])
})

test("the script tag's crumbs('reset') starts a new device whose events are not the identified lead's", async (t) => {
  const { site, page, attrs, appId, deviceId, events } = await setup(t, { defs: ['trial_click'] })
  site.add('/account', { attrs: attrs() })
  await page.goto(`${site.url}/account`)
  const first = await deviceId()
  await page.evaluate(() => crumbs('identify', 'ada@example.com'))
  const lead = await until(async () => (await server.device(appId, first)).lead, 15000, 'identify')
  // Signing out: the last event of the signed-in visitor, then reset.
  await page.evaluate(() => {
    crumbs('track', 'trial_click', { who: 'ada' })
    crumbs('reset')
    crumbs('track', 'trial_click', { who: 'anonymous' })
  })
  const second = await deviceId()
  assert.notEqual(second, first)
  await expectCounts(events, { trial_click: 1 }, 'new device')
  assert.equal((await events()).find((e) => e.code == 'trial_click').properties.who, 'anonymous')
  assert.equal((await server.device(appId, second)).lead, null, 'the new device is anonymous')
  await expectCounts(async () => (await server.device(appId, first)).events, { view: 1, trial_click: 1 }, 'old device')
  const timeline = await server.leadTimeline(lead.id)
  assert.deepEqual(timeline.events.filter((e) => e.code == 'trial_click').map((e) => e.properties.who), ['ada'])
  // The new id is the one kept: the next page is the same new device.
  await page.reload()
  assert.equal(await deviceId(), second)
  await expectCounts(events, { view: 1, trial_click: 1 }, 'after reload')
  assert.equal((await server.device(appId, second)).lead, null)
})

test("the script tag's crumbs('onError', fn) receives final refusals; a fault in fn does not stop delivery", async (t) => {
  const { site, page, attrs, events } = await setup(t, { defs: ['trial_click'] })
  site.add('/errors', { attrs: attrs() })
  await page.goto(`${site.url}/errors`)
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.evaluate(() => {
    window.refusals = []
    crumbs('onError', (e) => {
      refusals.push(e)
      throw new Error('a fault in the site handler')
    })
    crumbs('track', 'no_such_code', { n: 1 })
    crumbs('identify', 'not an email')
  })
  const refusals = await until(() => page.evaluate(() => refusals.length == 2 && refusals), 10000, 'onError')
  assert.deepEqual(refusals.map((r) => [r.code, r.eventCode]), [['UNKNOWN_EVENT_CODE', 'no_such_code'], ['BAD_USER_INPUT', undefined]])
  assert.ok(refusals.every((r) => typeof r.message == 'string' && r.message), JSON.stringify(refusals))
  await until(() => pageErrors.length == 2, 5000, 'the handler faults reach the page')
  await page.evaluate(() => crumbs('track', 'trial_click'))
  await expectCounts(events, { view: 1, trial_click: 1 }, 'delivery goes on')
  // A later call replaces the handler.
  await page.evaluate(() => {
    window.later = []
    crumbs('onError', (e) => later.push(e.eventCode))
    crumbs('track', 'other_code')
  })
  assert.deepEqual(await until(() => page.evaluate(() => later.length && later), 10000, 'the new handler'), ['other_code'])
  assert.equal(await page.evaluate(() => refusals.length), 2)
})

test('the script tag: reset and onError called through the stub before the library loads', async (t) => {
  const { site, page, attrs, appId, deviceId, events, requests } = await setup(t, { defs: ['trial_click'] })
  site.add('/stub', {
    attrs: attrs(),
    head: `<script>window.crumbs=window.crumbs||function(){(crumbs.q=crumbs.q||[]).push(arguments)}
      window.refusals = []
      crumbs('onError', function (e) { refusals.push(e) })
      crumbs('identify', 'grace@example.com')
      crumbs('track', 'trial_click', { who: 'grace' })
      crumbs('reset')
      crumbs('track', 'trial_click', { who: 'anonymous' })
      crumbs('track', 'no_such_code')
      window.queuedBeforeLoad = crumbs.q.length</script>`,
  })
  await page.goto(`${site.url}/stub`)
  assert.equal(await page.evaluate(() => queuedBeforeLoad), 6, 'the calls were queued by the stub')
  const refusals = await until(() => page.evaluate(() => refusals.length && refusals), 10000, 'onError')
  assert.deepEqual(refusals.map((r) => [r.code, r.eventCode]), [['UNKNOWN_EVENT_CODE', 'no_such_code']])
  // The identify and the first click were queued before the reset, with the first device. The
  // stub's calls run before the library queues its page view, so the view (a sign-out's landing
  // page calls reset before the library has loaded) is the new, anonymous device's, as is the
  // click after the reset.
  const identify = await until(() => requests.map((b) => (b ? JSON.parse(b) : {})).find((b) => b.email), 10000, 'identify request')
  const first = identify.device_id
  const second = await deviceId()
  assert.notEqual(second, first)
  const lead = await until(async () => (await server.device(appId, first)).lead, 15000, 'identify')
  assert.equal(lead.email, 'grace@example.com')
  await expectCounts(async () => (await server.device(appId, first)).events, { trial_click: 1 }, 'first device')
  const got = await expectCounts(events, { view: 1, trial_click: 1 }, 'new device')
  assert.deepEqual(got, { view: 1, trial_click: 1 })
  assert.equal((await events()).find((e) => e.code == 'trial_click').properties.who, 'anonymous')
  assert.equal((await server.device(appId, second)).lead, null, 'the new device is anonymous')
  const timeline = await server.leadTimeline(lead.id)
  assert.deepEqual(timeline.events.map((e) => `${e.code}/${e.properties.who}`), ['trial_click/grace'])
})

test('an origin the app does not allow: refused once, reported in debug mode, not retried', async (t) => {
  const { site, page, attrs, appId, requests, consoleLines } = await setup(t)
  await server.gql('mutation($id: ID!) { updateApp(id: $id, input: {allowedOrigins: ["https://shop.example.com"]}) { id } }', { id: appId })
  site.add('/elsewhere', { attrs: attrs() })
  await page.goto(`${site.url}/elsewhere`)
  await until(() => consoleLines.some((l) => l.includes('refused FORBIDDEN')), 10000, `debug output: ${consoleLines.join('\n')}`)
  await sleep(3000)
  assert.equal(requests.length, 1, 'not retried')
  assert.equal(await queued(page, appId), 0)
})

test('a request that never gets an answer is given up after 10 s and sent again: delivery goes on', async (t) => {
  const { site, appId, page, deviceId, events } = await setup(t, { defs: ['trial_click'] })
  // A proxy in front of the server that takes the first POST and never answers it.
  let posts = 0
  const held = []
  const proxy = createServer(async (req, res) => {
    if (req.method == 'POST' && posts++ == 0) return held.push(res)
    const chunks = []
    for await (const c of req) chunks.push(c)
    const up = await fetch(server.url + req.url, { method: req.method, headers: { origin: req.headers.origin, 'content-type': req.headers['content-type'] }, body: req.method == 'POST' ? Buffer.concat(chunks) : undefined })
    const headers = {}
    up.headers.forEach((v, k) => /^(access-control|content-type|retry-after)/.test(k) && (headers[k] = v))
    res.writeHead(up.status, headers).end(Buffer.from(await up.arrayBuffer()))
  })
  const port = await freePort()
  await new Promise((r) => proxy.listen(port, '127.0.0.1', r))
  t.after(() => (held.forEach((r) => r.destroy()), proxy.close()))
  site.add('/hang', { attrs: { 'app-id': appId, endpoint: `http://127.0.0.1:${port}/`, 'allow-automation': true } })
  await page.goto(`${site.url}/hang`)
  await until(() => posts == 1, 5000, 'the first request')
  await page.evaluate(() => crumbs('track', 'trial_click'))
  // Before, the unanswered request held the queue's Web Lock for good: nothing was sent again.
  await expectCounts(events, { view: 1, trial_click: 1 }, 'after the timeout')
  assert.ok(posts >= 2, `${posts} requests`)
  assert.equal(await queued(page, appId), 0)
  assert.ok(await deviceId())
})

test('a url or referrer over the 2048 bytes the server takes is cut, and the view is stored', async (t) => {
  const { site, page, attrs, events, consoleLines } = await setup(t)
  site.add('/long', { attrs: attrs() })
  const long = `${site.url}/long?q=${'a'.repeat(3000)}`
  // The browser sends the whole previous URL as the referrer (up to 4096 bytes).
  site.raw('/from', `<!doctype html><a id="go" href="${long}">go</a>`)
  await page.goto(`${site.url}/from?r=${'b'.repeat(3000)}`)
  await page.click('#go')
  // The next page's library, before its device id is read.
  await page.waitForURL(long)
  await page.waitForFunction(() => window.crumbs)
  const [view] = (await expectCounts(events, { view: 1 }, 'the view'), await events())
  assert.equal(view.url, long.slice(0, 2048))
  assert.equal(view.referrer, `${site.url}/from?r=${'b'.repeat(3000)}`.slice(0, 2048))
  assert.ok(!consoleLines.some((l) => l.includes('refused')), consoleLines.join('\n'))
})

test('properties that are no JSON drop that event alone, and throw nothing into the page, before or after load', async (t) => {
  const { site, page, attrs, events, consoleLines } = await setup(t, { defs: ['trial_click'] })
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  site.add('/cycle', {
    attrs: attrs(),
    body: `<script>window.crumbs=window.crumbs||function(){(crumbs.q=crumbs.q||[]).push(arguments)}
      var o = {}; o.self = o
      crumbs('track', 'trial_click', o)
      crumbs('track', 'trial_click', { n: 1 })</script>`,
  })
  await page.goto(`${site.url}/cycle`)
  // Before, the stub's first call threw: its later calls and the page view were lost.
  await expectCounts(events, { view: 1, trial_click: 1 }, 'the view and the good event')
  const thrown = await page.evaluate(() => {
    try {
      crumbs('track', 'trial_click', { big: 1n })
      crumbs('track', 'trial_click', { n: 2 })
      return null
    } catch (e) {
      return e.message
    }
  })
  assert.equal(thrown, null)
  await expectCounts(events, { view: 1, trial_click: 2 }, 'after load')
  assert.deepEqual((await events()).filter((e) => e.code == 'trial_click').map((e) => e.properties.n), [1, 2])
  assert.deepEqual(pageErrors, [])
  assert.equal(consoleLines.filter((l) => l.includes('not sent')).length, 2, consoleLines.join('\n'))
})

test('a cross-origin isolated page (COEP require-corp) loads /crumbs.js from the server and sends its view', async (t) => {
  const { page, appId, events } = await setup(t)
  // The script tag as sites write it, without crossorigin: a no-cors load,
  // which such a page allows only with a Cross-Origin-Resource-Policy header.
  const site = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Opener-Policy': 'same-origin' })
    res.end(`<!doctype html><title>Isolated</title><script defer src="${server.url}/crumbs.js" data-app-id="${appId}" data-allow-automation></script>`)
  })
  const port = await freePort()
  await new Promise((r) => site.listen(port, '127.0.0.1', r))
  t.after(() => (site.closeAllConnections(), site.close()))
  await page.goto(`http://127.0.0.1:${port}/isolated`)
  assert.equal(await page.evaluate(() => crossOriginIsolated), true)
  await page.waitForFunction(() => typeof window.crumbs == 'function', null, { timeout: 5000 })
  await expectCounts(events, { view: 1 }, 'the view')
})

test('the #fragment of the page (an OAuth or magic-link token) is never sent', async (t) => {
  const { site, page, attrs, events, requests } = await setup(t, { defs: ['trial_click'] })
  site.add('/callback', { attrs: attrs() })
  await page.goto(`${site.url}/callback?from=mail#access_token=secret-token&type=magiclink`)
  await expectCounts(events, { view: 1 }, 'the view')
  await page.evaluate(() => crumbs('track', 'trial_click'))
  await expectCounts(events, { view: 1, trial_click: 1 }, 'the click')
  assert.deepEqual((await events()).map((e) => e.url), Array(2).fill(`${site.url}/callback?from=mail`))
  // Before, every event of the page carried the whole location.href.
  assert.ok(!requests.some((b) => b.includes('secret-token')), requests.join('\n'))
})

// A page without storage (a sandboxed, opaque origin), with or without
// cookieDomain, sends its events and throws nothing.
async function sandboxed(t, attrs) {
  const { page, appId, events } = await setup(t, { defs: ['trial_click'] })
  // CSP sandbox without allow-same-origin: localStorage, cookies and Web Locks all throw.
  const site = createServer((req, res) => {
    if (req.url == '/crumbs.js') return res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(readFileSync(dist))
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': 'sandbox allow-scripts' })
    res.end(`<!doctype html><title>Sandboxed</title><script defer src="/crumbs.js" data-app-id="${appId}" data-endpoint="${server.url}/" data-allow-automation data-debug ${attrs}></script>`)
  })
  const port = await freePort()
  await new Promise((r) => site.listen(port, '127.0.0.1', r))
  t.after(() => (site.closeAllConnections(), site.close()))
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(`http://127.0.0.1:${port}/sandboxed`)
  assert.equal(await page.evaluate(() => origin), 'null')
  await page.waitForFunction(() => typeof window.crumbs == 'function', null, { timeout: 5000 })
  await page.evaluate(() => crumbs('track', 'trial_click'))
  // Before, the Web Lock's refusal was thrown (an unhandled rejection) and nothing was sent.
  await expectCounts(events, { view: 1, trial_click: 1 }, 'the events')
  assert.deepEqual(pageErrors, [])
}

test('a page without storage (a sandboxed, opaque origin) sends its events and throws nothing', (t) => sandboxed(t, ''))

// Before, reading document.cookie for the device id threw a SecurityError
// into the page on every call: no view, and crumbs('track') threw.
test('a sandboxed page with cookieDomain sends its events and throws nothing', (t) => sandboxed(t, 'data-cookie-domain=".example.com"'))

test('identifyForms reads inputs only: an element named email that is no input neither throws nor hides the email field', async (t) => {
  const { site, page, attrs, deviceId, appId } = await setup(t)
  site.add('/thanks', { attrs: attrs() })
  site.add('/fieldset', {
    attrs: attrs({ 'identify-forms': true }),
    body: `<form action="/thanks" method="post"><fieldset name="email"><legend>Email</legend>
      <input type="email" name="address"></fieldset><button type="submit">Go</button></form>`,
  })
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(`${site.url}/fieldset`)
  await page.fill('[name=address]', 'grace@example.com')
  const id = await deviceId()
  await page.click('button[type=submit]')
  await page.waitForURL(`${site.url}/thanks`)
  // Before, the fieldset matched [name=email] first: its value is undefined,
  // .trim() threw into the page, and the visitor was not identified.
  const lead = await until(async () => (await server.device(appId, id)).lead, 15000, 'identify')
  assert.equal(lead.email, 'grace@example.com')
  assert.deepEqual(pageErrors, [])
})

test('a Crumbs server that does not answer never holds the page; the library loaded late still sends the view', async (t) => {
  const { site, page, attrs, events } = await setup(t, { defs: ['promo_seen'] })
  const url = site.add('/held', {
    title: 'Held page',
    attrs: attrs(),
    src: `${site.url}/held/crumbs.js`,
    body: `<div data-crumbs-event="promo_seen" data-crumbs-on="view">Promo</div>
      <script>window.ready = []; addEventListener('DOMContentLoaded', () => ready.push(typeof crumbs))</script>`,
  })
  // A deferred library held DOMContentLoaded, and with it the site's own ready handlers, for as
  // long as the server did not answer: this goto waited for the library until its timeout.
  await page.goto(url, { waitUntil: 'domcontentloaded', timeout: 10000 })
  assert.deepEqual(await page.evaluate(() => ready), ['undefined'], 'the page was ready before the library')
  site.release()
  await until(() => page.evaluate(() => typeof crumbs == 'function'), 10000, 'the library')
  await expectCounts(events, { view: 1, promo_seen: 1 }, 'the late library')
  assert.equal((await events()).find((e) => e.code == 'view').title, 'Held page')
})

test('a library that runs before the page is parsed sends the view once the page is there', async (t) => {
  const { site, page, attrs, events } = await setup(t, { defs: ['promo_seen'] })
  let releaseRest
  const rest = new Promise((r) => (releaseRest = r))
  const url = site.handle('/early', async (req, res) => {
    req.resume()
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' })
    // The tag above the title, and the rest of the page held until the library has run.
    res.write(`<!doctype html><html><head><meta charset="utf-8">${site.tag(attrs())}<!--${' '.repeat(4096)}-->`)
    await rest
    res.end(`<title>Parsed later</title></head><body><div data-crumbs-event="promo_seen" data-crumbs-on="view">Promo</div></body></html>`)
  })
  const loading = page.goto(url)
  const state = await until(() => page.evaluate(() => typeof crumbs == 'function' && document.readyState).catch(() => false), 10000, 'the library')
  assert.equal(state, 'loading', 'the library ran while the page was loading')
  releaseRest()
  await loading
  await expectCounts(events, { view: 1, promo_seen: 1 }, 'views')
  assert.equal((await events()).find((e) => e.code == 'view').title, 'Parsed later', 'the view has the page title')
})

test('a batch of non-Latin text under 60,000 characters but over the 64 KiB keepalive limit in bytes is delivered', async (t) => {
  const { site, page, attrs, events, appId, consoleLines } = await setup(t, { defs: ['note'] })
  site.add('/cjk', { attrs: attrs() })
  await page.goto(`${site.url}/cjk`)
  await expectCounts(events, { view: 1 }, 'the view')
  // 20 events of three properties of 650 Chinese characters each: every one is within what the
  // server takes (1,950 bytes a string, 8 KiB in all), and the batch is about 50,000
  // characters but 130,000 bytes.
  await page.evaluate(() => {
    const s = '字'.repeat(650)
    for (let n = 0; n < 20; n++) crumbs('track', 'note', { n, a: s, b: s, c: s })
  })
  // Before, the batch went with keepalive (under 60,000 characters), which the browser refuses
  // over 64 KiB: a network failure to the library, retried without end.
  const got = await expectCounts(events, { view: 1, note: 20 }, 'the batch')
  assert.deepEqual(got, { view: 1, note: 20 })
  await until(async () => (await queued(page, appId)) == 0, 10000, 'empty queue')
  assert.ok(!consoleLines.some((l) => l.includes('refused')), consoleLines.join('\n'))
})

test('a page restored from the back/forward cache counts a view, as a page loaded again does', async (t) => {
  const site = await startSite()
  t.after(() => site.close())
  const appId = await server.createApp()
  const cached = await launchBrowser({ bfcache: true })
  t.after(() => cached.close())
  const page = await cached.context.newPage()
  const attrs = { 'app-id': appId, endpoint: `${server.url}/`, 'allow-automation': true }
  site.add('/a', {
    title: 'A',
    attrs,
    body: `<a id="go" href="/b">B</a><script>window.restored = 0
      addEventListener('pageshow', (e) => (restored += e.persisted))</script>`,
  })
  site.add('/b', { title: 'B', attrs })
  await page.goto(`${site.url}/a`)
  const id = await page.evaluate(() => crumbs('deviceId'))
  const events = async () => (await server.device(appId, id)).events
  await expectCounts(events, { view: 1 }, 'the first view')
  await page.click('#go')
  await page.waitForURL(`${site.url}/b`)
  await expectCounts(events, { view: 2 }, 'the view of B')
  // A page restored from the cache fires no load: wait for the navigation to commit.
  await page.goBack({ waitUntil: 'commit' })
  // The library keeps the page eligible for the cache (no unload listener, for one).
  assert.equal(await until(() => page.evaluate(() => restored), 10000, 'a restore from the back/forward cache'), 1)
  // Before, a restored page sent nothing, while the same page loaded again (without the cache)
  // sent its view: the count of views depended on the browser's cache.
  await expectCounts(events, { view: 3 }, 'the view of the restored page')
  const views = (await events()).filter((e) => e.code == 'view')
  assert.deepEqual(views.map((e) => [new URL(e.url).pathname, e.title]), [['/a', 'A'], ['/b', 'B'], ['/a', 'A']])
  await page.evaluate(() => crumbs('track', 'click', { after: 'restore' }))
  await expectCounts(events, { view: 3, click: 2 }, 'an event after the restore')
})

test('consent given or withdrawn in one tab holds in the other open tabs', async (t) => {
  const { site, page, attrs, appId, requests } = await setup(t, { defs: ['trial_click'] })
  const url = site.add('/consent-tabs', { attrs: attrs({ 'require-consent': true }) })
  const other = await browser.context.newPage()
  t.after(() => other.close())
  await page.goto(url)
  await other.goto(url)
  await page.evaluate(() => crumbs('track', 'trial_click', { tab: 'first' }))
  await sleep(1000)
  assert.equal(requests.length, 0, 'nothing is sent before consent')
  // The visitor consents in the other tab: this tab's waiting events go too.
  await other.evaluate(() => crumbs('consent', true))
  const sent = await until(() => requests.map((b) => JSON.parse(b).events || []).flat().find((e) => e.properties?.tab == 'first'), 10000, 'the first tab sends after consent in the other')
  await expectCounts(async () => (await server.device(appId, sent.device_id)).events, { view: 1, trial_click: 1 }, 'the first tab')
  // The visitor withdraws consent in the other tab: this tab stops too, and stores nothing again.
  await other.evaluate(() => crumbs('consent', false))
  await sleep(500)
  const before = requests.length
  await page.evaluate(() => crumbs('track', 'trial_click', { tab: 'after withdrawal' }))
  await page.evaluate(() => history.pushState({}, '', '/consent-tabs/next'))
  await sleep(2000)
  // Before, this tab went on: it stored a new device id and sent both events.
  assert.deepEqual(requests.slice(before), [], 'nothing is sent after the withdrawal')
  assert.deepEqual(await page.evaluate((p) => Object.keys(localStorage).filter((k) => k.startsWith(p)), `crumbs_${appId}_`), [])
})

test('a page with a strict CSP (nonces, no eval, Trusted Types) loads the pinned library with Subresource Integrity and sends', async (t) => {
  const { page, appId, events } = await setup(t, { defs: ['trial_click'] })
  const pinned = (await fetch(`${server.url}/crumbs.js`, { method: 'HEAD' })).headers.get('crumbs-immutable-path')
  const integrity = 'sha384-' + createHash('sha384').update(readFileSync(dist)).digest('base64')
  const csp = [
    "default-src 'none'",
    "script-src 'nonce-n0nce' 'strict-dynamic'",
    `connect-src ${server.url}`,
    "base-uri 'none'",
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; ')
  const site = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': csp })
    res.end(`<!doctype html><title>Strict</title>
      <script nonce="n0nce">window.violations = []
        addEventListener('securitypolicyviolation', (e) => violations.push(e.violatedDirective + ' ' + e.blockedURI))
        window.crumbs=window.crumbs||function(){(crumbs.q=crumbs.q||[]).push(arguments)}
        crumbs('track', 'trial_click', { from: 'stub' })</script>
      <script nonce="n0nce" async src="${server.url}${pinned}" integrity="${integrity}" crossorigin="anonymous"
        data-app-id="${appId}" data-allow-automation></script>
      <button id="b">Buy</button>
      <div data-crumbs-event="trial_click" data-crumbs-on="view" data-crumbs-prop-from="view">x</div>`)
  })
  const port = await freePort()
  await new Promise((r) => site.listen(port, '127.0.0.1', r))
  t.after(() => (site.closeAllConnections(), site.close()))
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(`http://127.0.0.1:${port}/strict`)
  await page.waitForFunction(() => typeof crumbs == 'function' && !crumbs.q, null, { timeout: 5000 })
  await page.click('#b')
  await page.evaluate(() => history.pushState({}, '', '/strict/2'))
  await expectCounts(events, { view: 2, click: 1, trial_click: 3 }, 'the events')
  assert.deepEqual(await page.evaluate(() => violations), [])
  assert.deepEqual(pageErrors, [])
})

// Prerendering runs only without DevTools attached (Playwright's pages get
// PrerenderingDisabledByDevTools), so this test starts Chromium by itself and
// steers the pages through the site: each page asks /next where to go.
test('a page prerendered by Speculation Rules sends its view only if the visitor opens it', async (t) => {
  const site = await startSite()
  t.after(() => site.close())
  const appId = await server.createApp()
  const marks = []
  let next = ''
  site.handle('/mark', (req, res) => (marks.push(new URL(req.url, site.url).searchParams.get('m')), res.end()))
  site.handle('/next', (req, res) => res.end(next))
  const attrs = { 'app-id': appId, endpoint: `${server.url}/`, 'allow-automation': true }
  // Each page reports its device id and whether it ran prerendered once the library has started,
  // prerenders the page `prerender`, and goes where /next says.
  const add = (path, prerender) =>
    site.add(path, {
      attrs,
      head: prerender ? `<script type="speculationrules">{"prerender":[{"source":"list","urls":["${prerender}"]}]}</script>` : '',
      body: `<script>const was = document.prerendering
        const started = setInterval(() => typeof crumbs == 'function' && (clearInterval(started),
          fetch('/mark?m=${path}:' + was + ':' + crumbs('deviceId'))), 50)
        const go = setInterval(async () => { const u = !document.prerendering && (await (await fetch('/next')).text())
          u && u != location.pathname && (clearInterval(go), (location.href = u)) }, 200)</script>`,
    })
  add('/a', '/b')
  add('/b')
  add('/c', '/d')
  add('/d')
  const profile = mkdtempSync(join(tmpdir(), 'crumbs-prerender-'))
  const chromium = spawn('/usr/bin/chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', `--user-data-dir=${profile}`, `${site.url}/a`], { stdio: 'ignore', detached: true })
  t.after(async () => {
    // Chromium and its helper processes (its own process group), which write to the profile until they end.
    const alive = () => {
      try {
        return process.kill(-chromium.pid, 0)
      } catch {
        return false
      }
    }
    if (alive()) process.kill(-chromium.pid)
    await until(() => !alive(), 10000, 'Chromium to end')
    rmSync(profile, { recursive: true, force: true })
  })
  const mark = (path) => until(() => marks.find((m) => m.startsWith(path + ':')), 20000, `${path} in ${JSON.stringify(marks)}`)
  const id = (await mark('/a')).split(':')[2]
  // /b is prerendered and its library has started (and queued its view), but the visitor goes to /c.
  assert.equal((await mark('/b')).split(':')[1], 'true', 'the page was prerendered')
  next = '/c'
  await mark('/c')
  // /d is prerendered, and the visitor opens it.
  assert.equal((await mark('/d')).split(':')[1], 'true', 'the page was prerendered')
  next = '/d'
  const events = async () => (await server.device(appId, id)).events
  // Before, /b's view was stored while prerendered, and /c sent it: a view of a page never seen.
  await expectCounts(events, { view: 3 }, 'views')
  assert.deepEqual((await events()).map((e) => new URL(e.url).pathname), ['/a', '/c', '/d'])
})

test('data-auto-view, data-auto-click and data-auto-submit="false" switch the capture off; declared triggers and track still send', async (t) => {
  const { site, page, attrs, events, requests } = await setup(t, { defs: ['promo_seen', 'trial_click'] })
  site.add('/thanks', { attrs: attrs() })
  site.add('/off', {
    attrs: attrs({ 'auto-view': 'false', 'auto-click': 'false', 'auto-submit': 'false' }),
    body: `<div data-crumbs-event="promo_seen" data-crumbs-on="view">Promo</div>
      <button id="buy">Buy</button><a id="plain" href="#x">Plain</a>
      <button id="trial" data-crumbs-event="trial_click">Trial</button>
      <form id="f" action="/thanks" method="post" onsubmit="event.preventDefault()"><button id="send">Send</button></form>`,
  })
  await page.goto(`${site.url}/off`)
  await page.click('#buy')
  await page.click('#plain')
  await page.click('#send')
  await page.evaluate(() => history.pushState({}, '', '/off/2'))
  await page.click('#trial')
  await page.evaluate(() => crumbs('track', 'trial_click', { from: 'track' }))
  // Two page views: the view trigger fires on each, but no view is sent.
  const got = await expectCounts(events, { promo_seen: 2, trial_click: 2 }, 'the triggers')
  assert.deepEqual(got, { promo_seen: 2, trial_click: 2 })
  assert.ok(!requests.some((b) => /"code":"(view|click|submit)"/.test(b)), requests.join('\n'))
})

test('with data-respect-gpc nothing is sent when the browser signals Global Privacy Control, and debug mode says why', async (t) => {
  const { site, page, attrs, requests, consoleLines, events } = await setup(t)
  site.add('/gpc', { attrs: attrs({ 'respect-gpc': true }) })
  site.add('/no-gpc', { attrs: attrs() })
  await page.addInitScript(() => Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', { get: () => true }))
  await page.goto(`${site.url}/gpc`)
  await page.evaluate(() => crumbs('track', 'click'))
  await sleep(1500)
  assert.equal(requests.length, 0)
  assert.ok(consoleLines.some((l) => l.includes('not sent GPC')), consoleLines.join('\n'))
  // Without the attribute the signal is the site's to honour: the library sends.
  await page.goto(`${site.url}/no-gpc`)
  await expectCounts(events, { view: 1 }, 'the view without data-respect-gpc')
})

test('clicks that scripts dispatch on the document or window throw nothing into the page', async (t) => {
  const { site, page, attrs, events } = await setup(t)
  site.add('/synthetic', { attrs: attrs(), body: '<button id="buy">Buy</button>' })
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  await page.goto(`${site.url}/synthetic`)
  await page.waitForFunction(() => typeof crumbs == 'function')
  // Menus and "click outside" handlers do this; the document and window have no closest().
  await page.evaluate(() => {
    document.dispatchEvent(new MouseEvent('click', { bubbles: true }))
    dispatchEvent(new MouseEvent('click'))
  })
  await page.click('#buy')
  await expectCounts(events, { view: 1, click: 1 }, 'the view and the button click')
  // Before, each threw "closest is not a function" from the library's listener.
  assert.deepEqual(pageErrors, [])
})
