import { opts as c } from './config.js'
import { declared, read } from './triggers.js'

const CLICKABLE = 'a[href],button,[role=button],input[type=submit]'
const attr = (el, n) => el.getAttribute(n) || undefined

/**
 * Handles clicks and submits anywhere in the page. A declarative trigger sends
 * its own code; otherwise links and buttons send `click` and forms `submit`
 * (each can be switched off). With identifyForms, a submitted form's email
 * field identifies the visitor; no other field value is ever read.
 */
export function autoCapture(track, identify) {
  // Capture phase, so a site's stopPropagation does not hide the event.
  addEventListener('click', (e) => {
    const d = declared(e.target, 'click'), el = e.target.closest(CLICKABLE)
    if (d) track(...read(d))
    else if (el && c.autoClick !== false)
      track('click', {
        url: el.href,
        text: (el.innerText || el.value)?.trim().slice(0, 100),
        target: attr(el, 'target'),
      })
  }, true)
  addEventListener('submit', (e) => {
    const f = e.target, d = declared(f, 'submit')
    if (d) track(...read(d))
    else if (c.autoSubmit !== false) track('submit', { action: attr(f, 'action'), id: attr(f, 'id') })
    const email = c.identifyForms && f.querySelector('input[type=email],input[name=email]')?.value.trim()
    // Only something that looks like an email; the server validates it.
    if (/.@./.test(email)) identify(email)
  }, true)
}
