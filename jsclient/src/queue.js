import { log, opts as c } from './config.js'
import { deviceId, keep, ls, ready } from './storage.js'
import { post } from './transport.js'

// Indexed by item type: 0 = event, 1 = identify.
const type = (x) => +!x.code
const QUERY = [
  'mutation($i:[TriggerInput!]!){r:triggerBatch(inputs:$i){error{code message}}}',
  'mutation($i:IdentifyInput!){r:identify(input:$i){moved}}',
]
// Answers that may succeed later (codes, HTTP statuses, or 0 for no answer at
// all): RATE_LIMITED, INTERNAL_SERVER_ERROR, UNAVAILABLE, 0, HTTP 429 and 5xx;
// every other refusal is final. Matched by prefix, which no other code
// shares, to keep the bundle small.
const RETRY = /^(R|INTE|UNAV|0|429|5)/
/** Items kept in the queue (and in storage) at most; the oldest go first. */
export const MAX = 100
/** Events per request at most (the server takes 500). */
export const BATCH = 20

// Reports a final refusal in debug mode and to the onError option (in a
// microtask, so that its faults never reach the queue). Answers falsy.
// onError and seal (for reset) are hooks of the ES module; the script tag,
// which can use neither, is built without them (build.mjs defines CRUMBS_TAG).
const refuse = (err, x) =>
  log('refused', err.code, err.message, x) || (!globalThis.CRUMBS_TAG && queueMicrotask(() => c.onError?.({ ...err, eventCode: x.code })))

/** Milliseconds to wait before retry number n: exponential, capped at a minute, with jitter. */
export const backoff = (n) => Math.min(6e4, 1e3 * 2 ** n) * (0.5 + Math.random() / 2)

/**
 * The delivery queue. Items are TriggerInput or IdentifyInput objects
 * without appId and deviceId (an identify has an email, an event a code);
 * each event carries a messageId, so sending an item twice (a retry, a beacon
 * whose answer never came, another tab) stores it once. An item leaves the
 * queue only when the server has stored it or refused it for good.
 */
export function createQueue(send = post) {
  let q = [], timer, busy, tries = 0, limit = BATCH, beaconed
  try {
    q = (keep() && JSON.parse(ls('q'))) || []
  } catch {}

  const save = () => keep() && ls('q', JSON.stringify(q))
  const schedule = (ms) => (timer ||= setTimeout(flush, ms))

  // The next request: one identify, or up to `limit` events in a row.
  function next() {
    const t = type(q[0])
    let n = 0
    while (q[n] && type(q[n]) == t && n < (t || limit)) n++
    const items = q.slice(0, n)
    const id = deviceId()
    const v = items.map((x) => ({ appId: c.appId, deviceId: id, ...x }))
    return [items, JSON.stringify({ query: QUERY[t], variables: { i: t ? v[0] : v } })]
  }

  async function flush() {
    timer = 0
    if (busy || !q[0] || !ready()) return
    busy = 1
    const [items, body] = next()
    const res = await send(c.endpoint, body)
    const j = (await res?.json().catch(() => 0)) || {}
    busy = 0
    const r = j.data?.r, e = j.errors?.[0]
    const code = res ? e?.extensions?.code || res.status : 0
    // Whether x is to be sent again; a final refusal is reported in debug mode
    // and to the onError option (refuse answers falsy).
    const retry = (x, err) => err && (RETRY.test(err.code) || refuse(err, x))
    let again
    if (r) again = items.filter((x, k) => retry(x, r[k]?.error))
    // A refusal of the whole request (too large, bad input): send one item at
    // a time until the queue is empty, so only the item at fault is dropped.
    else if (items[1] && !RETRY.test(code)) limit = 1
    else again = items.filter((x) => retry(x, { code, message: e?.message }))
    if (again) q = q.filter((x) => again.includes(x) || !items.includes(x))
    if (!q[0]) limit = BATCH
    save()
    if (again?.[0]) return schedule(res?.headers.get('Retry-After') * 1e3 || backoff(++tries))
    tries = 0
    if (q[0]) schedule(0)
  }

  return {
    /** Stamps the queued items that have no device id with this one (before the device id changes). */
    seal: !globalThis.CRUMBS_TAG && ((id) => {
      for (const x of q) x.deviceId ||= id
      save()
    }),
    /** Adds an item and sends it shortly, together with whatever else is queued. */
    push(x) {
      if (q.push(x) > MAX) q.shift()
      save()
      schedule(300)
    },
    /** Stores the queue and sends it soon (consent arrived). */
    flush() {
      save()
      schedule(0)
    },
    /**
     * The page is being hidden or unloaded: store the queue and beacon the
     * next request. Items stay queued, because a beacon's fate is unknown:
     * they go out again on the next page, where a repeat is answered
     * duplicate and counted once.
     */
    unload() {
      save()
      // pagehide and visibilitychange both come when a page is left: one beacon is enough.
      if (!ready() || !q[0] || q.at(-1) == beaconed) return
      beaconed = q.at(-1)
      send(c.endpoint, next()[1], 1)
    },
  }
}
