// (The order of these imports is the order of the bundle, which gzips a few bytes smaller so.)
import { filter } from './filter.js'
import { P, deviceId as device, forget, keep, ls, uid } from './storage.js'
import { ES, log, opts as c } from './config.js'
import { createQueue } from './queue.js'
import { read, watch } from './triggers.js'
import { onNavigate } from './spa.js'
import { autoCapture } from './autocapture.js'

let queue, agreed
// Items queued before init.
const early = []
// Whether init has run. The script tag runs it before it installs crumbs(),
// so there it always has, and the build leaves these checks out.
const started = () => !ES || queue

/**
 * Starts tracking with these options (see index.d.ts). Later calls are ignored.
 * The script tag passes replay, which runs the calls its stub kept, before the
 * first page view is queued: a page that called crumbs('reset') before the
 * library loaded (a sign-out's landing page) has its view on the new device.
 */
export function init(options, replay) {
  if (ES && queue) return
  Object.assign(c, options)
  c.why = filter(navigator)
  // Earlier versions kept crumbs_id and crumbs_consent per origin: the first app to start takes them over.
  // Their queue, crumbs_q (one array), becomes crumbs_<appId>_q, which the queue drops as no item.
  for (let k of ['id', 'consent', 'q'])
    try {
      ls(k) || ls(k, localStorage[(k = 'crumbs_' + k)])
      delete localStorage[k]
    } catch {}
  c.consented = ls('consent')
  c.ref = document.referrer
  queue = createQueue()
  // visibilitychange (it bubbles from the document to the window) is the last
  // event a page surely gets when it is left, closed or sent to the background.
  addEventListener('visibilitychange', () => document.hidden && queue.unload())
  // Consent given or withdrawn in another tab holds here too (a tab that went
  // on after a withdrawal stored a new device id and sent its events).
  addEventListener('storage', (e) => e.key == P() + 'consent' && consent(e.newValue))
  autoCapture()
  const scan = watch((el) => track(...read(el)))
  // A view is the page as it was navigated to, with the title that it ends up with.
  const view = (x) => {
    if (c.autoView !== false) send({ ...x, title: title() })
    scan()
  }
  // Routers set the new title after pushState: a view waits until the title
  // differs from the one when it was navigated to (x.title), or for a second.
  const settled = (x, n = 9) => (title() == x.title && n ? setTimeout(settled, 100, x, n - 1) : view(x))
  let url = page()
  onNavigate(() => {
    if (page() != url) {
      c.ref = url
      url = page()
      settled(event('view'))
    }
  })
  // A page restored from the back/forward cache is a view, as the same page
  // loaded again is (whether the browser keeps a page is its own choice).
  addEventListener('pageshow', (e) => e.persisted && view(event('view')))
  const first = event('view')
  // Consent given or withdrawn before init holds from the first page view on.
  ES && agreed != null && consent(agreed)
  replay?.()
  // Loaded async, the library may run before the page is parsed (a tag
  // above the <title>): the view waits for the document, which never waits
  // for the library (DOMContentLoaded does wait for deferred scripts, so a
  // server that did not answer held the page's own ready handlers).
  document.readyState == 'loading' ? addEventListener('DOMContentLoaded', () => view(first)) : view(first)
  ES && early.map(send)
}

// Queues an item unless a filter says no (and says why in debug mode); before
// init, the ES module keeps it for init (the script tag runs init first, and
// its stub keeps earlier calls).
const send = (x) => (!started() ? early.push(x) : c.why ? log('not sent', c.why, x) : queue.push(x))

// The server takes 512 bytes of title.
const title = () => document.title.slice(0, 128)

// The page's URL without its #fragment, which browsers never send to a
// server (not even in Referer) and which sites use for what must stay in
// the page: OAuth and magic-link sign-ins land on /callback#access_token=….
const page = () => location.href.split('#')[0]

// An event as the JSON API takes it (the queue adds the device id). The
// server refuses a url or referrer over 2048 bytes (a URL is ASCII, a byte a
// character), and browsers send referrers of up to 4096: cut, it is stored.
const event = (code, properties, source) => ({
  code,
  url: page().slice(0, 2048),
  referrer: c.ref?.slice(0, 2048),
  title: title(),
  properties,
  occurred_at: new Date().toISOString(),
  message_id: uid(),
  source: source || 'js',
})

/**
 * Sends event `code` for this device, with optional properties (a JSON
 * object) and source (default js; the WordPress plugin passes shortcode or block).
 */
export const track = (code, properties, source) => send(event(code, properties, source))

/** Attaches this device to the lead with this email; fields.name becomes the lead's name. */
export function identify(email, fields) {
  const { name, ...rest } = fields || {}
  send({ email, name, fields: rest })
}

/**
 * Gives (true) or withdraws (false) consent. Before consent, when
 * requireConsent is on, nothing is stored or sent and events wait in memory;
 * withdrawing forgets the device id and the stored queue, and stops sending.
 */
export function consent(granted) {
  // Before init, the ES module keeps the last answer for init.
  if (!started()) return void (agreed = granted)
  c.consented = granted
  if (granted) {
    if (keep()) ls('consent', 1), device()
    queue.flush()
  } else {
    c.requireConsent = 1 // (read as a boolean)
    forget()
  }
}

/** The device id (stored only once storing is allowed); undefined before init. */
export const deviceId = () => started() && device()

/**
 * Starts a new device id (a visitor signed out, a shared computer): events
 * from now on belong to a new device; those already queued keep the old one.
 */
export const reset = () => started() && device(1)

/**
 * Sends what is queued now instead of in a moment. Resolves once each item has
 * been stored or refused for good (onError has had the refusal), or waits for
 * a retry. With keepalive (the page is being left), the next request goes out
 * at once with fetch keepalive, as when the page is hidden, and it resolves
 * without waiting for the answer. Before init, and before consent, it sends
 * nothing.
 */
export async function flush(keepalive) {
  await (keepalive ? queue?.unload() : queue?.flush())
}
