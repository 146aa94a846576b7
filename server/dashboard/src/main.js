// The dashboard app: session start-up, the shell (navigation, app switcher)
// and the routes. Every page has its own URL.
import { render } from 'preact'
import { useEffect, useRef, useState } from 'preact/hooks'
import { currentUser, onSession, refresh, signOut } from './api.js'
import { justNavigated, match, navigate, useLocation } from './router.js'
import { Async, announce, html, useQuery } from './ui.js'
import { Account, Invitation, SignIn } from './pages/auth.js'
import { AuditLog, Members, NewApp, Settings, Setup } from './pages/apps.js'
import { Automations, Deliveries, RuleForm } from './pages/automations.js'
import { DefinitionForm, Definitions, UnknownCodes } from './pages/definitions.js'
import { Funnels, Goals, Overview, Pages, Sources } from './pages/insights.js'
import { EventBrowser, Live } from './pages/browse.js'
import { DevicePage, LeadPage, Leads } from './pages/leads.js'
import './style.css'

const appPages = [
  ['', Overview],
  ['/pages', Pages],
  ['/sources', Sources],
  ['/funnels', Funnels],
  ['/goals', Goals],
  ['/events', EventBrowser],
  ['/live', Live],
  ['/definitions', Definitions],
  ['/definitions/new', DefinitionForm],
  ['/definitions/:defId', DefinitionForm],
  ['/unknown', UnknownCodes],
  ['/leads', Leads],
  ['/leads/:leadId', LeadPage],
  ['/devices/:deviceId', DevicePage],
  ['/setup', Setup],
  ['/settings', Settings],
  ['/members', Members],
  ['/automations', Automations],
  ['/automations/new', RuleForm],
  ['/automations/:ruleId', RuleForm],
  ['/automations/:ruleId/deliveries', Deliveries],
  ['/audit', AuditLog],
]

const nav = [
  ['Insights', [['', 'Overview'], ['/pages', 'Pages'], ['/sources', 'Sources'], ['/funnels', 'Funnels'], ['/goals', 'Goals'], ['/events', 'Event browser'], ['/live', 'Live']]],
  ['Visitor events', [['/definitions', 'Definitions'], ['/unknown', 'Unknown codes']]],
  ['People', [['/leads', 'Leads']]],
  ['Automations', [['/automations', 'Rules']]],
  ['App', [['/setup', 'Install'], ['/settings', 'Settings'], ['/members', 'Members'], ['/audit', 'Audit log']]],
]

export const APP_QUERY = `query($id: ID!) { app(id: $id) { id name timezone allowedOrigins setAsideOrigins { entry reason } retentionDays secretKeyHint secretKeyRotatedAt viewerRole
  eventDefinitions { id code name color description enabled builtIn triggerCount firstTriggeredAt lastTriggeredAt } } apps { id name } }`

/**
 * The main navigation. On a narrow screen (style.css) its links fold behind
 * a Menu button, so that they do not come before every page's content; the
 * button says whether they show (aria-expanded), Escape folds them and
 * leaves the focus on the button, and following a link folds them. On a
 * wide screen the button is hidden and the links always show.
 */
function Sidebar({ path, children }) {
  const [open, setOpen] = useState(false)
  const button = useRef(null)
  useEffect(() => setOpen(false), [path])
  const onKeyDown = (e) => {
    if (e.key !== 'Escape' || !open) return
    setOpen(false)
    if (getComputedStyle(button.current).display !== 'none') button.current.focus()
  }
  return html`<nav class=${`sidebar${open ? ' open' : ''}`} aria-label="Main" onKeyDown=${onKeyDown}>
    <div class="nav-bar"><a class="brand" href="/">Crumbs</a>
      <button type="button" class="secondary menu-toggle" ref=${button} aria-expanded=${open ? 'true' : 'false'} aria-controls="nav-menu" onClick=${() => setOpen(!open)}>Menu</button></div>
    <div id="nav-menu" class="nav-menu">${children}</div>
  </nav>`
}

function AppShell({ appId, rest, path }) {
  const q = useQuery(APP_QUERY, { id: appId }, [appId])
  let page = null, params = {}
  for (const [p, C] of appPages) {
    const m = match(p || '', rest)
    if (m) {
      page = C
      params = m
      break
    }
  }
  const base = `/apps/${encodeURIComponent(appId)}`
  return html`<a class="skip" href="#main">Skip to content</a><div class="layout">
    <${Sidebar} path=${path}>
      ${q.data && html`<label class="app-switch"><span class="sr-only">App</span>
        <select aria-label="App" value=${appId} onChange=${(e) => (e.target.value === '+' ? navigate('/new') : navigate(`/apps/${encodeURIComponent(e.target.value)}`))}>
          ${q.data.apps.map((a) => html`<option value=${a.id}>${a.name}</option>`)}
          <option value="+">+ New app…</option>
        </select></label>`}
      ${nav.map(([group, items]) => html`<div class="nav-group"><h2>${group}</h2><ul>
        ${items.map(([p, label]) => html`<li><a href=${base + p} aria-current=${rest === p || (p && rest.startsWith(p + '/')) ? 'page' : undefined}>${label}</a></li>`)}
      </ul></div>`)}
      <div class="nav-group"><ul>
        <li><a href="/account" aria-current=${path === '/account' ? 'page' : undefined}>Account</a></li>
        <li><button class="link" onClick=${() => (signOut(), navigate('/signin'), announce('Signed out.'))}>Sign out</button></li>
      </ul></div>
    <//>
    <main id="main" tabindex="-1">
      <${Async} q=${q}>${(d) =>
        page
          ? html`<${page} key=${path} app=${d.app} defs=${d.app.eventDefinitions} reloadApp=${q.reload} base=${base} ...${params} />`
          : html`<h1>Not found</h1><p>No such page. <a href=${base}>Back to the overview</a>.</p>`}<//>
    </main>
  </div>`
}

/** / : the first app's overview, or the first-run screen when there is none. */
function Home() {
  const q = useQuery('{ apps { id } }', {}, [])
  useEffect(() => {
    if (q.data) navigate(q.data.apps.length ? `/apps/${encodeURIComponent(q.data.apps[0].id)}` : '/new', true)
  }, [q.data])
  return html`<main id="main" class="narrow"><${Async} q=${q}>${() => html`<p>Opening…</p>`}<//></main>`
}

/**
 * Where ?next= says to go after signing in: a path of this origin, else /.
 * Read as the browser reads it, so /\host (a backslash is a slash) is
 * another origin, which history cannot go to.
 */
function nextPath() {
  try {
    const u = new URL(new URLSearchParams(location.search).get('next') || '/', location.origin)
    if (u.origin === location.origin) return u.pathname + u.search
  } catch {}
  return '/'
}

function App() {
  const path = useLocation().split('?')[0]
  const [user, setUser] = useState(currentUser())
  const [ready, setReady] = useState(false)
  useEffect(() => {
    const off = onSession(setUser)
    refresh().catch(() => {}).finally(() => setReady(true))
    return off
  }, [])
  // After navigating inside the app, focus moves to the new page's title
  // (screen readers announce it; Tab continues from there).
  useEffect(() => {
    const t = document.getElementById('page-title')
    if (t && justNavigated()) t.focus({ preventScroll: true })
  })
  if (!ready) return html`<main id="main" class="narrow"><p role="status">Loading…</p></main>`
  if (path === '/invitation') return html`<${Invitation} />`
  if (!user) {
    if (path !== '/signin') {
      const next = location.pathname + location.search
      setTimeout(() => navigate(`/signin${next && next !== '/' ? `?next=${encodeURIComponent(next)}` : ''}`, true))
      return null
    }
    return html`<${SignIn} />`
  }
  if (path === '/signin') {
    setTimeout(() => navigate(nextPath(), true))
    return null
  }
  if (path === '/') return html`<${Home} />`
  if (path === '/new') return html`<${NewApp} />`
  if (path === '/account') return html`<${Account} user=${user} />`
  const m = path.match(/^\/apps\/([^/]+)(\/.*)?$/)
  if (m) return html`<${AppShell} appId=${decodeURIComponent(m[1])} rest=${(m[2] || '').replace(/\/$/, '')} path=${path} />`
  return html`<main id="main" class="narrow"><h1>Not found</h1><p><a href="/">Home</a></p></main>`
}

// On a phone a wide table scrolls inside itself (style.css), and a lead's
// long story does; one with nothing focusable in it could not be scrolled
// with the keyboard, so it takes the focus itself while it scrolls (a
// table's caption names it, a story its heading: leads.js).
let tablesQueued = false
function focusableTables() {
  tablesQueued = false
  for (const t of document.querySelectorAll('main table, main .narrative')) {
    const needs = (t.scrollWidth > t.clientWidth || (t.tagName === 'PRE' && t.scrollHeight > t.clientHeight)) && !t.querySelector('a[href], button, input, select, textarea, [tabindex]')
    if (needs && !t.dataset.scrolls) {
      t.tabIndex = 0
      t.dataset.scrolls = '1'
    } else if (!needs && t.dataset.scrolls) {
      t.removeAttribute('tabindex')
      delete t.dataset.scrolls
    }
  }
}
function queueTables() {
  if (tablesQueued) return
  tablesQueued = true
  requestAnimationFrame(focusableTables)
}
new MutationObserver(queueTables).observe(document.getElementById('root'), { childList: true, subtree: true })
addEventListener('resize', queueTables)

render(html`<${App} />`, document.getElementById('root'))
