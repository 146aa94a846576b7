// Apps: the first-run screen (create an app, its secret once, install
// instructions, a live test event), settings and members.
import { useEffect, useState } from 'preact/hooks'
import { gql, subscribeLive } from '../api.js'
import { navigate } from '../router.js'
import { Async, CopyButton, ErrorBox, Field, PageHead, Swatch, announce, distinct, fmtNum, fmtTime, focusOn, html, removeItem, rendered, useAction, usePageFocus, useQuery, useTitle } from '../ui.js'

const zones = (() => {
  try {
    return Intl.supportedValuesOf('timeZone')
  } catch {
    return ['UTC']
  }
})()
const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC'

/** Checks allowed origins as typed: one per line, scheme://host[:port] only. Answers {origins, errors}. */
export function parseOrigins(text) {
  const origins = [], errors = []
  for (const line of text.split('\n').map((l) => l.trim()).filter(Boolean)) {
    let u
    try {
      u = new URL(line)
    } catch {
      errors.push(`"${line}" is not a URL (write it as https://example.com)`)
      continue
    }
    if (!/^https?:$/.test(u.protocol)) errors.push(`"${line}": only http and https origins`)
    else if (u.pathname !== '/' || u.search || u.hash || u.username || line.replace(/\/$/, '') !== u.origin) errors.push(`"${line}": an origin has no path, query or credentials (try ${u.origin})`)
    else origins.push(u.origin)
  }
  return { origins, errors }
}

const TimezoneInput = ({ id, value, onInput, ...aria }) => html`<input id=${id} list="zones" value=${value} onInput=${(e) => onInput(e.target.value)} autocomplete="off" ...${aria} />
  <datalist id="zones">${zones.map((z) => html`<option value=${z} />`)}</datalist>`

export function NewApp() {
  useTitle('Create an app')
  const apps = useQuery('{ apps { id } }', {}, [])
  const [name, setName] = useState('')
  const [tz, setTz] = useState(localZone)
  const [created, setCreated] = useState(null)
  const a = useAction()
  const submit = (e) => {
    e.preventDefault()
    a.run(async () => {
      const d = await gql('mutation($i: CreateAppInput!) { createApp(input: $i) { app { id name timezone } secretKey } }', { i: { name, timezone: tz } })
      setCreated(d.createApp)
      // The form is gone: the focus goes to the new page's title ("… is ready").
      await rendered()
      focusOn(document.getElementById('page-title'))
    })
  }
  const first = apps.data && apps.data.apps.length === 0
  if (!apps.data && !created) return html`<main id="main" class="narrow"><${Async} q=${apps}>${() => null}<//></main>`
  if (created)
    return html`<main id="main" class="narrow wide">
      <h1 id="page-title" tabindex="-1">${created.app.name} is ready</h1>
      <${InstallGuide} app=${created.app} secret=${created.secretKey} />
      <p><a class="button" href=${`/apps/${encodeURIComponent(created.app.id)}/definitions`}>Continue: define your visitor events →</a></p>
    </main>`
  return html`<main id="main" class="narrow">
    ${!first && html`<p><a href="/">← Back to the dashboard</a></p>`}
    <h1 id="page-title" tabindex="-1">${first ? 'Welcome to Crumbs' : 'Create an app'}</h1>
    ${first && html`<p>An app is one website or workspace you track. Create your first one; you can add more later.</p>`}
    <form class="card" onSubmit=${submit}>
      <${Field} label="App name" id="app-name" error=${a.fieldError('name')}><input id="app-name" required value=${name} onInput=${(e) => setName(e.target.value)} /><//>
      <${Field} label="Timezone (for reports)" id="app-tz" error=${a.fieldError('timezone')}><${TimezoneInput} id="app-tz" value=${tz} onInput=${setTz} /><//>
      <${ErrorBox} error=${a.otherError('name', 'timezone')} />
      <button type="submit" disabled=${a.busy}>Create app</button>
    </form>
  </main>`
}

/** Install instructions with a test event that shows up live. */
function InstallGuide({ app, secret }) {
  const origin = location.origin
  const tag = `<script async src="${origin}/crumbs.js" data-app-id="${app.id}"></script>`
  return html`
    ${secret && html`<section class="card notice">
      <h2>Secret key</h2>
      <p><strong>Copy it now: it is shown only once.</strong> It is for servers and the WordPress plugin, never for page source.</p>
      <p><code class="secret" data-testid="secret-key">${secret}</code> <${CopyButton} text=${secret} label="the secret key" /></p>
    </section>`}
    <section class="card"><h2>Add the script tag to your site</h2>
      <p>Put it in the <code>head</code> of every page. It sends <code>view</code>, <code>click</code> and <code>submit</code> by itself.</p>
      <pre class="code" data-testid="script-tag">${tag}</pre>
      <${CopyButton} text=${tag} label="the script tag" />
    </section>
    <section class="card"><h2>Or: WordPress</h2>
      <p>Install the Crumbs plugin, then paste these into <em>Settings → Crumbs</em> and press <em>Test connection</em>:</p>
      <dl class="facts">
        <dt>Crumbs server URL</dt><dd><code>${origin}</code> <${CopyButton} text=${origin} label="the server URL" /></dd>
        <dt>App ID</dt><dd><code data-testid="app-id">${app.id}</code> <${CopyButton} text=${app.id} label="the app ID" /></dd>
        <dt>Secret key</dt><dd>${secret ? html`<code>${secret}</code>` : html`<span class="muted">shown when the app is created or its key rotated (Settings)</span>`}</dd>
      </dl>
    </section>
    <${TestEvent} app=${app} secret=${secret} />`
}

function TestEvent({ app, secret }) {
  const [arrived, setArrived] = useState([])
  const [state, setState] = useState('connecting')
  const a = useAction()
  useEffect(() => subscribeLive(
    app.id,
    'id code url title receivedAt definition { name color }',
    (ev) => setArrived((l) => [ev, ...l].slice(0, 10)),
    setState,
  ), [app.id])
  const send = () => a.run(async () => {
    const headers = { 'Content-Type': 'application/json' }
    if (secret) headers.Authorization = `Bearer ${secret}`
    const res = await fetch('/graphql', {
      method: 'POST', headers,
      body: JSON.stringify({
        query: 'mutation($i: TriggerInput!) { trigger(input: $i) { accepted eventId } }',
        variables: { i: { appId: app.id, deviceId: `dashboard-test-${Math.random().toString(36).slice(2, 10)}`, code: 'view', url: `${location.origin}/crumbs-test-event`, title: 'Crumbs test event', source: 'api' } },
      }),
    })
    const j = await res.json()
    if (j.errors) throw Object.assign(new Error(j.errors[0].message), { code: j.errors[0].extensions && j.errors[0].extensions.code })
  })
  // Without the secret key (shown only when the app is made) the test event
  // is a browser's, from this page's origin: an app that takes browsers only
  // from its sites refuses it (the button could only answer FORBIDDEN).
  const origins = app.allowedOrigins || []
  const refused = !secret && (origins.length > 0 || (app.setAsideOrigins || []).length > 0) && !origins.includes(location.origin.toLowerCase())
  return html`<section class="card"><h2>Test it</h2>
    ${refused
      ? html`<p data-testid="test-refused">This app takes events from browsers only at ${origins.length ? origins.join(', ') : 'the origins set in Settings'} (<a href=${`/apps/${encodeURIComponent(app.id)}/settings`}>Settings</a>), so this page (${location.origin}) cannot send a test event. Open a page of your site with the script tag: its events appear below as soon as they are stored.</p>`
      : html`<p>Sends a <code>view</code> event to this app; it appears below as soon as it is stored. Events from your site appear here too.</p>`}
    <p class="muted" role="status">Live stream: ${state === 'open' ? 'connected' : state}</p>
    <${ErrorBox} error=${a.error} />
    ${!refused && html`<button onClick=${send} disabled=${a.busy}>Send a test event</button>`}
    <ul class="stream" aria-live="polite" data-testid="test-arrivals">
      ${arrived.map((e) => html`<li><${Swatch} color=${e.definition.color} /> <strong>${e.definition.name}</strong> <span>${e.title || e.url}</span> <span class="muted">${fmtTime(e.receivedAt)}</span></li>`)}
    </ul>
  </section>`
}

export function Setup({ app }) {
  useTitle(`Install · ${app.name}`)
  return html`<${PageHead} title="Install" /><${InstallGuide} app=${app} />`
}

export function Settings({ app, reloadApp }) {
  useTitle(`Settings · ${app.name}`)
  const [name, setName] = useState(app.name)
  const [tz, setTz] = useState(app.timezone)
  const [originsText, setOriginsText] = useState(app.allowedOrigins.join('\n'))
  const [retention, setRetention] = useState(app.retentionDays ? String(app.retentionDays) : '')
  const [saved, setSaved] = useState(false)
  const parsed = parseOrigins(originsText)
  const a = useAction()
  const save = (e) => {
    e.preventDefault()
    if (parsed.errors.length) return
    setSaved(false)
    a.run(async () => {
      await gql('mutation($id: ID!, $i: UpdateAppInput!) { updateApp(id: $id, input: $i) { id } }', { id: app.id, i: { name, timezone: tz, allowedOrigins: parsed.origins, retentionDays: retention ? Number(retention) : 0 } })
      setSaved(true)
      announce('Settings saved.')
      reloadApp()
    })
  }
  const [confirmRotate, setConfirmRotate] = useState(false)
  const [newSecret, setNewSecret] = useState(null)
  const rot = useAction()
  const fieldErr = (f) => a.fieldError((x) => x.toLowerCase().includes(f))
  return html`<${PageHead} title="Settings" />
    <form class="card" onSubmit=${save}>
      <h2>App</h2>
      <${Field} label="Name" id="set-name" error=${fieldErr('name')}><input id="set-name" required value=${name} onInput=${(e) => setName(e.target.value)} /><//>
      <${Field} label="Timezone" id="set-tz" error=${fieldErr('timezone')}><${TimezoneInput} id="set-tz" value=${tz} onInput=${setTz} /><//>
      <${Field} label="Allowed origins (one per line; empty allows any site)" id="set-origins" hint="Only browsers on these sites may send events, e.g. https://example.com"
        error=${(parsed.errors.length && parsed.errors.join('; ')) || fieldErr('origin')} typed=${parsed.errors.length > 0}>
        <textarea id="set-origins" rows="4" aria-invalid=${parsed.errors.length ? 'true' : 'false'} value=${originsText} onInput=${(e) => setOriginsText(e.target.value)}></textarea><//>
      <${SetAsideOrigins} app=${app} />
      <${Field} label="Keep events for (days; empty keeps them forever)" id="set-retention" error=${fieldErr('retention')} hint="Older events, and devices and leads left without events, are erased daily; each run is in the audit log.">
        <input id="set-retention" type="number" min="1" step="1" inputmode="numeric" value=${retention} onInput=${(e) => setRetention(e.target.value)} /><//>
      <${ErrorBox} error=${a.otherError(...['name', 'timezone', 'origin', 'retention'].map((f) => (x) => x.toLowerCase().includes(f)))} />
      ${saved && html`<p class="ok">Saved.</p>`}
      <button type="submit" disabled=${a.busy || parsed.errors.length > 0}>Save settings</button>
    </form>
    <section class="card"><h2>Secret key</h2>
      <dl class="facts"><dt>App ID</dt><dd><code>${app.id}</code></dd><dt>Key starts with</dt><dd><code>${app.secretKeyHint}</code></dd><dt>Set</dt><dd>${fmtTime(app.secretKeyRotatedAt)}</dd></dl>
      ${newSecret && html`<div class="notice" data-testid="new-secret"><p><strong>New secret key — copy it now, it is shown only once:</strong></p><p><code class="secret" data-testid="secret-key">${newSecret}</code> <${CopyButton} text=${newSecret} label="the new secret key" /></p></div>`}
      <${ErrorBox} error=${rot.error} />
      ${confirmRotate
        ? html`<p role="alert">The old key stops working at once: servers and the WordPress plugin using it must get the new one.</p>
          <button class="danger" disabled=${rot.busy} onClick=${() => rot.run(async () => {
            const d = await gql('mutation($id: ID!) { rotateAppSecret(id: $id) { secretKey } }', { id: app.id })
            setNewSecret(d.rotateAppSecret.secretKey)
            setConfirmRotate(false)
            reloadApp()
            // The confirmation is gone: the focus goes to the new key's Copy button,
            // once it is drawn (the app's reload draws the page again meanwhile).
            for (let i = 0; i < 50 && !focusOn(document.querySelector('[data-testid=new-secret] button')); i++) await rendered()
            announce('Secret key rotated. The new key is shown once: copy it now.')
          })}>Yes, rotate the key</button> <button class="secondary" id="rotate-cancel" onClick=${() => (setConfirmRotate(false), rendered().then(() => focusOn(document.getElementById('rotate-key'))))}>Cancel</button>`
        : html`<button class="secondary" id="rotate-key" onClick=${() => (setConfirmRotate(true), rendered().then(() => focusOn(document.getElementById('rotate-cancel'))))}>Rotate secret key…</button>`}
    </section>
    <${IngestTokens} app=${app} />
    ${app.viewerRole === 'owner' && html`<${DeleteApp} app=${app} />`}`
}

/** Deleting the app (owners): says what goes, asks for the app's name and the password, then opens the remaining apps. */
function DeleteApp({ app }) {
  const [typed, setTyped] = useState('')
  const [pw, setPw] = useState('')
  const del = useAction()
  const named = typed.trim() === app.name
  const submit = (e) => {
    e.preventDefault()
    if (!named) return
    del.run(async () => {
      await gql('mutation($a: ID!, $p: String!) { deleteApp(appId: $a, password: $p) }', { a: app.id, p: pw })
      navigate('/')
      announce(`The app ${app.name} was deleted.`)
    })
  }
  return html`<form class="card" onSubmit=${submit} aria-labelledby="delete-app-title">
    <h2 id="delete-app-title">Delete app</h2>
    <p>Deletes <strong>${app.name}</strong> (<code>${app.id}</code>) for everyone, and cannot be undone. At once its members lose it, its secret key, ingest tokens and app ID are refused, and its live streams and automations stop. Then everything in it is removed in the background: events, devices and leads, definitions, insights, matchers and goals, automation rules with their delivery log, ingest tokens, erasures and the audit log.</p>
    <${Field} label=${`Type the app's name, ${app.name}, to confirm`} id="delapp-name">
      <input id="delapp-name" autocomplete="off" required value=${typed} onInput=${(e) => setTyped(e.target.value)} /><//>
    <${Field} label="Your password" id="delapp-pw" error=${del.fieldError('password')}>
      <input id="delapp-pw" type="password" autocomplete="current-password" required value=${pw} onInput=${(e) => setPw(e.target.value)} /><//>
    <${ErrorBox} error=${del.error && !del.error.field && del.error} />
    <button type="submit" class="danger" disabled=${del.busy || !named}>Delete this app</button>
  </form>`
}

/** Saved origin entries that no browser can send, taken out of the list by an upgrade: shown until a save replaces them. */
function SetAsideOrigins({ app }) {
  const entries = app.setAsideOrigins || []
  if (!entries.length) return null
  return html`<div class="notice" role="note" data-testid="set-aside-origins">
    <p><strong>Set aside: ${entries.length === 1 ? 'an entry' : 'entries'} no browser can send.</strong> ${entries.length === 1 ? 'It' : 'They'} never matched a site, so ${entries.length === 1 ? 'it was' : 'they were'} taken out of the list above; add the origins you meant there.</p>
    <ul>${entries.map((o) => html`<li><code>${o.entry}</code>: ${o.reason}</li>`)}</ul>
    <p>${app.allowedOrigins.length
      ? 'Saving these settings removes this note.'
      : 'Until then browsers from every site are refused, as before. Saving these settings with the list empty allows every site.'}</p>
  </div>`
}

/** The names of the tokens' Revoke buttons: only the active ones have one, so only theirs count as alike. */
const tokenNames = (tokens) => distinct(tokens.map((t) => (t.revokedAt ? t.id : t.name)))

/** Ingest tokens for webhook senders: the token's URL is shown once, on creation. */
function IngestTokens({ app }) {
  const q = useQuery('query($a: ID!) { ingestTokens(appId: $a) { id name hint createdAt revokedAt } }', { a: app.id }, [app.id])
  const [name, setName] = useState('')
  const [made, setMade] = useState(null)
  const a = useAction()
  const act = useAction()
  const create = (e) => {
    e.preventDefault()
    a.run(async () => {
      const d = await gql('mutation($a: ID!, $n: String!) { createIngestToken(appId: $a, name: $n) { url ingestToken { name } } }', { a: app.id, n: name })
      setMade(d.createIngestToken)
      setName('')
      await q.reload()
      // Shown once: the focus goes to its Copy button, as for a signing secret.
      focusOn(document.querySelector('[data-testid=ingest-url] ~ button'))
      announce(`Ingest token ${d.createIngestToken.ingestToken.name} created. Its webhook URL is shown once: copy it now.`)
    })
  }
  return html`<section class="card"><h2 id="tokens-title">Ingest tokens</h2>
    <p>Webhook senders (a point of sale, billing, Bento-style integrations) post events to a URL holding a token. Revoke a token to stop its URL.</p>
    <${ErrorBox} error=${act.error} />
    <${Async} q=${q}>${(d) => { const names = tokenNames(d.ingestTokens); return d.ingestTokens.length === 0 ? html`<p class="muted">No tokens yet.</p>` : html`<table data-testid="ingest-tokens"><caption class="sr-only">Ingest tokens</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Starts with</th><th scope="col">Created</th><th scope="col">State</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${d.ingestTokens.map((t, i) => html`<tr key=${t.id}><td>${t.name}</td><td><code>${t.hint}</code></td><td>${fmtTime(t.createdAt)}</td>
        <td>${t.revokedAt ? `revoked ${fmtTime(t.revokedAt)}` : 'active'}</td>
        <td>${!t.revokedAt && html`<button class="link danger" disabled=${act.busy} onClick=${() => confirm(`Revoke the token ${t.name}? Senders using its URL are refused from now on.`) && removeItem(act, async () => {
          await gql('mutation($id: ID!) { revokeIngestToken(id: $id) { id } }', { id: t.id })
          await q.reload()
        // The row stays (revoked) without its button: the focus goes to the next token's Revoke.
        }, `Token ${t.name} revoked.`, '[data-testid=ingest-tokens] tbody tr:has(button)', d.ingestTokens.filter((x) => !x.revokedAt).indexOf(t), 'button', '#tokens-title')}>Revoke<span class="sr-only"> token ${names[i]}</span></button>`}</td></tr>`)}</tbody></table>` }}<//>
    <form onSubmit=${create}>
      <div class="row"><${Field} label="Token name" id="tok-name" error=${a.fieldError(() => true)}><input id="tok-name" required placeholder="Shop till" value=${name} onInput=${(e) => setName(e.target.value)} /><//></div>
      <${ErrorBox} error=${a.otherError(() => true)} />
      <button type="submit" class="secondary" disabled=${a.busy}>Create token</button>
    </form>
    ${made && html`<div class="notice"><p><strong>Webhook URL for ${made.ingestToken.name} — copy it now, it is shown only once.</strong> Replace <code>generic</code> with the integration's name (pos, billing, …).</p>
      <p><code class="secret" data-testid="ingest-url">${made.url}</code> <${CopyButton} text=${made.url} label="the webhook URL" /></p></div>`}
  </section>`
}

/** The audit log (owners): one receipt per erasure, export or retention run, without personal data. */
export function AuditLog({ app }) {
  useTitle(`Audit log · ${app.name}`)
  const [after, setAfter] = useState([])
  const cursor = after[after.length - 1] || null
  const q = useQuery('query($a: ID!, $after: String) { auditLog(appId: $a, first: 50, after: $after) { edges { node { id kind actorKind actorUserId subjectHash events devices leads tombstones createdAt } } pageInfo { hasNextPage endCursor } } }',
    { a: app.id, after: cursor }, [app.id, cursor])
  usePageFocus(q, cursor)
  return html`<${PageHead} title="Audit log" />
    <p class="muted">Every erasure, export and retention run, newest first. The subject is kept only as its SHA-256 (of the lowercased email, the device id or the date).</p>
    <${Async} q=${q}>${(d) => d.auditLog.edges.length === 0 ? html`<p class="muted">Nothing recorded yet.</p>` : html`<table data-testid="audit-table"><caption class="sr-only">Audit log</caption>
      <thead><tr><th scope="col">When</th><th scope="col">Kind</th><th scope="col">By</th><th scope="col">Subject (SHA-256)</th><th scope="col" class="num">Events</th><th scope="col" class="num">Devices</th><th scope="col" class="num">Leads</th><th scope="col" class="num">Tombstones</th></tr></thead>
      <tbody>${d.auditLog.edges.map(({ node: r }) => html`<tr key=${r.id}><td>${fmtTime(r.createdAt, app.timezone)}</td><td>${r.kind.replace(/_/g, ' ')}</td>
        <td>${r.actorKind === 'user' ? `user ${r.actorUserId || ''}` : r.actorKind.replace(/_/g, ' ')}</td><td><code class="hash" title=${r.subjectHash}>${r.subjectHash.slice(0, 16)}…</code></td>
        <td class="num">${fmtNum(r.events)}</td><td class="num">${fmtNum(r.devices)}</td><td class="num">${fmtNum(r.leads)}</td><td class="num">${fmtNum(r.tombstones)}</td></tr>`)}</tbody></table>
      <nav class="pager" aria-label="Pages of the audit log">
        ${after.length > 0 && html`<button class="secondary" onClick=${() => setAfter(after.slice(0, -1))}>← Newer</button>`}
        ${d.auditLog.pageInfo.hasNextPage && html`<button class="secondary" onClick=${() => setAfter([...after, d.auditLog.pageInfo.endCursor])}>Older →</button>`}
      </nav>`}<//>`
}

const ROLES = ['owner', 'editor', 'viewer']

export function Members({ app }) {
  useTitle(`Members · ${app.name}`)
  const q = useQuery(`query($a: ID!) { members(appId: $a) { role createdAt user { id name email } } invitations(appId: $a) { id email role createdAt expiresAt } me { id } }`, { a: app.id }, [app.id])
  const [email, setEmail] = useState('')
  const [role, setRole] = useState('viewer')
  const [link, setLink] = useState(null)
  const a = useAction()
  const invite = (e) => {
    e.preventDefault()
    a.run(async () => {
      const d = await gql('mutation($a: ID!, $e: String!, $r: Role!) { addMember(appId: $a, email: $e, role: $r) { invitationToken invitation { email } } }', { a: app.id, e: email, r: role })
      setLink({ email: d.addMember.invitation.email, url: `${location.origin}/invitation#${encodeURIComponent(d.addMember.invitationToken)}` })
      setEmail('')
      await q.reload()
      focusOn(document.querySelector('[data-testid=invitation-link] ~ button'))
      announce(`Invitation for ${d.addMember.invitation.email} created. Its link is shown once: copy it now.`)
    })
  }
  const act = useAction()
  const mut = (query, vars, said) => act.run(async () => {
    await gql(query, vars)
    await q.reload()
    if (said) announce(said)
  })
  // Removing a member or revoking an invitation takes its row away: the focus
  // goes to the next row's button, else the list's heading.
  const remove = (query, vars, rows, index, heading, said) => removeItem(act, async () => {
    await gql(query, vars)
    await q.reload()
  }, said, rows, index, 'button', heading)
  return html`<${PageHead} title="Members" />
    <${ErrorBox} error=${act.error} />
    <${Async} q=${q}>${(d) => html`
      <table data-testid="members"><caption id="members-title">Members of ${app.name}</caption>
        <thead><tr><th scope="col">Name</th><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Since</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${d.members.map((m, i) => html`<tr key=${m.user.id}>
          <td>${m.user.name}${m.user.id === d.me.id ? ' (you)' : ''}</td><td>${m.user.email}</td>
          <td><select aria-label=${`Role of ${m.user.email}`} value=${m.role} onChange=${(e) => mut('mutation($a: ID!, $u: ID!, $r: Role!) { setMemberRole(appId: $a, userId: $u, role: $r) { role } }', { a: app.id, u: m.user.id, r: e.target.value }, `${m.user.email} is now ${e.target.value === 'owner' ? 'an' : 'a'} ${e.target.value}.`)}>
            ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select></td>
          <td>${fmtTime(m.createdAt)}</td>
          <td><button class="link danger" disabled=${act.busy} onClick=${() => confirm(`Remove ${m.user.email} from ${app.name}?`) && remove('mutation($a: ID!, $u: ID!) { removeMember(appId: $a, userId: $u) }', { a: app.id, u: m.user.id }, '[data-testid=members] tbody tr', i, '#members-title', `${m.user.email} removed from ${app.name}.`)}>Remove<span class="sr-only"> ${m.user.email}</span></button></td>
        </tr>`)}</tbody>
      </table>
      <h2 id="invitations-title">Pending invitations</h2>
      ${d.invitations.length === 0 ? html`<p class="muted">None.</p>` : html`<table data-testid="invitations"><caption class="sr-only">Pending invitations</caption>
        <thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Expires</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${d.invitations.map((i, n) => html`<tr key=${i.id}><td>${i.email}</td><td>${i.role}</td><td>${fmtTime(i.expiresAt)}</td>
          <td><button class="link danger" disabled=${act.busy} onClick=${() => remove('mutation($a: ID!, $id: ID!) { revokeInvitation(appId: $a, id: $id) { id } }', { a: app.id, id: i.id }, '[data-testid=invitations] tbody tr', n, '#invitations-title', `Invitation of ${i.email} revoked.`)}>Revoke<span class="sr-only"> invitation of ${i.email}</span></button></td></tr>`)}</tbody></table>`}
    `}<//>
    <form class="card" onSubmit=${invite}>
      <h2>Invite someone</h2>
      <div class="row">
        <${Field} label="Email" id="inv-email" error=${a.fieldError(() => true)}><input id="inv-email" type="email" required value=${email} onInput=${(e) => setEmail(e.target.value)} /><//>
        <${Field} label="Role" id="inv-role"><select id="inv-role" value=${role} onChange=${(e) => setRole(e.target.value)}>${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}</select><//>
      </div>
      <p class="muted">Owners manage everything; editors change definitions and rules; viewers read.</p>
      <${ErrorBox} error=${a.otherError(() => true)} />
      <button type="submit" disabled=${a.busy}>Create invitation</button>
      ${link && html`<div class="notice"><p>Send this link to ${link.email} (works once, for 7 days; shown only now):</p><p><code class="secret" data-testid="invitation-link">${link.url}</code> <${CopyButton} text=${link.url} label="the invitation link" /></p></div>`}
    </form>`
}
