// Shared view helpers. Everything from the API is rendered through htm
// interpolation, which makes text nodes and attribute values: no string is
// ever parsed as markup.
import { cloneElement, h, isValidElement } from 'preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import htm from 'htm'
import { gql } from './api.js'
import { useQueryParams } from './router.js'

export const html = htm.bind(h)

/** Loads a query and reloads it when deps change. */
export function useQuery(query, variables, deps = []) {
  const [state, setState] = useState({ loading: true, data: null, error: null })
  const gen = useRef(0)
  // Resolves once the answer is shown (a caller moving the focus to what
  // it shows waits for it).
  const load = useCallback(() => {
    const n = ++gen.current
    if (!variables) return Promise.resolve(setState({ loading: false, data: null, error: null }))
    setState((s) => ({ ...s, loading: true, error: null }))
    return gql(query, variables).then(
      (data) => n === gen.current && setState({ loading: false, data, error: null }),
      (error) => n === gen.current && setState({ loading: false, data: null, error }),
    ).then(rendered)
  }, deps)
  useEffect(() => {
    load()
  }, [load])
  return { ...state, reload: load }
}

export const Loading = () => html`<p class="muted" role="status">Loading…</p>`

export function ErrorBox({ error }) {
  if (!error) return null
  return html`<div class="error" role="alert"><strong>${error.code || 'Error'}:</strong> ${error.message}</div>`
}

/** Shows loading, an error, or the children function's result. */
export function Async({ q, children }) {
  if (q.error) return html`<${ErrorBox} error=${q.error} />`
  if (!q.data) return html`<${Loading} />`
  return children(q.data)
}

export const Swatch = ({ color, label }) =>
  html`<span class="swatch" style=${{ background: color }} aria-hidden=${label ? undefined : 'true'} title=${label}></span>`

export const fmtNum = (n) => (n == null ? '–' : Number(n).toLocaleString('en'))
export const fmtPct = (r) => (r == null ? '–' : `${(r * 100).toFixed(1)}%`)
/**
 * A time in tz (else the reader's zone). When its wall clock is not the
 * reader's it names the zone: an app's event at '16:45' read as the
 * reader's own 16:45, hours off, with nothing on the page saying so.
 * named = false leaves that to the caller (a range that names its zone once).
 */
export function fmtTime(t, tz, named = true) {
  if (!t) return '–'
  const d = new Date(t)
  try {
    const opts = { dateStyle: 'medium', timeStyle: 'short' }
    const s = d.toLocaleString('en-GB', { ...opts, timeZone: tz || undefined })
    if (!tz || !named || s === d.toLocaleString('en-GB', opts)) return s
    const zone = new Intl.DateTimeFormat('en-GB', { timeZone: tz, timeZoneName: 'short' }).formatToParts(d).find((p) => p.type === 'timeZoneName')
    return zone ? `${s} ${zone.value}` : s
  } catch {
    return d.toISOString()
  }
}
export function fmtDuration(s) {
  if (s == null) return '–'
  if (s < 90) return `${Math.round(s)} s`
  if (s < 5400) return `${Math.round(s / 60)} min`
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`
  return `${(s / 86400).toFixed(1)} d`
}

/**
 * A labelled form field; error is the message for this field, if any. The
 * control (the child whose id is id) is described by the hint and the error
 * and marked invalid with it, so a screen reader says them on reaching it.
 * A refusal is also said at once (an alert); an error checked as the reader
 * types (typed) is not, or it would interrupt them at every keystroke.
 */
export function Field({ label, id, error, hint, typed = false, children }) {
  const describedBy = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined
  const control = isValidElement(children) && children.props.id === id
    ? cloneElement(children, { 'aria-describedby': describedBy, ...(error && { 'aria-invalid': 'true' }) })
    : children
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${control}
    ${hint && html`<div class="hint" id=${id + '-hint'}>${hint}</div>`}
    ${error && html`<div class="field-error" id=${id + '-error'} role=${typed ? undefined : 'alert'}>${error}</div>`}
  </div>`
}

/**
 * Names that tell alike things of a list apart, for the accessible names
 * of their rows' buttons: a name that several items share ends with
 * "(1 of 2)", "(2 of 2)", … in their order; the others stay as they are.
 * (Two webhooks whose URLs differ only in their query are shown alike.)
 */
export function distinct(names) {
  const total = {}, seen = {}
  for (const n of names) total[n] = (total[n] || 0) + 1
  return names.map((n) => (total[n] > 1 ? `${n} (${(seen[n] = (seen[n] || 0) + 1)} of ${total[n]})` : n))
}

/** Resolves after Preact has drawn the state set so far (it draws in a later task). */
export const rendered = () => new Promise((r) => setTimeout(r))

// One live region for the whole page, outside what Preact draws, so that a
// message survives the page it was said on (a deletion that leaves the
// page) and says the same words again when they repeat.
// It is there from the start: a screen reader may miss what a region says
// in the moment it is added.
const region = document.createElement('div')
region.id = 'announcer'
region.className = 'sr-only'
region.setAttribute('role', 'status')
document.body.appendChild(region)

/** Says msg to screen readers (politely), and nothing on screen. */
export function announce(msg) {
  region.textContent = ''
  setTimeout(() => (region.textContent = msg), 100)
}

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), [tabindex]'

/** Moves the focus to el (a heading or other element that takes none is made to take it, by script only). */
export function focusOn(el) {
  if (!el) return false
  if (!el.matches(FOCUSABLE)) el.tabIndex = -1
  el.focus()
  return document.activeElement === el
}

/**
 * After an item of a list is gone (deleted, removed, revoked), the focus
 * goes to the item now at its place (its control that matches sel, else its
 * first), else to the one before it, else to fallback (the list's heading):
 * not to the page's body, where a keyboard user starts again from the top.
 * items: a selector of the list's items; index: where the gone one was.
 */
export async function focusAfterRemoval(items, index, sel, fallback) {
  await rendered()
  const list = [...document.querySelectorAll(items)]
  for (const it of [list[index], list[index - 1], list[list.length - 1]]) {
    if (!it) continue
    if (focusOn((sel && it.querySelector(`:is(${sel}):not([disabled])`)) || it.querySelector(FOCUSABLE))) return
  }
  focusOn(typeof fallback === 'string' ? document.querySelector(fallback) : fallback)
}

/**
 * Runs fn, which takes an item out of a list, as action (a useAction) and,
 * once it is done and drawn, says said and moves the focus as
 * focusAfterRemoval does (not before: the list's buttons are disabled while
 * the action runs).
 */
export async function removeItem(action, fn, said, items, index, sel, fallback) {
  if (!(await action.run(async () => (await fn(), true)))) return
  announce(said)
  await focusAfterRemoval(items, index, sel, fallback)
}

/**
 * State for a form submission: busy flag, the last error, and fieldError(match),
 * the message for a form field of every field the error names (see ApiError.messageFor).
 *
 * A control is disabled while its action runs, and a browser moves the focus
 * off a control that is disabled, to the body: the focus goes back to it
 * when the action ends, unless the action has put it somewhere else.
 */
export function useAction() {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(null)
  const run = async (fn) => {
    const from = document.activeElement
    setBusy(true)
    setError(null)
    try {
      return await fn()
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
      rendered().then(() => {
        const lost = !document.activeElement || document.activeElement === document.body
        if (lost && from && from !== document.body && from.isConnected) from.focus()
      })
    }
  }
  const fieldError = (match) => (error && error.messageFor && error.messageFor(match)) || undefined
  // The error for the form's own box (an alert): the first that names no
  // field, or a field none of the form's fields shows (matchers: those its
  // fieldError calls take), so that no refusal goes unsaid.
  const otherError = (...matchers) => {
    if (!error || !error.errors || !error.errors.length) return error
    const field = (x) => x && x.extensions && x.extensions.field
    const shown = (f) => matchers.some((m) => (typeof m === 'function' ? m(f) : m === f))
    const other = error.errors.find((x) => !field(x) || !shown(field(x)))
    return other ? { code: (other.extensions && other.extensions.code) || error.code, message: other.message || error.message } : null
  }
  return { busy, error, run, setError, fieldError, otherError }
}

/**
 * State a form edits that the URL holds too: put back to `value` when `key`
 * changes (back, forward, a link), but not on mount. An effect that also
 * ran on mount could run after the reader's first edits, since effects wait
 * for the next frame, and undo them (the tour's funnel lost its steps so).
 */
export function useUrlState(value, key = value) {
  const [state, setState] = useState(value)
  const seen = useRef(key)
  useEffect(() => {
    if (seen.current === key) return
    seen.current = key
    setState(value)
  }, [key])
  return [state, setState]
}

/** Sets the document title for a page. */
export function useTitle(t) {
  useEffect(() => {
    document.title = t ? `${t} · Crumbs` : 'Crumbs'
  }, [t])
}

export const PageHead = ({ title, children }) => html`<header class="page-head"><h1 tabindex="-1" id="page-title">${title}</h1><div class="actions">${children}</div></header>`

// A visitor's bidi control (U+202E in a property) would reorder the JSON
// after it, keys, quotes and all: it is shown escaped, as JSON may write it.
const bidiControl = /[\u202a-\u202e\u2066-\u2069]/g

/** Renders a JSON value (properties, fields) as text. */
export const JsonText = ({ value }) =>
  html`<pre class="json">${JSON.stringify(value, null, 2).replace(bidiControl, (c) => `\\u${c.charCodeAt(0).toString(16)}`)}</pre>`

/** A <select> of an app's definitions by code. */
export const CodeSelect = ({ id, value, onChange, defs, all, label }) => html`<select id=${id} value=${value} aria-label=${label} onChange=${(e) => onChange(e.target.value)}>
  ${all && html`<option value="">${all}</option>`}
  ${defs.map((d) => html`<option value=${d.code}>${d.name} (${d.code})</option>`)}
</select>`

/**
 * For a list paged in the page's state, not in its URL: once another page
 * of it shows, the focus goes to the page's title, as after a navigation
 * (the button pressed may be gone: Older on the last page). A change of
 * filter (which goes back to the first page) leaves the focus on the filter.
 */
export function usePageFocus(q, cursor, filter = '') {
  const shown = useRef({ cursor, filter })
  useEffect(() => {
    if (shown.current.filter !== filter) {
      shown.current = { cursor, filter }
      return
    }
    if (shown.current.cursor === cursor || !q.data || q.loading) return
    shown.current = { cursor, filter }
    focusOn(document.getElementById('page-title'))
  }, [cursor, filter, q.data, q.loading])
}

/**
 * Older and newer pages of a cursor-paged list (?after=…). Newer goes back
 * in history when Older led here; a link opened with ?after= has no page
 * before it in this tab (going back left the dashboard), so it goes to the
 * newest page.
 */
export function Pager({ label, pageInfo }) {
  const [q, setQ] = useQueryParams()
  const paged = history.state && history.state.paged
  return html`<nav class="pager" aria-label=${label}>
    ${q.get('after') && html`<button class="secondary" onClick=${() => (paged ? history.back() : setQ({ after: null }))}>${paged ? '← Newer' : '← Newest'}</button>`}
    ${pageInfo.hasNextPage && html`<button class="secondary" onClick=${() => setQ({ after: pageInfo.endCursor }, false, { paged: true })}>Older →</button>`}
  </nav>`
}

/**
 * Copies text (a secret shown once, a script tag) to the clipboard, and
 * says so: the Clipboard API where the page may use it, else a selected
 * copy of the text and the copy command. The focus stays on the button.
 * label names what is copied ('the secret key').
 */
export function CopyButton({ text, label }) {
  const [done, setDone] = useState(null)
  const timer = useRef(0)
  const copy = async (e) => {
    const button = e.currentTarget
    let ok = false
    try {
      await navigator.clipboard.writeText(text)
      ok = true
    } catch {
      const area = document.createElement('textarea')
      area.value = text
      area.setAttribute('readonly', '')
      area.className = 'sr-only'
      document.body.appendChild(area)
      area.select()
      try {
        ok = document.execCommand('copy')
      } catch {}
      area.remove()
      button.focus()
    }
    setDone(ok ? 'Copied' : 'Copy failed')
    announce(ok ? `Copied ${label}.` : `Could not copy ${label}: select it and copy it yourself.`)
    clearTimeout(timer.current)
    timer.current = setTimeout(() => setDone(null), 3000)
  }
  useEffect(() => () => clearTimeout(timer.current), [])
  return html`<button type="button" class="small secondary copy" onClick=${copy}>${done || 'Copy'}<span class="sr-only"> ${label}</span></button>`
}
