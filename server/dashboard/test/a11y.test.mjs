// Accessibility and phone widths, page by page: every dashboard page is
// checked with axe's WCAG 2.1 A and AA rules (and the target size rule) at a
// desktop and a phone width, and must not scroll sideways at 320 CSS px
// (only a wide table scrolls, inside itself). Then what axe cannot see: the
// navigation folds behind a Menu button on a phone, results of actions are
// said (successes politely, errors as alerts or on their field), a filter
// keeps the focus, and no two buttons of a page have the same name.
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import AxeBuilder from '@axe-core/playwright'
import { freePort, launchBrowser, startServer, until } from './harness.mjs'

process.env.CRUMBS_WEBHOOK_ALLOW_PRIVATE = 'true'
const work = mkdtempSync(join(tmpdir(), 'crumbs-dashboard-a11y-'))
let crumbs, browser, page, receiver, shop

const as = (s) => ({ Authorization: `Bearer ${s}` })
// Desktop and phone with axe; 320 px (WCAG's reflow width) for the reflow.
const WIDTHS = [[1280, 800, true], [375, 812, true], [320, 640, false]]

/** A webhook receiver on loopback that answers 200. */
async function startReceiver() {
  const port = await freePort()
  const server = createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end('ok')))
  await new Promise((r) => server.listen(port, '127.0.0.1', r))
  server.unref()
  return { port, close: () => (server.closeAllConnections(), server.close()) }
}

/**
 * An app with something on every page: definitions, events of a lead and
 * of a device, unknown codes, a goal, an automation rule whose two webhooks
 * differ only in their query (shown alike, without it) with 52
 * deliveries, an ingest token, an invitation and an audit record.
 */
async function seed() {
  const gql = (q, v, h) => crumbs.gql(q, v, h)
  const { app, secretKey } = (await gql('mutation { createApp(input: {name: "Accessible shop", timezone: "UTC"}) { app { id } secretKey } }')).createApp
  const defs = {}
  for (const [code, name] of [['signup', 'Signup'], ['buy', 'Buy']]) defs[code] = (await gql('mutation($i: CreateEventDefinitionInput!) { createEventDefinition(input: $i) { id } }', { i: { appId: app.id, code, name, description: `${name} on the shop` } })).createEventDefinition.id
  const m = 'mutation($a: ID!, $i: EventMatcherInput!) { createEventMatcher(appId: $a, input: $i) { id } }'
  await gql(m, { a: app.id, i: { name: 'Trial: start', code: 'signup', rules: [] } })
  await gql(m, { a: app.id, i: { name: 'Trial: completion', code: 'buy', rules: [] } })
  await gql('mutation($a: ID!, $i: GoalInput!) { createGoal(appId: $a, input: $i) { id } }', { a: app.id, i: { name: 'Trial', startMatcher: 'Trial: start', completionMatcher: 'Trial: completion', windowSeconds: 86400 } })
  await gql(m, { a: app.id, i: { name: 'Automation: Buyers', code: 'buy', rules: [] } })
  const hook = (key) => `http://127.0.0.1:${receiver.port}/hooks/crumbs?key=${key}`
  const { rule } = (await gql('mutation($a: ID!, $i: AutomationRuleInput!) { createAutomationRule(appId: $a, input: $i) { rule { id } } }', { a: app.id, i: { name: 'Buyers', matcher: 'Automation: Buyers', actions: [{ kind: 'webhook', url: hook('one') }, { kind: 'webhook', url: hook('two') }] } })).createAutomationRule
  const at = new Date(Date.now() - 3600000).toISOString()
  await gql('mutation($i: [TriggerInput!]!) { triggerBatch(inputs: $i) { accepted } }', { i: [
    { appId: app.id, deviceId: 'a11y-lead', code: 'signup', occurredAt: at, url: 'https://shop.example/pricing?plan=pro', title: 'Pricing', referrer: 'https://search.example/', properties: { plan: 'pro' } },
    { appId: app.id, deviceId: 'a11y-lead', code: 'signup', occurredAt: at, url: 'https://shop.example/pricing?plan=team', title: 'Pricing', properties: { plan: 'team' } },
    ...Array.from({ length: 26 }, (_, n) => ({ appId: app.id, deviceId: n ? `a11y-device-${n}` : 'a11y-lead', code: 'buy', url: 'https://shop.example/checkout', title: 'Checkout', properties: { n } })),
  ] }, as(secretKey))
  await gql('mutation($i: IdentifyInput!) { identify(input: $i) { lead { id } } }', { i: { appId: app.id, deviceId: 'a11y-lead', email: 'ada@example.test', name: 'Ada Lovelace', fields: { company: 'Engines' } } }, as(secretKey))
  for (const code of ['sigup', 'signpu']) await gql('mutation($i: TriggerInput!) { trigger(input: $i) { accepted } }', { i: { appId: app.id, deviceId: 'a11y-typo', code } }, as(secretKey)).catch(() => {})
  await gql('mutation($a: ID!, $n: String!) { createIngestToken(appId: $a, name: $n) { url } }', { a: app.id, n: 'Shop till' })
  const { invitationToken } = (await gql('mutation($a: ID!, $e: String!) { addMember(appId: $a, email: $e, role: viewer) { invitationToken } }', { a: app.id, e: 'viewer@example.test' })).addMember
  await gql('mutation($a: ID!, $d: String!) { eraseDevice(appId: $a, deviceId: $d) { deletedEvents } }', { a: app.id, d: 'a11y-device-25' }).catch(() => {})
  const lead = (await gql('query($a: ID!) { leadByEmail(appId: $a, email: "ada@example.test") { id } }', { a: app.id })).leadByEmail
  await until(async () => (await gql('query($a: ID!, $r: ID!) { deliveries(appId: $a, ruleId: $r, status: succeeded, first: 100) { edges { node { id } } } }', { a: app.id, r: rule.id })).deliveries.edges.length >= 50, 60000, 'the deliveries')
  return { app, secretKey, rule, lead, invitationToken, defs }
}

/** Signs the browser in (its tabs share the sign-in), unless it is already. */
async function signIn(tab) {
  await tab.goto(crumbs.url + '/signin')
  await tab.waitForFunction(() => location.pathname !== '/signin' || document.querySelector('#email'))
  if (await tab.locator('#email').count()) {
    await tab.fill('#email', crumbs.admin.email)
    await tab.fill('#password', crumbs.admin.password)
    await tab.getByRole('button', { name: 'Sign in' }).click()
    await tab.waitForURL((u) => !u.pathname.startsWith('/signin'))
  }
}

before(async () => {
  crumbs = await startServer(work, 'a11y-owner@example.test')
  receiver = await startReceiver()
  browser = await launchBrowser()
  page = await browser.context.newPage()
  shop = await seed()
})

after(async () => {
  await browser?.close()
  await crumbs?.stop()
  receiver?.close()
  rmSync(work, { recursive: true, force: true })
})

/** Waits for a page's data: no Loading left, nothing still coming over the network. */
async function settled(tab) {
  await tab.waitForLoadState('networkidle').catch(() => {})
  await tab.locator('main [role=status]:has-text("Loading")').first().waitFor({ state: 'detached', timeout: 10000 }).catch(() => {})
  await tab.locator('#page-title, main h1').first().waitFor({ timeout: 10000 })
}

const fmt = (v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.slice(0, 3).map((n) => `${n.target.join(' ')}${n.failureSummary ? ` [${n.failureSummary.replace(/\s+/g, ' ').slice(0, 160)}]` : ''}`).join('; ')}`

/**
 * Every problem of the page shown at its current size: axe's WCAG 2.1 A and
 * AA rules and target size (WCAG 2.2's one AA rule axe has), unless only
 * the reflow is asked for.
 */
async function problems(tab, axe = true) {
  const found = []
  if (axe) for (const v of (await new AxeBuilder({ page: tab }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa']).analyze()).violations) found.push(fmt(v))
  // Reflow (WCAG 1.4.10): nothing but a table scrolling inside itself is wider than the screen.
  const wide = await tab.evaluate(() => {
    if (document.documentElement.scrollWidth <= innerWidth) return null
    const over = [...document.body.querySelectorAll('*')].filter((e) => e.getBoundingClientRect().right > innerWidth + 1 && !e.closest('table'))
    const e = over.find((x) => !over.some((y) => y !== x && x.contains(y)))
    return `${document.documentElement.scrollWidth - innerWidth}px (${e ? `${e.tagName.toLowerCase()}.${e.className} "${e.textContent.slice(0, 40)}"` : '?'})`
  })
  if (wide) found.push(`scrolls sideways by ${wide}`)
  return found
}

// The pages of an app, and the pages outside one.
const appPages = () => {
  const { app, rule, lead, defs } = shop
  const f = encodeURIComponent(JSON.stringify({ steps: [{ code: 'signup', rules: [] }, { code: 'buy', rules: [] }], window: 86400, strict: false }))
  return ['', '/pages', '/sources', `/funnels?f=${f}`, '/goals', '/events', '/live', '/definitions', '/definitions/new', `/definitions/${defs.signup}`, '/unknown',
    '/leads', `/leads/${lead.id}`, '/devices/a11y-lead', '/setup', '/settings', '/members', '/automations', '/automations/new', `/automations/${rule.id}`,
    `/automations/${rule.id}/deliveries`, '/audit'].map((p) => `/apps/${app.id}${p}`)
}

test('every page meets WCAG 2.1 AA at desktop and phone widths, and reflows at 320 px', async () => {
  const found = []
  let menuChecked = false
  const visit = async (path) => {
    await page.setViewportSize({ width: WIDTHS[0][0], height: WIDTHS[0][1] })
    await page.goto(crumbs.url + path)
    await settled(page)
    for (const [width, height, axe] of WIDTHS) {
      await page.setViewportSize({ width, height })
      await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))
      for (const p of await problems(page, axe)) found.push(`${path} @${width}: ${p}`)
      // With the phone's menu open too (the menu is the same on every page: axe it once).
      const menu = page.getByRole('button', { name: 'Menu' })
      if (width < 1000 && await menu.isVisible()) {
        await menu.click()
        for (const p of await problems(page, axe && !menuChecked)) found.push(`${path} @${width} (menu open): ${p}`)
        menuChecked ||= axe
      }
    }
  }
  await visit('/signin')
  await visit(`/invitation#${encodeURIComponent(shop.invitationToken)}`)
  await signIn(page)
  for (const path of [...appPages(), '/account', '/new']) await visit(path)
  await page.setViewportSize({ width: 1280, height: 800 })
  assert.deepEqual(found, [])
})

const focused = (tab) => tab.evaluate(() => {
  const e = document.activeElement
  return !e || e === document.body ? 'body' : `${e.tagName.toLowerCase()}: ${(e.getAttribute('aria-label') || e.textContent).trim().replace(/\s+/g, ' ')}`
})
const focusIs = (tab, want) => until(async () => { const f = await focused(tab); return typeof want === 'string' ? f === want : want.test(f) }, 10000, `the focus on ${want}`).catch(async (e) => assert.fail(`${e.message}: ${await focused(tab)}`))
const said = (tab, text) => tab.locator('#announcer').filter({ hasText: text }).waitFor({ timeout: 15000 }).then(() => true, async () => tab.locator('#announcer').textContent())

// On a phone the sidebar's twenty links came before every page's content,
// for the eye, the keyboard and the screen reader alike.
test('on a phone the navigation folds behind a Menu button, and the content comes first', async () => {
  const tab = await browser.context.newPage()
  await signIn(tab)
  const b = `${crumbs.url}/apps/${shop.app.id}`
  try {
    await tab.setViewportSize({ width: 375, height: 812 })
    await tab.goto(b)
    await settled(tab)
    const nav = tab.getByRole('navigation', { name: 'Main' })
    const menu = nav.getByRole('button', { name: 'Menu' })
    assert.equal(await menu.getAttribute('aria-expanded'), 'false')
    const controls = await menu.getAttribute('aria-controls')
    assert.ok(controls && await tab.locator(`#${controls}`).count(), `aria-controls=${controls} names the menu`)
    assert.equal(await nav.getByRole('link', { name: 'Goals' }).isVisible(), false)
    // Nothing of the menu is in the way: the content is under the top of the screen.
    const top = await tab.locator('#page-title').boundingBox()
    assert.ok(top.y < 200, `the page title is at ${top.y}px`)
    // Keyboard: skip link, brand, Menu, then the page.
    await tab.keyboard.press('Tab')
    await focusIs(tab, 'a: Skip to content')
    await tab.keyboard.press('Tab')
    await tab.keyboard.press('Tab')
    await focusIs(tab, 'button: Menu')
    await tab.keyboard.press('Tab')
    assert.ok(await tab.evaluate(() => document.getElementById('main').contains(document.activeElement)), `after Menu comes the page: ${await focused(tab)}`)
    // The skip link still goes straight to the content.
    await tab.keyboard.press('Shift+Tab')
    await tab.keyboard.press('Shift+Tab')
    await tab.keyboard.press('Shift+Tab')
    await focusIs(tab, 'a: Skip to content')
    await tab.keyboard.press('Enter')
    await until(() => tab.evaluate(() => document.getElementById('main').contains(document.activeElement)), 5000, 'the focus in the content')

    // Opened with the keyboard: the links follow the button; Escape folds them and the focus stays on Menu.
    await menu.focus()
    await tab.keyboard.press('Enter')
    assert.equal(await menu.getAttribute('aria-expanded'), 'true')
    assert.equal(await nav.getByRole('link', { name: 'Goals' }).isVisible(), true)
    await tab.keyboard.press('Tab')
    await focusIs(tab, /^select: App/)
    await tab.keyboard.press('Tab')
    await focusIs(tab, 'a: Overview')
    await tab.keyboard.press('Escape')
    assert.equal(await menu.getAttribute('aria-expanded'), 'false')
    await focusIs(tab, 'button: Menu')
    assert.equal(await nav.getByRole('link', { name: 'Goals' }).isVisible(), false)
    // A tap (no hover, no keyboard) opens it; following a link folds it and lands on the new page's title.
    await menu.click()
    await nav.getByRole('link', { name: 'Goals' }).click()
    await tab.waitForURL(/\/goals$/)
    await focusIs(tab, 'h1: Goals')
    assert.equal(await menu.getAttribute('aria-expanded'), 'false')
    assert.equal(await nav.getByRole('link', { name: 'Goals' }).isVisible(), false)

    // On a wide screen the navigation is open, and there is no Menu button.
    await tab.setViewportSize({ width: 1280, height: 800 })
    assert.equal(await menu.isVisible(), false)
    assert.equal(await nav.getByRole('link', { name: 'Goals' }).isVisible(), true)
    await tab.keyboard.press('Escape')
    assert.equal(await nav.getByRole('link', { name: 'Goals' }).isVisible(), true)
  } finally {
    await tab.close()
  }
})

// The delivery log went back to its first page when its status filter
// changed, and that put the focus on the page's title: a keyboard user
// trying the statuses one by one with the arrow keys lost the filter after
// the first. The overview's range did the same.
test('changing a filter leaves the focus on the filter', async () => {
  const tab = await browser.context.newPage()
  await signIn(tab)
  try {
    await tab.goto(`${crumbs.url}/apps/${shop.app.id}/automations/${shop.rule.id}/deliveries`)
    await tab.getByRole('button', { name: 'Older →' }).click()
    await tab.getByRole('button', { name: '← Newer' }).waitFor()
    const filter = tab.getByLabel('Status', { exact: true })
    await filter.focus()
    await tab.keyboard.press('ArrowDown')
    await until(async () => (await filter.inputValue()) === 'pending', 5000, 'the filter changed')
    await tab.getByText('No deliveries with status pending.').waitFor()
    await settled(tab)
    await focusIs(tab, /^select: /)
    assert.equal(await tab.evaluate(() => document.activeElement.id), 'del-status')

    await tab.goto(`${crumbs.url}/apps/${shop.app.id}`)
    await settled(tab)
    const range = tab.getByLabel('Range', { exact: true })
    await range.focus()
    await tab.keyboard.press('ArrowUp')
    await tab.waitForURL(/range=7d/)
    await settled(tab)
    assert.equal(await tab.evaluate(() => document.activeElement.id), 'range')
  } finally {
    await tab.close()
  }
})

/** The names of a page's buttons and form controls as the browser gives them to screen readers, by role. */
async function controlNames(tab) {
  const cdp = await browser.context.newCDPSession(tab)
  const { nodes } = await cdp.send('Accessibility.getFullAXTree')
  await cdp.detach()
  return nodes.filter((n) => !n.ignored && ['button', 'checkbox', 'combobox', 'textbox', 'searchbox', 'spinbutton'].includes(n.role?.value)).map((n) => `${n.role.value}: ${n.name?.value ?? ''}`)
}

// Two webhooks that differ in their query are shown alike (the query may
// hold a key, so it is not shown), and their rows' buttons were named alike; so were the
// Replay buttons of an event's deliveries, the Show properties of events of
// the same minute and the "It's a typo of signup" of two typos.
test('no two buttons or fields of a page have the same name', async () => {
  const tab = await browser.context.newPage()
  await signIn(tab)
  try {
    const found = []
    for (const path of appPages()) {
      await tab.goto(crumbs.url + path)
      await settled(tab)
      if (path.endsWith('/deliveries')) await tab.locator('[data-testid=deliveries-table] tbody tr').first().waitFor()
      const names = await controlNames(tab)
      const twice = [...new Set(names.filter((n, i) => names.indexOf(n) !== i))]
      if (twice.length) found.push(`${path}: ${twice.join(' | ')}`)
    }
    assert.deepEqual(found, [])
    // And the names say what they act on.
    await tab.goto(`${crumbs.url}/apps/${shop.app.id}/automations/${shop.rule.id}`)
    const url = `http://127.0.0.1:${receiver.port}/hooks/crumbs?…`
    await tab.getByRole('button', { name: `Remove ${url} (1 of 2)`, exact: true }).waitFor()
    await tab.getByRole('button', { name: `Remove ${url} (2 of 2)`, exact: true }).waitFor()
    await tab.goto(`${crumbs.url}/apps/${shop.app.id}/unknown`)
    await tab.getByRole('button', { name: "It's a typo of signup (sigup)", exact: true }).waitFor()
  } finally {
    await tab.close()
  }
})

/**
 * What of the page scrolls inside itself and so takes the focus (main.js),
 * as the browser gives it to screen readers: tag (and test id), role and
 * name, each element once.
 */
async function scrollers(tab) {
  const cdp = await browser.context.newCDPSession(tab)
  try {
    const { root } = await cdp.send('DOM.getDocument', { depth: 0 })
    const { nodeIds } = await cdp.send('DOM.querySelectorAll', { nodeId: root.nodeId, selector: 'main [data-scrolls]' })
    const out = []
    for (const nodeId of nodeIds) {
      const { node } = await cdp.send('DOM.describeNode', { nodeId })
      const attrs = Object.fromEntries((node.attributes || []).flatMap((v, i, a) => (i % 2 ? [] : [[v, a[i + 1]]])))
      const { nodes } = await cdp.send('Accessibility.getPartialAXTree', { nodeId, fetchRelatives: false })
      const ax = nodes.find((n) => n.backendDOMNodeId === node.backendNodeId) || nodes[0]
      out.push({ el: `${node.localName}${attrs['data-testid'] ? `[${attrs['data-testid']}]` : ''}`, tabindex: attrs.tabindex, role: ax?.role?.value ?? '', name: ax?.name?.value ?? '' })
    }
    return out
  } finally {
    await cdp.detach()
  }
}

// A lead's long story scrolls inside itself, so it takes the focus for the
// keyboard to scroll it; focused, it was a <pre> with no role and no name,
// which a screen reader announced as nothing at all. So is every table
// that scrolls sideways on a phone named (by its caption).
test('what scrolls inside itself and takes the focus has a role and a name', async () => {
  const tab = await browser.context.newPage()
  await signIn(tab)
  try {
    const { app, secretKey } = shop
    const at = new Date(Date.now() - 7200000).toISOString()
    await crumbs.gql('mutation($i: [TriggerInput!]!) { triggerBatch(inputs: $i) { accepted } }', { i: Array.from({ length: 40 }, (_, n) => (
      { appId: app.id, deviceId: 'a11y-story', code: 'buy', occurredAt: at, url: `https://shop.example/item/${n}`, title: `Item ${n}`, messageId: `a11y-story-${n}` })) }, as(secretKey))
    const lead = (await crumbs.gql('mutation($i: IdentifyInput!) { identify(input: $i) { lead { id } } }', { i: { appId: app.id, deviceId: 'a11y-story', email: 'story@example.test' } }, as(secretKey))).identify.lead
    await tab.setViewportSize({ width: 1280, height: 800 })
    await tab.goto(`${crumbs.url}/apps/${app.id}/leads/${lead.id}`)
    await settled(tab)
    const story = tab.getByTestId('lead-narrative')
    await until(async () => (await story.getAttribute('tabindex')) === '0', 10000, 'the long story taking the focus')
    assert.deepEqual(await scrollers(tab), [{ el: 'pre[lead-narrative]', tabindex: '0', role: 'region', name: 'Story' }])
    await story.focus()
    assert.equal(await tab.evaluate(() => document.activeElement.dataset.testid), 'lead-narrative')

    // Every page, on a phone, where tables scroll sideways.
    const found = []
    await tab.setViewportSize({ width: 375, height: 812 })
    for (const path of [...appPages(), `/apps/${app.id}/leads/${lead.id}`]) {
      await tab.goto(crumbs.url + path)
      await settled(tab)
      await tab.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))))
      for (const s of await scrollers(tab)) if (!s.name.trim() || ['generic', 'none', ''].includes(s.role)) found.push(`${path}: ${JSON.stringify(s)}`)
    }
    assert.deepEqual(found, [])
  } finally {
    await tab.close()
  }
})

// Results that appeared in a role=status made on the spot (a screen reader
// may not read a region added with its text), errors checked as you type
// said as alerts at every keystroke, and a refusal naming a field that no
// field of the form shows, not shown at all.
test('results are said once, errors as alerts or on their field', async () => {
  const tab = await browser.context.newPage()
  await signIn(tab)
  tab.on('dialog', (d) => d.accept())
  const b = `${crumbs.url}/apps/${shop.app.id}`
  // Live regions the page adds while it runs, with their text already in them.
  await tab.addInitScript(() => {
    window.__addedLive = []
    new MutationObserver((list) => {
      for (const m of list) for (const n of m.addedNodes) {
        if (n.nodeType !== 1) continue
        for (const e of [n, ...n.querySelectorAll('*')]) {
          if (e.matches('[role=status], [role=log], [aria-live]:not([aria-live=off])') && e.textContent.trim() && !/^Loading/.test(e.textContent.trim())) window.__addedLive.push(e.textContent.trim().slice(0, 80))
        }
      }
    }).observe(document, { childList: true, subtree: true })
  })
  const addedLive = () => tab.evaluate(() => window.__addedLive.splice(0))
  try {
    // Settings: an origin checked as typed marks its field, without an alert at each keystroke.
    await tab.goto(`${b}/settings`)
    await tab.fill('#set-origins', 'not a url')
    const origins = tab.locator('#set-origins')
    await until(async () => (await origins.getAttribute('aria-invalid')) === 'true', 5000, 'the field marked invalid')
    const desc = await origins.getAttribute('aria-describedby')
    assert.match(desc, /set-origins-error/)
    assert.equal(await tab.locator('#set-origins-error').getAttribute('role'), null)
    assert.match(await tab.locator('#set-origins-error').textContent(), /is not a URL/)
    await tab.fill('#set-origins', '')
    // A refusal of the server after Save is an alert on its field.
    await tab.fill('#set-tz', 'Mars/Olympus')
    await tab.getByRole('button', { name: 'Save settings' }).click()
    await tab.locator('#set-tz-error[role=alert]').waitFor()
    assert.equal(await tab.locator('#set-tz').getAttribute('aria-invalid'), 'true')
    assert.match(await tab.locator('#set-tz').getAttribute('aria-describedby'), /set-tz-error/)
    await tab.fill('#set-tz', 'UTC')
    // Made: said through the page's one live region.
    await tab.fill('#tok-name', 'Kiosk')
    await tab.getByRole('button', { name: 'Create token' }).click()
    assert.equal(await said(tab, 'Ingest token Kiosk created'), true)
    await tab.getByTestId('ingest-url').waitFor()
    assert.deepEqual(await addedLive(), [])

    // Definitions: a code checked as typed; made, said (the page is the list again).
    await tab.goto(`${b}/definitions/new`)
    await tab.fill('#def-code', 'Bad Code')
    await tab.locator('#def-code-error').waitFor()
    assert.equal(await tab.locator('#def-code-error').getAttribute('role'), null)
    assert.equal(await tab.locator('#def-code').getAttribute('aria-invalid'), 'true')
    await tab.fill('#def-code', 'said_code')
    await tab.fill('#def-name', 'Said code')
    await tab.getByRole('button', { name: 'Create definition' }).click()
    assert.equal(await said(tab, 'Definition Said code created.'), true)
    // Goals: added, said.
    await tab.goto(`${b}/goals`)
    await tab.fill('#goal-name', 'Said goal')
    await tab.getByRole('button', { name: 'Add goal' }).click()
    assert.equal(await said(tab, 'Goal Said goal added.'), true)

    // Members: the invitation link.
    await tab.goto(`${b}/members`)
    await tab.fill('#inv-email', 'said@example.test')
    await tab.getByRole('button', { name: 'Create invitation' }).click()
    assert.equal(await said(tab, 'Invitation for said@example.test created'), true)
    await tab.getByTestId('invitation-link').waitFor()
    assert.deepEqual(await addedLive(), [])

    // A refusal about a field the form shows no Field for (a rule of the trigger) was said nowhere: it is in the form's alert.
    await tab.goto(`${b}/automations/new`)
    await tab.fill('#rule-name', 'Refused')
    await tab.getByRole('button', { name: 'Add rule' }).click()
    await tab.getByLabel('Rule 1 field').fill('colour')
    await tab.fill('#act-url', 'https://example.com/hook')
    await tab.getByRole('button', { name: 'Create rule' }).click()
    await tab.getByRole('alert').filter({ hasText: 'unknown field "colour"' }).waitFor({ timeout: 10000 })

    // A rule: Send test, Test rule; the delivery log: Replay and Replay matches.
    await tab.goto(`${b}/automations/${shop.rule.id}`)
    await tab.getByRole('button', { name: /^Send test to .* \(1 of 2\)$/ }).click()
    assert.equal(await said(tab, /^Test sent to .*: answered 200/), true)
    await tab.getByTestId('test-delivery').waitFor()
    await tab.getByRole('button', { name: 'Test rule' }).click()
    assert.equal(await said(tab, /past events would have fired/), true)
    await tab.getByTestId('test-result').waitFor()
    assert.deepEqual(await addedLive(), [])
    await tab.goto(`${b}/automations/${shop.rule.id}/deliveries`)
    await tab.getByRole('button', { name: /^Replay delivery of event / }).first().click()
    assert.equal(await said(tab, /sent again: /), true)
    await tab.getByRole('button', { name: 'Replay matches' }).click()
    assert.equal(await said(tab, /matching events? queued again/), true)
    await tab.getByTestId('replay-result').waitFor()
    assert.deepEqual(await addedLive(), [])
  } finally {
    await tab.close()
  }
})
