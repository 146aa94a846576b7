// The event browser (rules, paging) and the live stream.
import { useEffect, useRef, useState } from 'preact/hooks'
import { subscribeLive } from '../api.js'
import { useQueryParams } from '../router.js'
import { RulesEditor, cleanRules, readRules } from '../rules.js'
import { Async, JsonText, PageHead, Pager, Swatch, distinct, fmtTime, html, useQuery, useTitle, useUrlState } from '../ui.js'

export const EVENT_FIELDS = 'id code url referrer title properties source occurredAt receivedAt definition { name color description } device { id } lead { id email }'

/** What an event's row is called: its definition and time (the event's name says which of the same minute). */
const eventName = (e, tz) => `${e.definition.name} at ${fmtTime(e.occurredAt, tz)}`

/** One event as a table row; every value is text. name: eventName, told apart from its neighbours'. */
export function EventRow({ e, base, tz, showWho = true, name = eventName(e, tz) }) {
  const [open, setOpen] = useState(false)
  const hasProps = e.properties && Object.keys(e.properties).length > 0
  return html`<tr>
    <td>${fmtTime(e.occurredAt, tz)}</td>
    <td><${Swatch} color=${e.definition.color} /> <strong>${e.definition.name}</strong> <code>${e.code}</code>
      ${e.definition.description && html`<div class="muted small">${e.definition.description}</div>`}</td>
    <td class="url"><div>${e.title}</div><div class="muted small">${e.url}</div></td>
    <td>${e.source}</td>
    ${showWho && html`<td>${e.lead ? html`<a href=${`${base}/leads/${e.lead.id}`}>${e.lead.email}</a>` : e.device ? html`<a href=${`${base}/devices/${encodeURIComponent(e.device.id)}`}>device ${e.device.id.slice(0, 12)}</a>` : '–'}</td>`}
    <td>${hasProps ? html`<button class="link" aria-expanded=${open ? 'true' : 'false'} onClick=${() => setOpen(!open)}>${open ? 'Hide' : 'Show'} properties<span class="sr-only"> of ${name}</span></button>${open && html`<${JsonText} value=${e.properties} />`}` : '–'}</td>
  </tr>`
}

export function EventTable({ events, base, tz, showWho = true, caption = 'Events' }) {
  const names = distinct(events.map((e) => eventName(e, tz)))
  return html`<table class="events"><caption class="sr-only">${caption}</caption>
  <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">Page</th><th scope="col">Source</th>${showWho && html`<th scope="col">Who</th>`}<th scope="col">Properties</th></tr></thead>
  <tbody>${events.map((e, i) => html`<${EventRow} key=${e.id} e=${e} base=${base} tz=${tz} showWho=${showWho} name=${names[i]} />`)}</tbody></table>`
}

/** Rules, combination and page cursor live in the URL (?rules=…&match=any&after=…). */
export function EventBrowser({ app, base }) {
  useTitle(`Event browser · ${app.name}`)
  const [q, setQ] = useQueryParams()
  let urlRules = []
  try {
    urlRules = readRules(JSON.parse(q.get('rules') || '[]'))
  } catch {}
  const matchAny = q.get('match') === 'any'
  const after = q.get('after') || null
  const key = q.toString()
  // Back and forward change the rules in the URL: the form shows them too.
  const urlKey = `${q.get('rules')} ${matchAny}`
  const [rules, setRules] = useUrlState(urlRules, urlKey)
  const [any, setAny] = useUrlState(matchAny, urlKey)
  const r = useQuery(`query($a: ID!, $rules: [RuleInput!], $m: RuleCombination, $after: String) { events(appId: $a, rules: $rules, match: $m, first: 25, after: $after) { edges { node { ${EVENT_FIELDS} } } pageInfo { hasNextPage endCursor } } }`,
    { a: app.id, rules: cleanRules(urlRules), m: matchAny ? 'any' : 'all', after }, [app.id, key])
  const apply = (e) => {
    e.preventDefault()
    const c = cleanRules(rules)
    setQ({ rules: c.length ? JSON.stringify(c) : null, match: any ? 'any' : null, after: null })
  }
  return html`<${PageHead} title="Event browser" />
    <form class="card" onSubmit=${apply}>
      <h2>Rules</h2>
      <${RulesEditor} idp="browse" rules=${rules} onChange=${setRules} />
      <div class="row">
        <label for="match">Match</label>
        <select id="match" value=${any ? 'any' : 'all'} onChange=${(e) => setAny(e.target.value === 'any')}><option value="all">all rules</option><option value="any">any rule</option></select>
        <button type="submit">Apply</button>
      </div>
    </form>
    <${Async} q=${r}>${(d) => html`
      <${EventTable} events=${d.events.edges.map((x) => x.node)} base=${base} tz=${app.timezone} />
      ${d.events.edges.length === 0 && html`<p class="muted">No events match.</p>`}
      <${Pager} label="Pages of events" pageInfo=${d.events.pageInfo} />`}<//>`
}

// Rows the live page shows, and holds while paused.
const LIVE_ROWS = 200

export function Live({ app, defs, base }) {
  useTitle(`Live · ${app.name}`)
  // Shown rows and, while paused, the arrivals held back; one state, so a
  // resume and a batch of arrivals apply in the order they happen.
  const [{ events, held }, setLive] = useState({ events: [], held: [] })
  const [paused, setPaused] = useState(false)
  const [code, setCode] = useState('')
  const [state, setState] = useState('connecting')
  const pausedRef = useRef(false)
  useEffect(() => {
    // A reconnect or a busy app sends hundreds of events a second: they are
    // applied in one update per 100 ms, not one table render each.
    let batch = [], timer = null
    const flush = () => {
      timer = null
      const fresh = batch.reverse().slice(0, LIVE_ROWS)
      batch = []
      const add = (list) => [...fresh, ...list].slice(0, LIVE_ROWS)
      setLive(pausedRef.current ? (s) => ({ ...s, held: add(s.held) }) : (s) => ({ ...s, events: add(s.events) }))
    }
    const stop = subscribeLive(app.id, EVENT_FIELDS, (ev) => {
      batch.push(ev)
      if (!timer) timer = setTimeout(flush, 100)
    }, setState)
    return () => {
      stop()
      clearTimeout(timer)
    }
  }, [app.id])
  const toggle = () => {
    if (paused) setLive((s) => ({ events: [...s.held, ...s.events].slice(0, LIVE_ROWS), held: [] }))
    pausedRef.current = !paused
    setPaused(!paused)
  }
  const shown = code ? events.filter((e) => e.code === code) : events
  return html`<${PageHead} title="Live" />
    <div class="row">
      <span role="status" class=${`conn ${state === 'open' ? 'ok' : ''}`}>${state === 'open' ? '● Connected' : `○ ${state}`}</span>
      <button class="secondary" onClick=${toggle}>${paused ? `Resume (${held.length} waiting)` : 'Pause'}</button>
      <label for="live-code">Code</label>
      <select id="live-code" value=${code} onChange=${(e) => setCode(e.target.value)}><option value="">All codes</option>${defs.map((d) => html`<option value=${d.code}>${d.name}</option>`)}</select>
    </div>
    ${shown.length === 0 ? html`<p class="muted">Waiting for events… They appear here within about a second of being stored.</p>` : html`<${EventTable} events=${shown} base=${base} tz=${app.timezone} caption="Live events" />`}`
}
