import { autoCapture } from './autocapture.js'
import { log, opts as c } from './config.js'
import { filter } from './filter.js'
import { createQueue } from './queue.js'
import { onNavigate } from './spa.js'
import { deviceId as device, forget, keep, ls, setCookie, uid } from './storage.js'
import { read, watch } from './triggers.js'

let queue

/** Starts tracking with these options (see index.d.ts). Later calls are ignored. */
export function init(options) {
  if (queue) return
  Object.assign(c, options)
  c.why = filter()
  c.consented = ls('consent')
  c.ref = document.referrer
  queue = createQueue()
  addEventListener('pagehide', queue.unload)
  // visibilitychange bubbles from the document to the window.
  addEventListener('visibilitychange', () => document.hidden && queue.unload())
  autoCapture(track, identify)
  const scan = watch((el) => track(...read(el)))
  const page = () => location.href.split('#')[0]
  const view = () => {
    if (c.autoView !== false) track('view')
    scan()
  }
  let url = page()
  onNavigate(() => {
    if (page() != url) {
      c.ref = url
      url = page()
      view()
    }
  })
  view()
}

// Queues an item unless a filter says no (and says why in debug mode).
const send = (x) => queue && (c.why ? log('not sent:', c.why, x) : queue.push(x))

/**
 * Sends event `code` for this device, with optional properties (a JSON
 * object) and source (default js; the WordPress plugin passes shortcode or block).
 */
export function track(code, properties, source) {
  send({
    code,
    url: location.href,
    referrer: c.ref,
    // The server takes 512 bytes of title.
    title: document.title.slice(0, 128),
    properties,
    occurredAt: new Date().toISOString(),
    messageId: uid(),
    source: source || 'js',
  })
}

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
  if (!queue) return
  c.consented = granted
  if (granted) {
    if (keep()) ls('consent', 1)
    queue.flush()
  } else {
    c.requireConsent = true
    forget()
  }
}

/** The device id (stored only once storing is allowed); undefined before init. */
export const deviceId = () => queue && device()

/**
 * Starts a new device id (a logout): what is queued stays with the old one,
 * later events belong to a new, anonymous device.
 */
export function reset() {
  if (!queue) return
  queue.seal(device())
  c.id = uid()
  if (keep()) ls('id', c.id), setCookie(c.id)
}
