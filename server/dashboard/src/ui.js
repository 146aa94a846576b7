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
  const load = useCallback(() => {
    const n = ++gen.current
    if (!variables) return setState({ loading: false, data: null, error: null })
    setState((s) => ({ ...s, loading: true, error: null }))
    gql(query, variables).then(
      (data) => n === gen.current && setState({ loading: false, data, error: null }),
      (error) => n === gen.current && setState({ loading: false, data: null, error }),
    )
  }, deps)
  useEffect(load, [load])
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
 */
export function Field({ label, id, error, hint, children }) {
  const describedBy = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ') || undefined
  const control = isValidElement(children) && children.props.id === id
    ? cloneElement(children, { 'aria-describedby': describedBy, ...(error && { 'aria-invalid': 'true' }) })
    : children
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${control}
    ${hint && html`<div class="hint" id=${id + '-hint'}>${hint}</div>`}
    ${error && html`<div class="field-error" id=${id + '-error'} role="alert">${error}</div>`}
  </div>`
}

/**
 * State for a form submission: busy flag, the last error, and fieldError(match),
 * the message for a form field of every field the error names (see ApiError.messageFor).
 */
export function useAction() {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState(null)
  const run = async (fn) => {
    setBusy(true)
    setError(null)
    try {
      return await fn()
    } catch (e) {
      setError(e)
    } finally {
      setBusy(false)
    }
  }
  const fieldError = (match) => (error && error.messageFor && error.messageFor(match)) || undefined
  return { busy, error, run, setError, fieldError }
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
