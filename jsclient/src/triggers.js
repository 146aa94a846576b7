// Declarative triggers: data-crumbs-event="code" with data-crumbs-on =
// click (the default) | submit | view | visible.

/**
 * The declarative trigger around el that fires on this type of event, if any.
 * el may be no element: scripts dispatch clicks on the document or window.
 */
export function declared(el, type) {
  const d = el.closest?.('[data-crumbs-event]')
  return d && (d.dataset.crumbsOn || 'click') == type && d
}

/** Code, properties (data-crumbs-prop-*) and source (data-crumbs-source) of a trigger element. */
export function read(el) {
  const d = el.dataset, p = {}
  for (const k in d) {
    // data-crumbs-prop-2fa is crumbsProp-2fa in the dataset: a name may start with a digit.
    const m = /^crumbsProp-?(.)(.*)/.exec(k)
    if (m) p[m[1].toLowerCase() + m[2]] = d[k]
  }
  return [d.crumbsEvent, p, d.crumbsSource]
}

/**
 * Fires view and visible (IntersectionObserver) triggers once per page view,
 * including elements added later (a MutationObserver scans again). Returns
 * the function to call on every page view.
 */
export function watch(fire) {
  let seen // a WeakSet, new for every page view
  const once = (el) => seen.has(el) || (seen.add(el), fire(el))
  const io = new IntersectionObserver((es) => es.map((e) => e.isIntersecting && once(e.target)))
  const scan = () => {
    for (const el of document.querySelectorAll('[data-crumbs-on]')) {
      const on = el.dataset.crumbsOn
      on == 'view' ? once(el) : on == 'visible' && io.observe(el)
    }
  }
  new MutationObserver(scan).observe(document, { childList: 1, subtree: 1 })
  return () => {
    seen = new WeakSet()
    scan()
  }
}
