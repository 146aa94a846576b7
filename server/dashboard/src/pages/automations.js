// Automations: rules that send matching events to a webhook or Slack, their
// delivery log with replay, and "test rule" over a past range.
import { useState } from 'preact/hooks'
import { gql } from '../api.js'
import { RulesEditor, cleanRules } from '../rules.js'
import { Async, CodeSelect, CopyButton, ErrorBox, Field, PageHead, announce, distinct, fmtNum, fmtTime, focusOn, html, removeItem, rendered, useAction, usePageFocus, useQuery, useTitle } from '../ui.js'

const RULE = 'id name enabled identifiedOnly matcher { id name code rules { field operator value } } actions { id kind url enabled disabledReason headers { name valueHint } retiredSecretExpiries }'
const MATCH_FIELDS = ['url', 'referrer', 'source', 'title', 'lead.email', 'properties.']

// The server holds a matcher's name to 200 characters (code points), a rule's to 200 too.
const MATCHER_NAME_MAX = 200

/**
 * The stored matcher of a rule: `Automation: <rule name>`. A name too long for that is cut on a
 * character boundary, with an ellipsis and a short hash of the whole name, so that two long
 * names that start alike keep a matcher each.
 */
export const matcherName = (name) => {
  const full = `Automation: ${name}`
  const chars = [...full]
  if (chars.length <= MATCHER_NAME_MAX) return full
  let h = 0x811c9dc5 // FNV-1a
  for (const c of name) h = Math.imul(h ^ c.codePointAt(0), 0x01000193)
  const tag = `… #${(h >>> 0).toString(36)}`
  return chars.slice(0, MATCHER_NAME_MAX - [...tag].length).join('') + tag
}

const matcherText = (m) => `${m.code}${m.rules.length ? ` (${m.rules.map((r) => `${r.field} ${r.operator.replace('_', ' ')} ${r.value || ''}`.trim()).join(', ')})` : ''}`

/** Shown once: the signing secrets of the actions just made. */
const Secrets = ({ secrets }) => secrets && secrets.some((s) => s.signingSecret) && html`<div class="card notice" data-testid="signing-secrets">
  <p><strong>Signing secret — copy it now, it is shown only once.</strong> The receiver checks the webhook-signature header with it (Standard Webhooks).</p>
  ${secrets.filter((s) => s.signingSecret).map((s) => html`<p>${s.action.url}: <code class="secret" data-testid="signing-secret">${s.signingSecret}</code> <${CopyButton} text=${s.signingSecret} label=${`the signing secret of ${s.action.url}`} /></p>`)}
</div>`

/** After a signing secret is shown: says so, and puts the focus on its Copy button (else on fallback). */
async function showSecrets(fallback) {
  await rendered()
  if (focusOn(document.querySelector('[data-testid=signing-secrets] button'))) announce('Signing secret shown once: copy it now.')
  else if (fallback) focusOn(document.querySelector(fallback))
}

export function Automations({ app, base }) {
  useTitle(`Automations · ${app.name}`)
  const q = useQuery(`query($a: ID!) { automationRules(appId: $a) { ${RULE} } }`, { a: app.id }, [app.id])
  const act = useAction()
  const mut = (query, vars) => act.run(async () => {
    await gql(query, vars)
    q.reload()
  })
  // The switch shows the new state at once; it goes back if the server refuses.
  const [pending, setPending] = useState({})
  const enabled = (r) => (r.id in pending ? pending[r.id] : r.enabled)
  const toggle = (r, on) => {
    setPending((p) => ({ ...p, [r.id]: on }))
    act.run(async () => {
      try {
        await gql('mutation($a: ID!, $id: ID!, $i: UpdateAutomationRuleInput!) { updateAutomationRule(appId: $a, id: $id, input: $i) { id } }', { a: app.id, id: r.id, i: { enabled: on } })
      } catch (e) {
        setPending(({ [r.id]: _, ...rest }) => rest)
        throw e
      }
    })
  }
  return html`<${PageHead} title="Automations"><a class="button" href=${`${base}/automations/new`}>New rule</a><//>
    <p class="muted">A rule sends each stored event that matches it to its webhooks or Slack, retrying until the receiver accepts it.</p>
    <${ErrorBox} error=${act.error} />
    <${Async} q=${q}>${(d) => { const names = distinct(d.automationRules.map((r) => r.name)); return d.automationRules.length === 0 ? html`<p class="muted">No rules yet.</p>` : html`<table data-testid="rules-table"><caption class="sr-only">Automation rules</caption>
      <thead><tr><th scope="col">Rule</th><th scope="col">Matches</th><th scope="col">Sends to</th><th scope="col">Enabled</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
      <tbody>${d.automationRules.map((r, i) => html`<tr key=${r.id}>
        <td><a href=${`${base}/automations/${r.id}`}>${r.name}</a></td>
        <td>${matcherText(r.matcher)}${r.identifiedOnly ? html` <span class="muted">(identified leads only)</span>` : ''}</td>
        <td><ul class="plain">${r.actions.map((x) => html`<li>${x.kind}: ${x.url}${!x.enabled && html` <span class="muted">(off${x.disabledReason ? `: ${x.disabledReason}` : ''})</span>`}</li>`)}</ul></td>
        <td><input type="checkbox" aria-label=${`Enabled: rule ${names[i]}`} checked=${enabled(r)}
          onChange=${(e) => toggle(r, e.target.checked)} /></td>
        <td class="links"><a href=${`${base}/automations/${r.id}/deliveries`}>Deliveries<span class="sr-only"> of ${names[i]}</span></a>
          <button class="link danger" disabled=${act.busy} onClick=${() => confirm(`Delete the rule ${r.name} and its delivery log?`) && removeItem(act, async () => {
            await gql('mutation($a: ID!, $id: ID!) { deleteAutomationRule(appId: $a, id: $id) { id } }', { a: app.id, id: r.id })
            await q.reload()
          }, `Rule ${r.name} deleted.`, '[data-testid=rules-table] tbody tr', i, '.danger', '#page-title')}>Delete<span class="sr-only"> rule ${names[i]}</span></button></td>
      </tr>`)}</tbody></table>` }}<//>`
}

/** /automations/new and /automations/:ruleId: create or edit a rule, and test it on a past range. */
export function RuleForm({ app, defs, base, ruleId }) {
  const editing = !!ruleId
  const q = useQuery(`query($a: ID!, $id: ID!) { automationRule(appId: $a, id: $id) { ${RULE} } }`, editing && { a: app.id, id: ruleId }, [ruleId])
  useTitle(`${editing ? 'Edit rule' : 'New rule'} · ${app.name}`)
  if (editing && !q.data) return html`<${PageHead} title="Edit rule" /><${Async} q=${q}>${() => null}<//>`
  return html`<${RuleEditor} key=${ruleId || 'new'} app=${app} defs=${defs} base=${base} rule=${q.data && q.data.automationRule} reload=${q.reload} />`
}

function RuleEditor({ app, defs, base, rule, reload }) {
  const [name, setName] = useState(rule ? rule.name : '')
  const [code, setCode] = useState(rule ? rule.matcher.code : (defs[0] && defs[0].code) || '')
  const [rules, setRules] = useState(rule ? rule.matcher.rules.map((r) => ({ ...r, value: r.value || '' })) : [])
  const [identifiedOnly, setIdentifiedOnly] = useState(rule ? rule.identifiedOnly : false)
  const [kind, setKind] = useState('webhook')
  const [url, setUrl] = useState('')
  const [header, setHeader] = useState({ name: '', value: '' })
  const [template, setTemplate] = useState('')
  const [secrets, setSecrets] = useState(null)
  const [saved, setSaved] = useState(false)
  const [created, setCreated] = useState(null)
  const a = useAction()
  const act = useAction()
  const actionInput = () => ({ kind, url, ...(kind === 'webhook' && header.name ? { headers: [header] } : {}), ...(kind === 'slack' && template ? { template } : {}) })
  // The trigger is a stored matcher named after the rule; editing it updates that matcher,
  // renaming the rule renames it too.
  const saveMatcher = async () => {
    const want = matcherName(name)
    const i = { name: want, code, rules: cleanRules(rules) }
    // The rule's own matcher (by id, whatever it is named now), or one left with the wanted name.
    const mine = rule && rule.matcher.name.startsWith('Automation: ')
      ? rule.matcher
      : (await gql('query($a: ID!) { eventMatchers(appId: $a) { id name } }', { a: app.id })).eventMatchers.find((m) => m.name === want)
    if (mine) await gql('mutation($a: ID!, $id: ID!, $i: UpdateEventMatcherInput!) { updateEventMatcher(appId: $a, id: $id, input: $i) { id } }', { a: app.id, id: mine.id, i })
    else await gql('mutation($a: ID!, $i: EventMatcherInput!) { createEventMatcher(appId: $a, input: $i) { id } }', { a: app.id, i })
    return want
  }
  const submit = (e) => {
    e.preventDefault()
    setSaved(false)
    a.run(async () => {
      const matcher = await saveMatcher()
      if (rule) {
        await gql('mutation($a: ID!, $id: ID!, $i: UpdateAutomationRuleInput!) { updateAutomationRule(appId: $a, id: $id, input: $i) { id } }', { a: app.id, id: rule.id, i: { name, matcher, identifiedOnly } })
        setSaved(true)
        announce('Rule saved.')
        reload()
        return
      }
      const d = await gql(`mutation($a: ID!, $i: AutomationRuleInput!) { createAutomationRule(appId: $a, input: $i) { rule { id } secrets { signingSecret action { url } } } }`,
        { a: app.id, i: { name, matcher, identifiedOnly, actions: [actionInput()] } })
      setCreated(d.createAutomationRule)
      announce(`Rule ${name} created.`)
      showSecrets('#page-title')
    })
  }
  const addAction = (e) => {
    e.preventDefault()
    act.run(async () => {
      const d = await gql('mutation($a: ID!, $r: ID!, $i: AutomationActionInput!) { addAutomationAction(appId: $a, ruleId: $r, input: $i) { signingSecret action { url } } }', { a: app.id, r: rule.id, i: actionInput() })
      setSecrets([d.addAutomationAction])
      setUrl('')
      reload()
      showSecrets()
    })
  }
  const [tested, setTested] = useState(null)
  const sendTest = (x) => act.run(async () => {
    setTested(null)
    const d = await gql('mutation($a: ID!, $id: ID!) { sendTestDelivery(appId: $a, actionId: $id) { webhookId statusCode latencyMs error responseBody } }', { a: app.id, id: x.id })
    const t = { url: x.url, ...d.sendTestDelivery }
    setTested(t)
    announce(testText(t))
  })
  const actionMut = (query, vars) => act.run(async () => {
    setSecrets(null)
    setTested(null)
    const d = await gql(query, vars)
    if (d.rotateActionSecret) setSecrets([d.rotateActionSecret])
    reload()
    if (d.rotateActionSecret) showSecrets()
  })
  // Removing an action takes its row away: the focus goes to the next
  // action's Remove, else the table's heading.
  const removeAction = (x, i) => {
    setSecrets(null)
    setTested(null)
    removeItem(act, async () => {
      await gql('mutation($a: ID!, $id: ID!) { deleteAutomationAction(appId: $a, id: $id) { id } }', { a: app.id, id: x.id })
      await reload()
    }, `Action ${x.url} removed.`, '[data-testid=actions-table] tbody tr', i, '.danger', '#actions-title')
  }
  const err = (f) => a.fieldError((x) => x.toLowerCase().includes(f))
  // Two webhooks whose URLs differ only in what is not shown have rows alike: their buttons' names tell them apart.
  const actionNames = rule ? distinct(rule.actions.map((x) => x.url)) : []
  const actionFields = html`
    <${Field} label="Send to" id="act-kind"><select id="act-kind" value=${kind} onChange=${(e) => setKind(e.target.value)}><option value="webhook">Webhook (signed JSON POST)</option><option value="slack">Slack incoming webhook</option></select><//>
    <${Field} label=${kind === 'slack' ? 'Slack webhook URL' : 'Webhook URL'} id="act-url" error=${(a.error ? a : act).fieldError((x) => x.includes('url'))}>
      <input id="act-url" type="url" required value=${url} placeholder=${kind === 'slack' ? 'https://hooks.slack.com/services/…' : 'https://crm.example/hooks/crumbs'} onInput=${(e) => setUrl(e.target.value)} /><//>
    ${kind === 'webhook'
      ? html`<div class="row"><${Field} label="Custom header (optional)" id="act-hname"><input id="act-hname" placeholder="X-Api-Key" value=${header.name} onInput=${(e) => setHeader({ ...header, name: e.target.value })} /><//>
        <${Field} label="Header value" id="act-hvalue"><input id="act-hvalue" type="password" autocomplete="off" value=${header.value} onInput=${(e) => setHeader({ ...header, value: e.target.value })} /><//></div>`
      : html`<${Field} label="Message template (optional)" id="act-template" hint="Placeholders: {{event.name}}, {{event.url}}, {{lead.email}}, {{device.id}}, {{properties.<key>}}"><textarea id="act-template" rows="2" value=${template} onInput=${(e) => setTemplate(e.target.value)}></textarea><//>`}`
  if (created)
    return html`<${PageHead} title="Rule created" />
      <${Secrets} secrets=${created.secrets} />
      <p><a href=${`${base}/automations`}>← All rules</a> · <a href=${`${base}/automations/${created.rule.id}`}>Edit the rule</a> · <a href=${`${base}/automations/${created.rule.id}/deliveries`}>Its delivery log</a></p>`
  return html`<${PageHead} title=${rule ? `Rule: ${rule.name}` : 'New rule'}>${rule && html`<a href=${`${base}/automations/${rule.id}/deliveries`}>Delivery log</a>`}<//>
    <p><a href=${`${base}/automations`}>← All rules</a></p>
    <${Secrets} secrets=${secrets} />
    <form class="card" onSubmit=${submit}>
      <h2>Trigger</h2>
      <${Field} label="Rule name" id="rule-name" error=${err('name')}><input id="rule-name" required value=${name} onInput=${(e) => setName(e.target.value)} /><//>
      <${Field} label="When this event is stored" id="rule-code"><${CodeSelect} id="rule-code" value=${code} defs=${defs} onChange=${setCode} /><//>
      <${RulesEditor} idp="ar" rules=${rules} onChange=${setRules} fields=${MATCH_FIELDS} />
      <div class="row"><input type="checkbox" id="rule-identified" checked=${identifiedOnly} onChange=${(e) => setIdentifiedOnly(e.target.checked)} /><label for="rule-identified">Only for identified leads</label></div>
      ${!rule && html`<h2>Action</h2>${actionFields}`}
      <${ErrorBox} error=${a.otherError((x) => x.toLowerCase().includes('name'), ...(rule ? [] : [(x) => x.includes('url')]))} />
      ${saved && html`<p class="ok">Saved.</p>`}
      <button type="submit" disabled=${a.busy}>${rule ? 'Save rule' : 'Create rule'}</button>
    </form>
    <${TestRule} app=${app} matcherInput=${{ code, rules: cleanRules(rules) }} identifiedOnly=${identifiedOnly} saved=${rule && rule.matcher.name} />
    ${rule && html`<section class="card"><h2 id="actions-title">Actions</h2>
      <${ErrorBox} error=${act.otherError((x) => x.includes('url'))} />
      <table data-testid="actions-table"><caption class="sr-only">Actions of ${rule.name}</caption>
        <thead><tr><th scope="col">Kind</th><th scope="col">URL</th><th scope="col">Headers</th><th scope="col">Enabled</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${rule.actions.map((x, i) => html`<tr key=${x.id}><td>${x.kind}</td><td>${x.url}${x.retiredSecretExpiries.length > 0 && html`<br /><span class="muted" data-testid="retired-secrets">Old secrets also sign until ${x.retiredSecretExpiries.map((t) => fmtTime(t, app.timezone)).join(', ')}</span>`}</td><td>${x.headers.map((h) => `${h.name}: ${h.valueHint}`).join(', ') || '–'}</td>
          <td><input type="checkbox" aria-label=${`Enabled: ${x.kind} action ${actionNames[i]}`} checked=${x.enabled} disabled=${act.busy} onChange=${(e) => actionMut('mutation($a: ID!, $id: ID!, $i: UpdateAutomationActionInput!) { updateAutomationAction(appId: $a, id: $id, input: $i) { id } }', { a: app.id, id: x.id, i: { enabled: e.target.checked } })} />
            ${x.disabledReason && html` <span class="muted">${x.disabledReason}</span>`}</td>
          <td class="links">${x.kind === 'webhook' && html`<button class="link" disabled=${act.busy} onClick=${() => actionMut('mutation($a: ID!, $id: ID!) { rotateActionSecret(appId: $a, id: $id) { signingSecret action { url } } }', { a: app.id, id: x.id })}>Rotate secret<span class="sr-only"> of ${actionNames[i]}</span></button>`}
            <button class="link" disabled=${act.busy} onClick=${() => sendTest(x)}>Send test<span class="sr-only"> to ${actionNames[i]}</span></button>
            <button class="link danger" disabled=${act.busy} onClick=${() => removeAction(x, i)}>Remove<span class="sr-only"> ${actionNames[i]}</span></button></td></tr>`)}</tbody></table>
      ${tested && html`<p data-testid="test-delivery">${testText(tested)}${tested.responseBody ? html` <span class="muted">Answer: ${tested.responseBody}</span>` : ''}</p>`}
      <form onSubmit=${addAction}><h3>Add an action</h3>${actionFields}<button type="submit" class="secondary" disabled=${act.busy}>Add action</button></form>
    </section>`}`
}

/** What a test delivery got (said, and shown under the actions). */
const testText = (t) => `Test sent to ${t.url}: ${t.statusCode ? `answered ${t.statusCode}` : 'no answer'} in ${fmtNum(t.latencyMs)} ms${t.error ? ` — ${t.error}` : ''}.`

// Results of a test or a replay are said through the page's live region
// (announce): a status region added with its text may not be read.
const DAYS = [1, 7, 30, 90]

/** How many past events would have fired the rule, by testRule (which reads a stored matcher). */
function TestRule({ app, matcherInput, identifiedOnly, saved }) {
  const [days, setDays] = useState(7)
  const [res, setRes] = useState(null)
  const t = useAction()
  const run = (e) => {
    e.preventDefault()
    t.run(async () => {
      // testRule reads a stored matcher: the rule's own, or for a new rule a draft one,
      // made for the test and deleted after it.
      let matcher = saved
      let draft = null
      if (!matcher) {
        matcher = 'Automation draft (test)'
        const ms = (await gql('query($a: ID!) { eventMatchers(appId: $a) { id name } }', { a: app.id })).eventMatchers
        draft = ms.find((x) => x.name === matcher)
        if (draft) await gql('mutation($a: ID!, $id: ID!, $i: UpdateEventMatcherInput!) { updateEventMatcher(appId: $a, id: $id, input: $i) { id } }', { a: app.id, id: draft.id, i: matcherInput })
        else draft = (await gql('mutation($a: ID!, $i: EventMatcherInput!) { createEventMatcher(appId: $a, input: $i) { id } }', { a: app.id, i: { name: matcher, ...matcherInput } })).createEventMatcher
      }
      let result
      try {
        const to = new Date(Math.ceil(Date.now() / 60000) * 60000)
        const d = await gql('query($a: ID!, $i: TestRuleInput!, $r: RangeInput!) { testRule(appId: $a, input: $i, range: $r) { matched scanned truncated samples } }',
          { a: app.id, i: { matcher, identifiedOnly }, r: { from: new Date(to - days * 86400000).toISOString(), to: to.toISOString() } })
        result = d.testRule
      } finally {
        if (draft) await gql('mutation($a: ID!, $id: ID!) { deleteEventMatcher(appId: $a, id: $id) { id } }', { a: app.id, id: draft.id })
      }
      // Shown once the draft is gone: the test is over when its answer is on screen.
      setRes(result)
      announce(`${fmtNum(result.matched)} past events would have fired (of ${fmtNum(result.scanned)} read).`)
    })
  }
  return html`<form class="card" onSubmit=${run}><h2>Test rule</h2>
    <p class="muted">Counts the past events that would have fired ${saved ? 'the saved trigger' : 'this trigger'}. Sends nothing.</p>
    <div class="row"><label for="test-days">Range</label><select id="test-days" value=${days} onChange=${(e) => setDays(Number(e.target.value))}>${DAYS.map((n) => html`<option value=${n}>Last ${n === 1 ? '24 hours' : `${n} days`}</option>`)}</select>
      <button type="submit" class="secondary" disabled=${t.busy}>Test rule</button></div>
    <${ErrorBox} error=${t.error} />
    ${res && html`<p data-testid="test-result"><strong>${fmtNum(res.matched)}</strong> past events would have fired (of ${fmtNum(res.scanned)} read${res.truncated ? '; only the first 100,000 were tried' : ''}).</p>
      ${res.samples.length > 0 && html`<details><summary>Sample payloads</summary><pre class="json">${JSON.stringify(res.samples, null, 2)}</pre></details>`}`}
  </form>`
}

/** Sends again every past event of a range that matches the rule, to each enabled action (replayRule). */
function ReplayRule({ app, ruleId, onDone }) {
  const [days, setDays] = useState(1)
  const [queued, setQueued] = useState(null)
  const t = useAction()
  const run = (e) => {
    e.preventDefault()
    t.run(async () => {
      const to = new Date(Math.ceil(Date.now() / 60000) * 60000)
      const d = await gql('mutation($a: ID!, $r: ID!, $range: RangeInput!) { replayRule(appId: $a, ruleId: $r, range: $range) { events } }',
        { a: app.id, r: ruleId, range: { from: new Date(to - days * 86400000).toISOString(), to: to.toISOString() } })
      setQueued(d.replayRule.events)
      announce(`${fmtNum(d.replayRule.events)} matching ${d.replayRule.events === 1 ? 'event' : 'events'} queued again.`)
      onDone()
    })
  }
  return html`<form class="card" onSubmit=${run}><h2>Replay a range</h2>
    <p class="muted">Sends again every past event of the range that matches the rule, to each enabled action, with the webhook-id it had before, so receivers that deduplicate see each event once.</p>
    <div class="row"><label for="replay-days">Range</label><select id="replay-days" value=${days} onChange=${(e) => setDays(Number(e.target.value))}>${DAYS.map((n) => html`<option value=${n}>Last ${n === 1 ? '24 hours' : `${n} days`}</option>`)}</select>
      <button type="submit" class="secondary" disabled=${t.busy}>Replay matches</button></div>
    <${ErrorBox} error=${t.error} />
    ${queued !== null && html`<p class="ok" data-testid="replay-result">${fmtNum(queued)} matching ${queued === 1 ? 'event' : 'events'} queued again.</p>`}
  </form>`
}

const STATUSES = ['pending', 'retrying', 'succeeded', 'dead']
const replayText = (r) => `Delivery ${r.webhookId} sent again: ${r.status}${r.lastStatusCode ? ` (${r.lastStatusCode})` : ''}.`

/** /automations/:ruleId/deliveries: the delivery log of one rule, newest first, with replay. */
export function Deliveries({ app, base, ruleId }) {
  const [status, setStatus] = useState('')
  const [after, setAfter] = useState([])
  const cursor = after[after.length - 1] || null
  const q = useQuery(`query($a: ID!, $r: ID!, $s: DeliveryStatus, $after: String) { automationRule(appId: $a, id: $r) { id name }
    deliveries(appId: $a, ruleId: $r, status: $s, first: 50, after: $after) { edges { node { id eventId webhookId status attempts replays lastStatusCode lastError lastLatencyMs nextAttemptAt createdAt action { kind url } attemptLog { at statusCode latencyMs error } } } pageInfo { hasNextPage endCursor } } }`,
  { a: app.id, r: ruleId, s: status || null, after: cursor }, [ruleId, status, cursor])
  useTitle(`Deliveries · ${app.name}`)
  usePageFocus(q, cursor, status)
  const act = useAction()
  const [replayed, setReplayed] = useState(null)
  return html`<${PageHead} title=${q.data ? `Deliveries: ${q.data.automationRule.name}` : 'Deliveries'}>
      <label for="del-status">Status</label><select id="del-status" value=${status} onChange=${(e) => (setStatus(e.target.value), setAfter([]))}><option value="">All</option>${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}</select>
      <button class="secondary" onClick=${q.reload}>Refresh</button><//>
    <p><a href=${`${base}/automations/${ruleId}`}>← Rule</a> · <a href=${`${base}/automations`}>All rules</a></p>
    <${ErrorBox} error=${act.error} />
    ${replayed && html`<p class="ok">${replayText(replayed)}</p>`}
    <${Async} q=${q}>${(d) => { const names = distinct(d.deliveries.edges.map(({ node: x }) => `delivery of event ${x.eventId} to ${x.action.url}`)); return d.deliveries.edges.length === 0 ? html`<p class="muted">No deliveries${status ? ` with status ${status}` : ' yet: they appear when a matching event is stored'}.</p>` : html`
      <table class="compact" data-testid="deliveries-table"><caption class="sr-only">Deliveries</caption>
        <thead><tr><th scope="col">Created</th><th scope="col">Event</th><th scope="col">To</th><th scope="col">Status</th><th scope="col" class="num">Attempts</th><th scope="col" class="num">Response</th><th scope="col" class="num">Latency</th><th scope="col">Error</th><th scope="col">Next attempt</th><th scope="col"><span class="sr-only">Actions</span></th></tr></thead>
        <tbody>${d.deliveries.edges.map(({ node: x }, i) => html`<tr key=${x.id} data-status=${x.status}>
          <td>${fmtTime(x.createdAt, app.timezone)}</td><td><code>${x.eventId}</code></td><td class="url">${x.action.kind}: ${x.action.url}</td>
          <td><span class=${`status status-${x.status}`}>${x.status}</span></td><td class="num">${x.attemptLog.length > 1 ? html`<details><summary>${x.attempts}<span class="sr-only"> attempts</span>${x.replays ? `, replayed ${x.replays}×` : ''}</summary><ol class="attempts">${x.attemptLog.map((t) => html`<li>${fmtTime(t.at, app.timezone)}: ${t.statusCode || 'no answer'}, ${fmtNum(t.latencyMs)} ms${t.error ? ` — ${t.error}` : ''}</li>`)}</ol></details>` : `${x.attempts}${x.replays ? `, replayed ${x.replays}×` : ''}`}</td>
          <td class="num">${x.lastStatusCode || '–'}</td><td class="num">${x.attemptLog.length ? `${fmtNum(x.lastLatencyMs)} ms` : '–'}</td>
          <td>${x.lastError || '–'}</td><td>${x.nextAttemptAt ? fmtTime(x.nextAttemptAt, app.timezone) : '–'}</td>
          <td><button class="link" disabled=${act.busy} onClick=${() => act.run(async () => {
            const r = await gql('mutation($a: ID!, $id: ID!) { replayDelivery(appId: $a, id: $id) { webhookId status lastStatusCode } }', { a: app.id, id: x.id })
            setReplayed(r.replayDelivery)
            announce(replayText(r.replayDelivery))
            q.reload()
          })}>Replay<span class="sr-only"> ${names[i]}</span></button></td></tr>`)}</tbody></table>
      <nav class="pager" aria-label="Pages of deliveries">
        ${after.length > 0 && html`<button class="secondary" onClick=${() => setAfter(after.slice(0, -1))}>← Newer</button>`}
        ${d.deliveries.pageInfo.hasNextPage && html`<button class="secondary" onClick=${() => setAfter([...after, d.deliveries.pageInfo.endCursor])}>Older →</button>`}
      </nav>` }}<//>
    <${ReplayRule} app=${app} ruleId=${ruleId} onDone=${q.reload} />`
}
