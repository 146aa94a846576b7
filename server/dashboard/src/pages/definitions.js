// Visitor events: definitions (list, create, edit, enable, delete) and the
// unknown-code inbox.
import { useState } from 'preact/hooks'
import { gql } from '../api.js'
import { navigate, useQueryParams } from '../router.js'
import { Async, ErrorBox, Field, PageHead, Swatch, announce, fmtNum, fmtTime, focusOn, html, rendered, useAction, useQuery, useTitle } from '../ui.js'

export function Definitions({ app, defs, reloadApp, base }) {
  useTitle(`Visitor events · ${app.name}`)
  const a = useAction()
  // The box shows the new state at once; a refusal puts it back.
  const [pending, setPending] = useState({})
  const enabled = (d) => (d.id in pending ? pending[d.id] : d.enabled)
  const toggle = (d) => {
    const e = !enabled(d)
    setPending((p) => ({ ...p, [d.id]: e }))
    a.run(async () => {
      try {
        await gql('mutation($id: ID!, $e: Boolean!) { updateEventDefinition(id: $id, input: {enabled: $e}) { id } }', { id: d.id, e })
      } catch (err) {
        setPending((p) => ({ ...p, [d.id]: !e }))
        throw err
      }
      reloadApp()
    })
  }
  return html`<${PageHead} title="Visitor events"><a class="button" href=${`${base}/definitions/new`}>New definition</a><//>
    <p class="muted">Each code your site sends needs a definition. Uncheck <em>Tracking</em> to stop recording a code; its history is kept.</p>
    <${ErrorBox} error=${a.error} />
    <table class="defs"><caption class="sr-only">Event definitions</caption>
      <thead><tr><th scope="col">Name</th><th scope="col">Code</th><th scope="col">Description</th><th scope="col">Tracking</th><th scope="col" class="num">Triggers</th><th scope="col">First triggered</th><th scope="col">Last triggered</th></tr></thead>
      <tbody>${defs.map((d) => html`<tr class=${enabled(d) ? '' : 'disabled'}>
        <td><${Swatch} color=${d.color} /> <a href=${`${base}/definitions/${d.id}`}>${d.name}</a>${d.builtIn ? html` <span class="badge">built-in</span>` : ''}</td>
        <td><code>${d.code}</code></td>
        <td class="desc">${d.description}</td>
        <td><label class="check"><input type="checkbox" checked=${enabled(d)} onChange=${() => toggle(d)} /> ${enabled(d) ? 'on' : 'off'}<span class="sr-only"> for ${d.code}</span></label></td>
        <td class="num">${fmtNum(d.triggerCount)}</td>
        <td>${fmtTime(d.firstTriggeredAt, app.timezone)}</td><td>${fmtTime(d.lastTriggeredAt, app.timezone)}</td>
      </tr>`)}</tbody>
    </table>`
}

const CODE_RE = /^[a-z0-9_.-]{1,64}$/

export function DefinitionForm({ app, defs, reloadApp, base, defId }) {
  const existing = defId && defs.find((d) => d.id === defId)
  const [q] = useQueryParams()
  useTitle(`${existing ? existing.name : 'New definition'} · ${app.name}`)
  const [code, setCode] = useState(existing ? existing.code : q.get('code') || '')
  const [name, setName] = useState(existing ? existing.name : '')
  const [color, setColor] = useState(existing ? existing.color : '#2563EB')
  const [description, setDescription] = useState(existing ? existing.description : '')
  const a = useAction()
  const del = useAction()
  if (defId && !existing) return html`<h1>Not found</h1><p>This definition does not exist. <a href=${`${base}/definitions`}>All definitions</a></p>`
  const codeProblem = code && !CODE_RE.test(code) ? 'Lowercase letters, digits, _ - and . only, at most 64.' : null
  const fieldErr = (f) => a.fieldError((x) => x.endsWith(f))
  const submit = (e) => {
    e.preventDefault()
    a.run(async () => {
      if (existing) {
        const input = { name, color, description }
        if (code !== existing.code) input.code = code
        await gql('mutation($id: ID!, $i: UpdateEventDefinitionInput!) { updateEventDefinition(id: $id, input: $i) { id } }', { id: existing.id, i: input })
      } else {
        await gql('mutation($i: CreateEventDefinitionInput!) { createEventDefinition(input: $i) { id } }', { i: { appId: app.id, code, name, color, description } })
      }
      reloadApp()
      navigate(`${base}/definitions`)
      announce(`Definition ${name} ${existing ? 'saved' : 'created'}.`)
    })
  }
  const remove = () => del.run(async () => {
    await gql('mutation($id: ID!) { deleteEventDefinition(id: $id) { id } }', { id: existing.id })
    reloadApp()
    navigate(`${base}/definitions`)
    announce(`Definition ${existing.name} deleted.`)
  })
  const locked = existing && existing.triggerCount > 0
  return html`<${PageHead} title=${existing ? `Edit “${existing.name}”` : 'New definition'} />
    <form class="card" onSubmit=${submit}>
      <${Field} label="Code" id="def-code" hint=${locked ? 'The code cannot change once it has been triggered.' : 'What your snippets send, e.g. trial_click.'} error=${codeProblem || fieldErr('code')} typed=${!!codeProblem}>
        <input id="def-code" required readonly=${locked} value=${code} aria-invalid=${codeProblem ? 'true' : 'false'} onInput=${(e) => setCode(e.target.value)} /><//>
      <${Field} label="Name" id="def-name" error=${fieldErr('name')}><input id="def-name" required value=${name} onInput=${(e) => setName(e.target.value)} /><//>
      <${Field} label="Color" id="def-color" hint="Used for this event in charts and timelines." error=${fieldErr('color')}>
        <span class="row"><input id="def-color" type="color" value=${color.toLowerCase()} onInput=${(e) => setColor(e.target.value.toUpperCase())} /> <code>${color}</code></span><//>
      <${Field} label="Description" id="def-desc" hint="What the visitor did, in plain words. This is what the AI reads when it writes nurture emails, so be specific (e.g. “Clicked Start free trial on the pricing page”)." error=${fieldErr('description')}>
        <textarea id="def-desc" rows="3" value=${description} onInput=${(e) => setDescription(e.target.value)}></textarea><//>
      <${ErrorBox} error=${a.otherError(...['code', 'name', 'color', 'description'].map((f) => (x) => x.endsWith(f)))} />
      <button type="submit" disabled=${a.busy || !!codeProblem}>${existing ? 'Save' : 'Create definition'}</button>
      <a href=${`${base}/definitions`} class="button secondary">Cancel</a>
    </form>
    ${existing && html`<section class="card"><h2>Delete</h2>
      ${locked
        ? html`<p>This definition has been triggered ${fmtNum(existing.triggerCount)} times, so it cannot be deleted (its history stays). Turn off tracking instead.</p>`
        : html`<p>It has never been triggered, so it can be deleted.</p><${ErrorBox} error=${del.error} /><button class="danger" disabled=${del.busy} onClick=${remove}>Delete definition</button>`}
    </section>`}`
}

export function UnknownCodes({ app, base }) {
  useTitle(`Unknown codes · ${app.name}`)
  const q = useQuery('query($id: ID!) { app(id: $id) { unknownCodes(first: 100) { code count firstSeenAt lastSeenAt suggestion typoOf } } }', { id: app.id }, [app.id])
  // "It's a typo of …" is stored on the server (markUnknownCodeTypo), so everyone of the app sees it.
  const act = useAction()
  // The row's buttons change with its mark: the focus goes to its new one.
  const mark = async (code, typoOf) => {
    if (!(await act.run(async () => {
      await gql('mutation($a: ID!, $c: String!, $t: String) { markUnknownCodeTypo(appId: $a, code: $c, typoOf: $t) { code typoOf } }', { a: app.id, c: code, t: typoOf })
      await q.reload()
      return true
    }))) return
    announce(typoOf ? `${code} marked as a typo of ${typoOf}.` : `${code} no longer marked as a typo.`)
    await rendered()
    focusOn(document.querySelector(`tr[data-code="${CSS.escape(code)}"] :is(button, a)`))
  }
  return html`<${PageHead} title="Unknown codes" />
    <p class="muted">Codes your sites sent that no definition has. These events were refused: define the code to start recording it, or fix the snippet if it is a typo.</p>
    <${ErrorBox} error=${act.error} />
    <${Async} q=${q}>${(d) => {
      const list = d.app.unknownCodes
      if (!list.length) return html`<p>No unknown codes. Everything your sites send is defined.</p>`
      return html`<table><caption class="sr-only">Unknown codes</caption>
        <thead><tr><th scope="col">Code</th><th scope="col" class="num">Refused</th><th scope="col">Last seen</th><th scope="col">Suggestion</th><th scope="col">Action</th></tr></thead>
        <tbody>${list.map((u) => html`<tr key=${u.code} data-code=${u.code}>
            <td><code>${u.code}</code></td><td class="num">${fmtNum(u.count)}</td><td>${fmtTime(u.lastSeenAt, app.timezone)}</td>
            <td>${u.suggestion ? html`did you mean <code>${u.suggestion}</code>?` : '–'}</td>
            <td>${u.typoOf
              ? html`<span>Typo of <code>${u.typoOf}</code>: fix the snippet that sends <code>${u.code}</code>.</span>
                <button class="small link" disabled=${act.busy} onClick=${() => mark(u.code, null)}>Not a typo<span class="sr-only"> (${u.code})</span></button>`
              : html`<a class="button small" href=${`${base}/definitions/new?code=${encodeURIComponent(u.code)}`}>Define this code<span class="sr-only"> (${u.code})</span></a>
                ${u.suggestion && html` <button class="small secondary" disabled=${act.busy} onClick=${() => mark(u.code, u.suggestion)}>It's a typo of ${u.suggestion}<span class="sr-only"> (${u.code})</span></button>`}`}</td>
          </tr>`)}</tbody></table>`
    }}<//>`
}

