// Insights: overview with the per-definition chart, pages, sources, funnels and goals.
import { useMemo, useState } from 'preact/hooks'
import { gql } from '../api.js'
import { useQueryParams } from '../router.js'
import { Bars, TimeChart } from '../chart.js'
import { RANGES, rangeAt } from '../range.js'
import { RulesEditor, cleanRules, readRules } from '../rules.js'
import { Async, CodeSelect, ErrorBox, Field, PageHead, Swatch, announce, fmtDuration, fmtNum, fmtPct, fmtTime, focusAfterRemoval, focusOn, html, removeItem, rendered, useAction, useQuery, useTitle, useUrlState } from '../ui.js'

/** The range from the URL (?range=7d&tz=…), with the previous period of the same length. */
function useRange(app) {
  const [q, setQ] = useQueryParams()
  const key = Object.hasOwn(RANGES, q.get('range')) ? q.get('range') : '30d'
  const tz = q.get('tz') || app.timezone
  const range = useMemo(() => ({ key, tz, ...rangeAt(key, tz, Date.now()) }), [key, tz])
  const picker = html`<div class="row range-picker">
    <label for="range">Range</label>
    <select id="range" value=${key} onChange=${(e) => setQ({ range: e.target.value }, false, null, true)}>
      <option value="24h">Last 24 hours</option><option value="7d">Last 7 days</option><option value="30d">Last 30 days</option><option value="90d">Last 90 days</option>
    </select>
    <label for="tz">Timezone</label>
    <input id="tz" list="tz-list" value=${tz} onChange=${(e) => setQ({ tz: e.target.value === app.timezone ? null : e.target.value }, false, null, true)} size="18" />
    <datalist id="tz-list"><option value=${app.timezone} /><option value="UTC" /><option value=${Intl.DateTimeFormat().resolvedOptions().timeZone} /></datalist>
  </div>`
  return [range, picker]
}

function Delta({ cur, prev }) {
  if (prev == null) return null
  if (prev === 0) return html`<span class="delta muted">${cur ? 'new' : 'no change'} vs previous period</span>`
  const d = (cur - prev) / prev
  if (d === 0) return html`<span class="delta muted">no change vs previous period (${fmtNum(prev)})</span>`
  return html`<span class=${`delta ${d >= 0 ? 'up' : 'down'}`}>${d >= 0 ? '▲ +' : '▼ '}${(d * 100).toFixed(0)}% vs previous period (${fmtNum(prev)})</span>`
}

// The series in the compact form (bucketStarts once, seriesCounts per definition): an hourly
// month is 720 numbers per definition instead of 720 objects, about a fifth of the server's work.
const OVERVIEW = `query($a: ID!, $r: RangeInput!) {
  cur: overview(appId: $a, range: $r) { from to interval timezone totalEvents uniqueDevices identifiedLeads newLeads bucketStarts
    definitions { count uniqueDevices definition { id code name color description } seriesCounts } } }`
const PREVIOUS = `query($a: ID!, $p: RangeInput!) { prev: overview(appId: $a, range: $p) { totalEvents uniqueDevices identifiedLeads newLeads } }`

export function Overview({ app, base }) {
  useTitle(`Overview · ${app.name}`)
  const [range, picker] = useRange(app)
  // The previous period is asked for once the current one is in, so that
  // the figures do not wait for the comparison nor share the server with it.
  const q = useQuery(OVERVIEW, { a: app.id, r: range.cur }, [app.id, range])
  const prev = useQuery(PREVIOUS, !!q.data && { a: app.id, p: range.prev }, [app.id, range, !!q.data])
  return html`<${PageHead} title="Overview">${picker}<//>
    <${Async} q=${q}>${(d) => html`<${OverviewBody} o=${d.cur} p=${(prev.data && prev.data.prev) || {}} base=${base} />`}<//>`
}

function OverviewBody({ o, p, base }) {
  // The chart is drawn again only when the figures change.
  const { active, series, xs } = useMemo(() => {
    const active = o.definitions.filter((x) => x.count > 0)
    return { active, series: active.map((x) => ({ label: x.definition.name, color: x.definition.color, values: x.seriesCounts })), xs: o.bucketStarts }
  }, [o])
  return html`
        <div class="tiles">
          ${[['Events', 'totalEvents'], ['Unique devices', 'uniqueDevices'], ['Identified leads', 'identifiedLeads'], ['New leads', 'newLeads']].map(([label, k]) => html`
            <div class="tile" data-testid=${`tile-${k}`}><div class="tile-label">${label}</div><div class="tile-value">${fmtNum(o[k])}</div><${Delta} cur=${o[k]} prev=${p[k]} /></div>`)}
        </div>
        <section class="card"><h2>Events per ${o.interval} by definition</h2>
          ${active.length ? html`<${TimeChart} xs=${xs} series=${series} tz=${o.timezone} interval=${o.interval} title=${`Events per ${o.interval} for ${active.map((x) => x.definition.name).join(', ')}`} />` : html`<p class="muted">No events in this range. <a href=${`${base}/setup`}>Install the script</a> or send a test event.</p>`}
          <p class="muted" data-testid="range-line">${fmtTime(o.from, o.timezone, false)} – ${fmtTime(o.to, o.timezone, false)} (${o.timezone})</p>
        </section>
        <table><caption>Definitions in this range</caption>
          <thead><tr><th scope="col">Definition</th><th scope="col" class="num">Events</th><th scope="col" class="num">Unique devices</th></tr></thead>
          <tbody>${o.definitions.map((x) => html`<tr data-code=${x.definition.code}><td><${Swatch} color=${x.definition.color} /> ${x.definition.name} <code>${x.definition.code}</code></td><td class="num">${fmtNum(x.count)}</td><td class="num">${fmtNum(x.uniqueDevices)}</td></tr>`)}</tbody>
        </table>`
}

const BREAKDOWN = `query($a: ID!, $r: RangeInput!, $by: BreakdownBy!) { breakdown(appId: $a, range: $r, by: $by, first: 50) { value count uniqueDevices engagement { count definition { code name color } } } }`

export function Pages({ app }) {
  useTitle(`Pages · ${app.name}`)
  const [range, picker] = useRange(app)
  const [q, setQ] = useQueryParams()
  const withQuery = q.get('query') === '1'
  const r = useQuery(BREAKDOWN, { a: app.id, r: range.cur, by: withQuery ? 'pagesWithQuery' : 'pages' }, [app.id, range, withQuery])
  return html`<${PageHead} title="Pages">${picker}<//>
    <label class="check"><input type="checkbox" checked=${withQuery} onChange=${(e) => setQ({ query: e.target.checked ? '1' : null }, false, null, true)} /> Keep query strings</label>
    <${Async} q=${r}>${(d) => html`<table><caption class="sr-only">Top pages</caption>
      <thead><tr><th scope="col">Page</th><th scope="col" class="num">Events</th><th scope="col" class="num">Unique devices</th><th scope="col">Events fired on the page</th></tr></thead>
      <tbody>${d.breakdown.map((row) => html`<tr><td class="url">${row.value || '(none)'}</td><td class="num">${fmtNum(row.count)}</td><td class="num">${fmtNum(row.uniqueDevices)}</td>
        <td>${row.engagement.map((e) => html`<span class="chip"><${Swatch} color=${e.definition.color} /> ${e.definition.name} ${fmtNum(e.count)}</span> `)}</td></tr>`)}</tbody>
    </table>${d.breakdown.length === 0 && html`<p class="muted">No page events in this range.</p>`}`}<//>`
}

export function Sources({ app }) {
  useTitle(`Sources · ${app.name}`)
  const [range, picker] = useRange(app)
  const r = useQuery(`query($a: ID!, $r: RangeInput!) {
    sources: breakdown(appId: $a, range: $r, by: sources) { value count uniqueDevices }
    referrers: breakdown(appId: $a, range: $r, by: referrers, first: 50) { value count uniqueDevices } }`, { a: app.id, r: range.cur }, [app.id, range])
  const table = (rows, caption, blank) => html`<table><caption>${caption}</caption>
    <thead><tr><th scope="col">${caption}</th><th scope="col" class="num">Events</th><th scope="col" class="num">Unique devices</th></tr></thead>
    <tbody>${rows.map((row) => html`<tr><td>${row.value || blank}</td><td class="num">${fmtNum(row.count)}</td><td class="num">${fmtNum(row.uniqueDevices)}</td></tr>`)}</tbody></table>`
  return html`<${PageHead} title="Sources and referrers">${picker}<//>
    <${Async} q=${r}>${(d) => html`<div class="two">${table(d.sources, 'Sources', '(none)')}${table(d.referrers, 'Referrers', '(direct)')}</div>`}<//>`
}

/** Funnel state lives in the URL (?f=…), so a built funnel survives reload and can be shared. */
function readFunnel(q, defs) {
  try {
    const f = JSON.parse(q.get('f'))
    if (f && Array.isArray(f.steps)) return { ...f, steps: f.steps.filter((s) => s && typeof s === 'object').map((s) => ({ code: String(s.code ?? ''), rules: readRules(s.rules) })) }
  } catch {}
  const codes = defs.map((d) => d.code)
  return { steps: [{ code: codes[0] || '', rules: [] }, { code: codes[1] || codes[0] || '', rules: [] }], hours: 24 * 7, strict: false }
}

export function Funnels({ app, defs }) {
  useTitle(`Funnels · ${app.name}`)
  const [range, picker] = useRange(app)
  const [q, setQ] = useQueryParams()
  const saved = q.get('f')
  // The report is the URL's funnel, and back, forward or a new ?f= puts it in
  // the form too: the form's unsaved edits are not what the URL promises.
  const shown = useMemo(() => readFunnel(q, defs), [saved])
  const [f, setF] = useUrlState(shown)
  const setStep = (i, s) => setF({ ...f, steps: f.steps.map((x, j) => (j === i ? s : x)) })
  const report = useQuery(
    `query($i: FunnelInput!) { funnel(input: $i) { from to steps { code entered converted conversionRate overallRate medianSecondsFromPrevious } } }`,
    saved && { i: { appId: app.id, range: range.cur, windowSeconds: Math.round(Number(shown.hours) * 3600), strict: !!shown.strict, steps: shown.steps.map((s) => ({ code: s.code, rules: cleanRules(s.rules) })) } },
    [saved, range],
  )
  const run = (e) => {
    e.preventDefault()
    setQ({ f: JSON.stringify(f) })
  }
  const color = (code) => (defs.find((d) => d.code === code) || {}).color
  return html`<${PageHead} title="Funnels">${picker}<//>
    <form class="card" onSubmit=${run}>
      <h2>Steps</h2>
      <ol class="steps">${f.steps.map((s, i) => html`<li>
        <div class="row"><${CodeSelect} id=${`step-${i}`} label=${`Step ${i + 1} code`} value=${s.code} defs=${defs} onChange=${(code) => setStep(i, { ...s, code })} />
          ${f.steps.length > 2 && html`<button type="button" class="small secondary remove-step" onClick=${() => {
            setF({ ...f, steps: f.steps.filter((_, j) => j !== i) })
            focusAfterRemoval('ol.steps > li', i, '.remove-step', '#add-step')
          }}>Remove step ${i + 1}</button>`}</div>
        <${RulesEditor} idp=${`step-${i}`} label=${`Step ${i + 1} rule`} rules=${s.rules} onChange=${(rules) => setStep(i, { ...s, rules })} fields=${['url', 'referrer', 'source', 'title', 'properties.']} />
      </li>`)}</ol>
      ${f.steps.length < 8 && html`<button type="button" class="secondary" id="add-step" onClick=${() => {
        setF({ ...f, steps: [...f.steps, { code: defs[0] ? defs[0].code : '', rules: [] }] })
        rendered().then(() => focusOn(document.querySelector('ol.steps > li:last-child select')))
      }}>Add step</button>`}
      <div class="row">
        <${Field} label="Window (hours)" id="funnel-window" hint="How long after the first step a visitor may finish (at most 2160 hours)."><input id="funnel-window" type="number" min="1" max="2160" value=${f.hours} onInput=${(e) => setF({ ...f, hours: e.target.value })} /><//>
        <label class="check"><input type="checkbox" checked=${f.strict} onChange=${(e) => setF({ ...f, strict: e.target.checked })} /> Strict order (no other step's event in between)</label>
      </div>
      <button type="submit">Show funnel</button>
    </form>
    ${saved && html`<${Async} q=${report}>${(d) => {
      const steps = d.funnel.steps
      const max = steps[0] ? steps[0].entered : 0
      return html`<section class="card"><h2>Drop-off</h2>
        <${Bars} label="Visitors at each step" rows=${steps.map((s, i) => ({ label: `${i + 1}. ${s.code}`, value: s.entered, max, color: color(s.code), note: `${fmtNum(s.entered)} (${fmtPct(s.overallRate)})` }))} />
        <table data-testid="funnel-table"><caption class="sr-only">Funnel steps</caption>
          <thead><tr><th scope="col">Step</th><th scope="col" class="num">Entered</th><th scope="col" class="num">Went on</th><th scope="col" class="num">Conversion</th><th scope="col" class="num">Of first step</th><th scope="col" class="num">Median time from previous</th></tr></thead>
          <tbody>${steps.map((s, i) => html`<tr><td>${i + 1}. <code>${s.code}</code></td><td class="num">${fmtNum(s.entered)}</td><td class="num">${fmtNum(s.converted)}</td><td class="num">${fmtPct(s.conversionRate)}</td><td class="num">${fmtPct(s.overallRate)}</td><td class="num">${fmtDuration(s.medianSecondsFromPrevious)}</td></tr>`)}</tbody>
        </table></section>`
    }}<//>`}`
}

export function Goals({ app, defs }) {
  useTitle(`Goals · ${app.name}`)
  const [range, picker] = useRange(app)
  const q = useQuery('query($a: ID!) { goals(appId: $a) { id name windowSeconds startMatcher { name code rules { field operator value } } completionMatcher { name code rules { field operator value } } } }', { a: app.id }, [app.id])
  const [name, setName] = useState('')
  const [start, setStart] = useState(defs[0] ? defs[0].code : '')
  const [startRules, setStartRules] = useState([])
  const [done, setDone] = useState(defs[1] ? defs[1].code : start)
  const [doneRules, setDoneRules] = useState([])
  const [days, setDays] = useState(30)
  const a = useAction()
  const del = useAction()
  const reports = useGoalReports(app, q.data && q.data.goals, range.cur)
  const add = (e) => {
    e.preventDefault()
    a.run(async () => {
      // A refused step (the completion's rules, the goal) takes back the
      // matchers made before it: left behind, they held the goal's name, and
      // adding it again once fixed answered that '…: start' already exists.
      const made = []
      const m = 'mutation($a: ID!, $i: EventMatcherInput!) { createEventMatcher(appId: $a, input: $i) { id } }'
      try {
        made.push((await gql(m, { a: app.id, i: { name: `${name}: start`, code: start, rules: cleanRules(startRules) } })).createEventMatcher.id)
        made.push((await gql(m, { a: app.id, i: { name: `${name}: completion`, code: done, rules: cleanRules(doneRules) } })).createEventMatcher.id)
        await gql('mutation($a: ID!, $i: GoalInput!) { createGoal(appId: $a, input: $i) { id } }', { a: app.id, i: { name, startMatcher: `${name}: start`, completionMatcher: `${name}: completion`, windowSeconds: Math.round(days * 86400) } })
      } catch (err) {
        for (const id of made) await gql('mutation($a: ID!, $id: ID!) { deleteEventMatcher(appId: $a, id: $id) { id } }', { a: app.id, id }).catch(() => {})
        throw err
      }
      setName('')
      announce(`Goal ${name} added.`)
      q.reload()
    })
  }
  return html`<${PageHead} title="Goals">${picker}<//>
    <${ErrorBox} error=${del.error} />
    <${Async} q=${q}>${(d) => d.goals.length === 0 ? html`<p class="muted">No goals yet. Quick-add one below.</p>` : html`<table data-testid="goals-table"><caption class="sr-only">Goals</caption>
      <thead><tr><th scope="col">Goal</th><th scope="col">Start → completion</th><th scope="col" class="num">Started</th><th scope="col" class="num">Completed</th><th scope="col" class="num">Conversion</th><th scope="col" class="num">Median time</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${d.goals.map((g, i) => html`<${GoalRow} key=${g.id} goal=${g} report=${{ ...reports, index: i }} onDelete=${() => removeItem(del, async () => {
        await gql('mutation($a: ID!, $id: ID!) { deleteGoal(appId: $a, id: $id) { id } }', { a: app.id, id: g.id })
        await q.reload()
      }, `Goal ${g.name} deleted.`, '[data-testid=goals-table] tbody tr', i, 'button', '#page-title')} busy=${del.busy} />`)}</tbody></table>`}<//>
    <form class="card" onSubmit=${add}>
      <h2>Quick add a goal</h2>
      <${Field} label="Goal name" id="goal-name" error=${a.fieldError((f) => String(f).endsWith('name'))}><input id="goal-name" required value=${name} onInput=${(e) => setName(e.target.value)} /><//>
      <div class="two">
        <div><${Field} label="Starts with" id="goal-start"><${CodeSelect} id="goal-start" value=${start} defs=${defs} onChange=${setStart} /><//>
          <${RulesEditor} idp="gs" label="Start rule" rules=${startRules} onChange=${setStartRules} fields=${['url', 'referrer', 'source', 'title', 'properties.']} /></div>
        <div><${Field} label="Completed by" id="goal-done"><${CodeSelect} id="goal-done" value=${done} defs=${defs} onChange=${setDone} /><//>
          <${RulesEditor} idp="gd" label="Completion rule" rules=${doneRules} onChange=${setDoneRules} fields=${['url', 'referrer', 'source', 'title', 'properties.']} /></div>
      </div>
      <${Field} label="Window (days)" id="goal-window" error=${a.fieldError('windowSeconds')}><input id="goal-window" type="number" min="1" max="90" value=${days} onInput=${(e) => setDays(Number(e.target.value))} /><//>
      <${ErrorBox} error=${a.otherError((f) => String(f).endsWith('name'), 'windowSeconds')} />
      <button type="submit" disabled=${a.busy}>Add goal</button>
    </form>`
}

/** One request for every goal's report in the range (aliases g0, g1, …). */
function useGoalReports(app, goals, range) {
  const ids = goals ? goals.map((g) => g.id) : []
  const query = `query($a: ID!, $r: RangeInput!) { ${ids.map((id, i) => `g${i}: goalReport(appId: $a, goalId: ${JSON.stringify(id)}, range: $r) { started completed conversionRate medianSecondsToComplete }`).join(' ')} }`
  return useQuery(query, ids.length > 0 && { a: app.id, r: range }, [ids.join(','), range])
}

function GoalRow({ goal, report: r, onDelete, busy }) {
  const rep = r.data && r.data[`g${r.index}`]
  const m = (x) => `${x.code}${x.rules.length ? ` (${x.rules.map((y) => `${y.field} ${y.operator} ${y.value || ''}`).join(', ')})` : ''}`
  return html`<tr><td>${goal.name}</td><td>${m(goal.startMatcher)} → ${m(goal.completionMatcher)} <span class="muted">within ${fmtDuration(goal.windowSeconds)}</span></td>
    ${r.error ? html`<td colspan="4"><${ErrorBox} error=${r.error} /></td>` : html`<td class="num">${rep ? fmtNum(rep.started) : '…'}</td><td class="num">${rep ? fmtNum(rep.completed) : '…'}</td><td class="num">${rep ? fmtPct(rep.conversionRate) : '…'}</td><td class="num">${rep ? fmtDuration(rep.medianSecondsToComplete) : '…'}</td>`}
    <td><button class="link danger" disabled=${busy} onClick=${onDelete}>Delete<span class="sr-only"> goal ${goal.name}</span></button></td></tr>`
}
