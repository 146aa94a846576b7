// A small history router: every page has a URL, links are plain <a href>,
// and back, forward and reload work.
import { useEffect, useState } from 'preact/hooks'

const subs = new Set()
let moved = false
const notify = (focus = true) => {
  moved = focus
  subs.forEach((fn) => fn(location.pathname + location.search))
}

/** True once after each navigation inside the app (not on the first load). */
export function justNavigated() {
  const m = moved
  moved = false
  return m
}

/**
 * Goes to href; state is kept with the history entry (history.state).
 * keep: the same page shown otherwise (a filter changed), so the focus
 * stays where it is instead of going to the page's title.
 */
export function navigate(href, replace = false, state = null, keep = false) {
  if (href === location.pathname + location.search) return
  history[replace ? 'replaceState' : 'pushState'](state, '', href)
  notify(!keep)
  if (!keep) window.scrollTo(0, 0)
}

addEventListener('popstate', () => notify())
// Same-origin links navigate without reloading, unless a modifier asks for a new tab.
addEventListener('click', (e) => {
  const a = e.target.closest && e.target.closest('a[href]')
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return
  if (a.target || a.hasAttribute('download') || a.getAttribute('href').startsWith('#')) return
  const url = new URL(a.href)
  if (url.origin !== location.origin || url.pathname.startsWith('/graphql') || url.pathname.startsWith('/dashboard/')) return
  e.preventDefault()
  navigate(url.pathname + url.search)
})

/** The current path and query, re-rendering on every navigation. */
export function useLocation() {
  const [loc, setLoc] = useState(location.pathname + location.search)
  useEffect(() => (subs.add(setLoc), () => subs.delete(setLoc)), [])
  return loc
}

/** Matches a path against a pattern like /apps/:id/leads/:lead. */
export function match(pattern, path) {
  const p = pattern.split('/'), s = path.split('/')
  if (p.length !== s.length) return null
  const params = {}
  for (let i = 0; i < p.length; i++) {
    if (p[i].startsWith(':')) params[p[i].slice(1)] = decodeURIComponent(s[i])
    else if (p[i] !== s[i]) return null
  }
  return params
}

/**
 * Query parameters of the current URL, and a setter that replaces them
 * (keeping history); keep as navigate's, for a filter.
 */
export function useQueryParams() {
  const loc = useLocation()
  const q = new URLSearchParams(loc.split('?')[1] || '')
  const set = (changes, replace = false, state = null, keep = false) => {
    const n = new URLSearchParams(q)
    for (const [k, v] of Object.entries(changes)) v == null || v === '' ? n.delete(k) : n.set(k, v)
    const s = n.toString()
    navigate(location.pathname + (s ? `?${s}` : ''), replace, state, keep)
  }
  return [q, set]
}
