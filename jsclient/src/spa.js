/**
 * Calls fn after every single-page-app navigation: history.pushState,
 * history.replaceState and popstate (back/forward). fn decides whether the
 * URL really changed.
 */
export function onNavigate(fn) {
  for (const m of ['pushState', 'replaceState']) {
    const orig = history[m]
    history[m] = (...a) => {
      orig.apply(history, a)
      fn()
    }
  }
  addEventListener('popstate', fn)
}
