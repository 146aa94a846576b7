import { log, opts as c } from './config.js'
import { P, deviceId, keep, ls, ready, uid } from './storage.js'
import { api, post } from './transport.js'

// Answers that may succeed later (codes, HTTP statuses, or 0 for no answer at
// all): RATE_LIMITED, INTERNAL_SERVER_ERROR, UNAVAILABLE, 0, HTTP 429 and 5xx;
// every other refusal is final. Matched by prefix, which no other code an
// event or identify may get shares, to keep the bundle small.
const RETRY = /^(R|IN|UNAV|0|429|5)/
/** Items kept in the queue (and in storage) at most; the oldest go first. */
export const MAX = 100
/**
 * Characters of JSON one item may take (the server refuses an event over about
 * 13,000: 8 KiB of properties, a URL and a referrer of 2048): a larger one is
 * not queued.
 */
export const ITEM = 16e3
/**
 * Characters of JSON the whole queue may take (browsers give an origin about
 * 5 million for all its localStorage, most of it the site's own): past it, the
 * oldest items go first.
 */
export const SIZE = 25e4
/** The longest wait for a retry, whatever Retry-After says: an hour. */
export const WAIT = 36e5
/** Events per request at most (the server takes 20 from a browser). */
export const BATCH = 20

/** Milliseconds to wait before retry number n: exponential, capped at a minute, with jitter. */
export const backoff = (n) => Math.min(6e4, 1e3 * 2 ** n) * (0.5 + Math.random() / 2)

let n = 1e4

/**
 * The delivery queue. Items are events (snake_case, as the JSON API takes
 * them, each with a message_id, so that sending one twice stores it once) or
 * identifies (an email), each with the device id of when it was queued.
 *
 * Every item has its own storage key (crumbs_<appId>_q, the time, a counter
 * and a random id, so keys sort in the order queued), written once by the tab
 * that queued it and removed by whichever tab delivered it: tabs never
 * overwrite each other's items, and any tab sends them all. Sending and
 * removing happen under a Web Lock, one tab at a time; where there is none
 * (plain http pages, old browsers), two tabs may send an item twice, which the
 * server stores once. An item leaves the queue only when the server has
 * stored it or refused it for good. While nothing may be stored, items wait
 * in memory, and move to storage once they may.
 */
export function createQueue(send = post) {
  let mem = {}, timer, tries = 0

  // A page prerendered by Speculation Rules keeps its items in memory until
  // it is opened (Chromium grants Web Locks, and so sending, only then):
  // stored, they were sent by the next page even when the visitor never
  // opened this one.
  const db = () => {
    try {
      if (keep() && !document.prerendering) return Object.assign(localStorage, mem), (mem = {}), localStorage
    } catch {}
    return mem
  }
  // All queued items as [key, item, characters], oldest first. An item that
  // is no JSON object (damaged, or written by something else) is dropped:
  // sent, it would stop the queue.
  const entries = (s = db()) =>
    Object.keys(s)
      .filter((k) => k.startsWith(P() + 'q'))
      .sort()
      .flatMap((k, x) => {
        try {
          x = JSON.parse(s[k])
        } catch {}
        return x?.constructor == Object ? [[k, x, s[k].length]] : (delete s[k], [])
      })
  const drop = (k) => delete db()[k]
  const schedule = (ms) => (timer ||= setTimeout(flush, ms))

  // Sends the next request: the oldest identify alone, or else up to BATCH
  // events. (The server checks each event on its own: one bad event never sinks
  // a batch.) Answers its items and the answer to come, or no items.
  function next() {
    const e = entries(), t = !e[0]?.[1].code
    const b = e.filter((x) => !x[1].code == t).slice(0, t || BATCH), v = b.map((x) => x[1])
    return [b, b[0] && send(api(t ? 'identify' : 'events'), JSON.stringify(t ? v[0] : { events: v }))]
  }

  // Sends the queue, one request after another, until it is empty or an item
  // waits for a retry; called before a scheduled send or retry, it takes
  // that one's place.
  async function flush() {
    // (clearTimeout answers undefined, which schedule takes for no timer.)
    if ((timer = clearTimeout(timer)), !ready()) return
    let wait
    const run = async () => {
      const [b, answer] = next()
      if (!b[0]) return
      const res = await answer
      const j = (await res?.json().catch(() => 0)) || {}
      // Items to send again; the others leave the queue. Item k's refusal is
      // its own in a batch's results, else the request's (an identify's, or a
      // refusal of the whole request), else, without a successful answer, the
      // HTTP status, or 0 for no answer at all. A final refusal goes, in debug
      // mode, to the console (log answers falsy), and to the onError option
      // (in a microtask, so that its faults never reach the queue).
      const again = b.filter(
        ([key, x], k, e) =>
          ((e = (j.results?.[k] || j).error || (!res?.ok && { code: res?.status | 0 })) &&
            (RETRY.test(e.code) || log('refused', e.code, x) || queueMicrotask(() => c.onError?.({ ...e, eventCode: x.code })))) ||
          !drop(key),
      )
      // Retry-After is seconds or an HTTP date; wait holds the header, then
      // the milliseconds it asks for. (A wait over 2^31 ms would fire at once:
      // setTimeout takes 32 bits; a negative Retry-After, from a broken proxy,
      // or a date gone by, backs off instead.)
      wait =
        again[0] &&
        Math.min(WAIT, (wait = (wait = res?.headers.get('retry-after')) * 1e3 || Date.parse(wait) - Date.now()) > 0 ? wait : backoff(++tries))
    }
    // Where storage is denied (the user blocks cookies for the site, a
    // sandboxed or third-party frame) Web Locks are denied too: send
    // without one, as where there is none.
    await (navigator.locks?.request(P(), run).catch(run) || run())
    if (wait) return schedule(wait)
    tries = 0
    return entries()[0] && flush()
  }

  /** Adds an item and sends it shortly, together with whatever else is queued. */
  function push(x) {
    x.device_id ||= deviceId()
    const k = P() + 'q' + Date.now().toString(36) + n++ + uid()
    let v
    // Properties that are no JSON (a cycle, a BigInt) drop the item, without
    // throwing into the page: a stub call that threw would stop the script
    // tag's replay, and with it the page view. So does an item over ITEM
    // characters. When storage is full, the item waits in memory.
    try {
      ;(v = JSON.stringify(x))[ITEM] ? log('not sent', 'too big', x) : (db()[k] = v)
    } catch (e) {
      v ? (mem[k] = v) : log('not sent', e, x)
    }
    // The newest items stay, MAX of them and SIZE characters at most.
    let t = 0
    entries()
      .reverse()
      .map(([k, , n], i) => ((t += n) > SIZE) | (i >= MAX) && drop(k))
    schedule(300)
  }

  return {
    push,
    /**
     * Sends the queue now (consent arrived, or the app asked); resolves once
     * every item has been stored or refused for good, or waits for a retry.
     */
    flush,
    /**
     * The page is being hidden or unloaded: send the next request at once
     * (keepalive). Its items stay queued, because its answer may never come:
     * they go out again from this or another page, where a repeat is
     * answered duplicate and counted once.
     */
    unload: () => ready() && next(),
  }
}
