// Leads (search, list), the lead page (timeline, devices, moves, fields,
// export, erase) and the device page.
import { useState } from 'preact/hooks'
import { gql } from '../api.js'
import { useQueryParams } from '../router.js'
import { EVENT_FIELDS, EventTable } from './browse.js'
import { Async, ErrorBox, Field, JsonText, PageHead, Pager, announce, fmtNum, fmtTime, focusOn, html, rendered, useAction, useQuery, useTitle, useUrlState } from '../ui.js'

export function Leads({ app, base }) {
  useTitle(`Leads · ${app.name}`)
  const [q, setQ] = useQueryParams()
  const search = q.get('search') || ''
  const after = q.get('after') || null
  const [text, setText] = useUrlState(search)
  const r = useQuery('query($a: ID!, $s: String, $after: String) { leads(appId: $a, search: $s, first: 50, after: $after) { edges { node { id email name eventCount firstSeenAt lastSeenAt } } pageInfo { hasNextPage endCursor } } }',
    { a: app.id, s: search || null, after }, [app.id, search, after])
  return html`<${PageHead} title="Leads" />
    <form role="search" class="row" onSubmit=${(e) => (e.preventDefault(), setQ({ search: text, after: null }))}>
      <label for="lead-search">Search by email or name</label>
      <input id="lead-search" type="search" value=${text} onInput=${(e) => setText(e.target.value)} />
      <button type="submit">Search</button>
    </form>
    <${Async} q=${r}>${(d) => html`<table><caption class="sr-only">Leads</caption>
      <thead><tr><th scope="col">Email</th><th scope="col">Name</th><th scope="col" class="num">Events</th><th scope="col">First seen</th><th scope="col">Last seen</th></tr></thead>
      <tbody>${d.leads.edges.map(({ node: l }) => html`<tr><td><a href=${`${base}/leads/${l.id}`}>${l.email}</a></td><td>${l.name || '–'}</td><td class="num">${fmtNum(l.eventCount)}</td><td>${fmtTime(l.firstSeenAt, app.timezone)}</td><td>${fmtTime(l.lastSeenAt, app.timezone)}</td></tr>`)}</tbody></table>
      ${d.leads.edges.length === 0 && html`<p class="muted">No leads${search ? ' match' : ' yet: leads appear when a visitor is identified'}.</p>`}
      <${Pager} label="Pages of leads" pageInfo=${d.leads.pageInfo} />`}<//>`
}

const LEAD = `query($id: ID!, $after: String) { lead(id: $id) { id email name fields eventCount firstSeenAt lastSeenAt createdAt
  devices { id userAgent firstSeenAt lastSeenAt }
  deviceMoves { deviceId movedAt fromLead { id email } toLead { id email } }
  timeline(first: 50, after: $after) { edges { node { ${EVENT_FIELDS} } } pageInfo { hasNextPage endCursor } } } }`

/** Every page of a lead's timeline, for export. */
async function exportLead(id) {
  let after = null, lead = null
  const events = []
  do {
    const d = await gql(LEAD, { id, after })
    lead = d.lead
    events.push(...d.lead.timeline.edges.map((e) => e.node))
    after = d.lead.timeline.pageInfo.hasNextPage ? d.lead.timeline.pageInfo.endCursor : null
  } while (after)
  const { timeline, ...rest } = lead
  return { ...rest, events }
}

export function LeadPage({ app, base, leadId }) {
  const [q] = useQueryParams()
  const after = q.get('after') || null
  const r = useQuery(LEAD, { id: leadId, after }, [leadId, after])
  const [confirmText, setConfirmText] = useState('')
  const [erased, setErased] = useState(null)
  const erase = useAction()
  const exp = useAction()
  useTitle(r.data ? `${r.data.lead.email} · ${app.name}` : `Lead · ${app.name}`)
  if (erased) {
    return erased.done
      ? html`<${PageHead} title="Lead erased" /><p>Erased ${erased.email}: ${fmtNum(erased.deletedDevices)} devices and ${fmtNum(erased.deletedEvents)} events.</p><p><a href=${`${base}/leads`}>Back to leads</a></p>`
      : html`<${PageHead} title="Erasing lead" /><p>Erasing ${erased.email}: ${fmtNum(erased.deletedEvents)} events so far. It goes on in the server even if you leave this page; its receipt is in the audit log when it is done.</p>${erased.failures > 0 && html`<p role="alert">It failed ${fmtNum(erased.failures)}× so far (last: ${erased.lastFailureCode}); the server retries it, less often after each failure, and its log says why.</p>`}<p><a href=${`${base}/leads`}>Back to leads</a></p>`
  }
  return html`<${Async} q=${r}>${({ lead }) => html`
    <${PageHead} title=${lead.email}>
      <button class="secondary" disabled=${exp.busy} onClick=${() => exp.run(async () => {
        const data = await exportLead(lead.id)
        const a = document.createElement('a')
        a.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' }))
        a.download = `crumbs-lead-${lead.id}.json`
        a.textContent = 'Export'
        document.body.appendChild(a)
        a.click()
        a.remove()
        setTimeout(() => URL.revokeObjectURL(a.href), 10000)
      })}>Export (JSON)</button>
    <//>
    <${ErrorBox} error=${exp.error} />
    <div class="two">
      <section class="card"><h2>Lead</h2><dl class="facts">
        <dt>Name</dt><dd>${lead.name || '–'}</dd><dt>Events</dt><dd data-testid="lead-events">${fmtNum(lead.eventCount)}</dd>
        <dt>First seen</dt><dd>${fmtTime(lead.firstSeenAt, app.timezone)}</dd><dt>Last seen</dt><dd>${fmtTime(lead.lastSeenAt, app.timezone)}</dd></dl>
        <h3>Fields</h3>${Object.keys(lead.fields).length ? html`<${JsonText} value=${lead.fields} />` : html`<p class="muted">None.</p>`}
      </section>
      <section class="card"><h2>Devices</h2><ul class="break">${lead.devices.map((d) => html`<li><a href=${`${base}/devices/${encodeURIComponent(d.id)}`}>${d.id}</a><div class="muted small">${d.userAgent || 'unknown browser'} · last seen ${fmtTime(d.lastSeenAt, app.timezone)}</div></li>`)}</ul>
        ${lead.deviceMoves.length > 0 && html`<h3>Device moves</h3><ul class="break">${lead.deviceMoves.map((m) => html`<li>${m.deviceId}: ${m.fromLead ? m.fromLead.email : 'anonymous'} → ${m.toLead.email} (${fmtTime(m.movedAt, app.timezone)})</li>`)}</ul>`}
      </section>
    </div>
    <${Narrative} id=${lead.id} />
    <h2>Timeline</h2>
    <${EventTable} events=${lead.timeline.edges.map((e) => e.node)} base=${base} tz=${app.timezone} showWho=${false} caption="Timeline" />
    <${Pager} label="Pages of the timeline" pageInfo=${lead.timeline.pageInfo} />
    <form class="card danger-zone" onSubmit=${(e) => {
      e.preventDefault()
      erase.run(async () => {
        // A long erasure is answered before it ends (done: false): follow it.
        const fields = 'erased deletedDevices deletedEvents done erasureId failures lastFailureCode'
        let d = (await gql(`mutation($a: ID!, $e: String!) { eraseLead(appId: $a, email: $e) { ${fields} } }`, { a: app.id, e: lead.email })).eraseLead
        setErased({ ...d, email: lead.email })
        // The form is gone: the focus goes to the page's new title.
        rendered().then(() => focusOn(document.getElementById('page-title')))
        while (!d.done) {
          await new Promise((resolve) => setTimeout(resolve, 2000))
          d = (await gql(`query($a: ID!, $id: ID!) { erasure(appId: $a, id: $id) { ${fields} } }`, { a: app.id, id: d.erasureId })).erasure
          setErased({ ...d, email: lead.email })
        }
        // The progress is not a live region (it changes every 2 seconds): the end is said once.
        announce(`Erased ${lead.email}: ${fmtNum(d.deletedDevices)} devices and ${fmtNum(d.deletedEvents)} events.`)
      })
    }}>
      <h2>Erase this lead</h2>
      <p>Deletes the lead, its devices and all their events for good (right to erasure). Export first if you need a copy.</p>
      <${Field} label=${`Type the email (${lead.email}) to confirm`} id="erase-confirm"><input id="erase-confirm" autocomplete="off" value=${confirmText} onInput=${(e) => setConfirmText(e.target.value)} /><//>
      <${ErrorBox} error=${erase.error} />
      <button type="submit" class="danger" disabled=${erase.busy || confirmText.trim().toLowerCase() !== lead.email.toLowerCase()}>Erase lead and all events</button>
    </form>`}<//>`
}

/**
 * The lead's visits as readable text (for a person, or to paste into a
 * prompt), loaded on its own. A long story scrolls inside itself and then
 * takes the focus (main.js): it is a region named by its heading, so that
 * a screen reader says "Story, region" there, not nothing.
 */
function Narrative({ id }) {
  const q = useQuery('query($id: ID!) { lead(id: $id) { id narrative } }', { id }, [id])
  return html`<section class="card"><h2 id="lead-story-title">Story</h2>
    <${Async} q=${q}>${(d) => html`<pre class="narrative" role="region" aria-labelledby="lead-story-title" data-testid="lead-narrative">${d.lead.narrative}</pre>`}<//></section>`
}

export function DevicePage({ app, base, deviceId }) {
  useTitle(`Device · ${app.name}`)
  const [q] = useQueryParams()
  const after = q.get('after') || null
  const r = useQuery(`query($a: ID!, $d: ID!, $after: String) { device(appId: $a, deviceId: $d) { id userAgent firstSeenAt lastSeenAt lead { id email }
    timeline(first: 50, after: $after) { edges { node { ${EVENT_FIELDS} } } pageInfo { hasNextPage endCursor } } } }`, { a: app.id, d: deviceId, after }, [deviceId, after])
  return html`<${PageHead} title="Device" />
    <${Async} q=${r}>${({ device: d }) => html`
      <section class="card"><dl class="facts"><dt>Device id</dt><dd><code>${d.id}</code></dd><dt>Browser</dt><dd>${d.userAgent || '–'}</dd>
        <dt>Lead</dt><dd>${d.lead ? html`<a href=${`${base}/leads/${d.lead.id}`}>${d.lead.email}</a>` : 'anonymous'}</dd>
        <dt>First seen</dt><dd>${fmtTime(d.firstSeenAt, app.timezone)}</dd><dt>Last seen</dt><dd>${fmtTime(d.lastSeenAt, app.timezone)}</dd></dl></section>
      <h2>Timeline</h2>
      <${EventTable} events=${d.timeline.edges.map((e) => e.node)} base=${base} tz=${app.timezone} showWho=${false} caption="Timeline" />
      <${Pager} label="Pages of the timeline" pageInfo=${d.timeline.pageInfo} />`}<//>`
}
