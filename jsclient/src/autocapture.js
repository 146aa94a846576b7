import { opts as c } from './config.js'
import { identify, track } from './index.js'
import { declared, read } from './triggers.js'

const CLICKABLE = '[href],button,[role=button],[type=submit]'
const attr = (el, n) => el.getAttribute(n) || undefined

/**
 * Handles clicks and submits anywhere in the page. A declarative trigger sends
 * its own code; otherwise links and buttons send `click` and forms `submit`
 * (each can be switched off). With identifyForms, a submitted form's email
 * field identifies the visitor; no other field value is ever read.
 */
export function autoCapture() {
  for (const type of ['click', 'submit'])
    // Capture phase, so a site's stopPropagation does not hide the event.
    addEventListener(
      type,
      ({ target: t }) => {
        const d = declared(t, type), click = type < 'd', el = click ? t.closest?.(CLICKABLE) : t
        if (d) track(...read(d))
        else if (el && c[click ? 'autoClick' : 'autoSubmit'] !== false)
          track(
            type,
            click
              ? // An SVG <a>'s href is an SVGAnimatedString: its baseVal, resolved
                // against the page as an HTML link's href is (JSON takes a URL as its href).
                {
                  url: el.href?.baseVal == null ? el.href : new URL(el.href.baseVal, el.baseURI),
                  text: (el.innerText || el.value)?.trim().slice(0, 100),
                  target: attr(el, 'target'),
                }
              : { action: attr(el, 'action'), id: attr(el, 'id') },
          )
        const email = !click && c.identifyForms && t.querySelector('input[type=email],input[name=email]')?.value.trim()
        // Only something that looks like an email; the server validates it.
        if (/.@./.test(email)) identify(email)
      },
      true,
    )
}
