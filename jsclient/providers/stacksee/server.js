// The Crumbs server provider for @stacksee/analytics: sends through the
// JSON API (events and identify) with the app's secret key, batching and retrying. It holds the
// secret key, so package.json keeps it out of browser bundles (the browser
// condition of its export is null) and the constructor refuses to run in a
// page.
import { randomUUID } from 'node:crypto'
import { normaliseEventCode } from './normalise.js'

export { normaliseEventCode }

// Answers that may succeed later: no answer at all (0), HTTP 429 and 5xx,
// and these codes; every other refusal is final.
const RETRY = new Set(['RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL_SERVER_ERROR'])
const retriable = (code, status) => RETRY.has(code) || status == 0 || status == 429 || status >= 500
// Whole-request refusals that hold for every event alike (the key, the app).
const FOR_ALL = new Set(['UNAUTHENTICATED', 'FORBIDDEN', 'NOT_FOUND'])
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** The device of a server-side call: the user id, else the session id. */
const defaultDevice = (event, context) => event.userId || context?.user?.userId || event.sessionId

/**
 * An @stacksee/analytics server provider (the library's AnalyticsProvider
 * interface) that sends to Crumbs. track and pageView queue the event and
 * resolve at once; the queue goes out in batches (at most batchSize events,
 * after flushInterval ms), failed requests are retried with backoff, each
 * event with its message id so that a retry is stored once. flush() and
 * shutdown() resolve when the queue is empty. Refusals go to onError and,
 * with debug, to the console; nothing is thrown into the app.
 */
export class CrumbsServerProvider {
  name = 'Crumbs-Server'

  constructor(config) {
    if (typeof window != 'undefined' && typeof document != 'undefined')
      throw new Error('CrumbsServerProvider holds the app secret key and runs only on a server; use CrumbsClientProvider in the browser')
    const { appId, secretKey, endpoint } = config || {}
    if (!appId || !secretKey || !endpoint) throw new Error('CrumbsServerProvider needs appId, secretKey and endpoint')
    this.config = {
      batchSize: 100,
      flushInterval: 1000,
      maxRetries: 5,
      timeout: 10000,
      deviceId: defaultDevice,
      ...config,
    }
    this.config.batchSize = Math.max(1, Math.min(500, this.config.batchSize))
    // The server's base URL; an endpoint given as …/graphql works too.
    this.base = String(endpoint).replace(/\/+$/, '').replace(/\/graphql$/, '')
    this.debug = !!config.debug
    this.enabled = config.enabled !== false
    this.queue = []
    this.timer = null
    this.running = null
    this.single = false
  }

  initialize() {}

  async track(event, context) {
    if (!this.enabled) return
    const code = normaliseEventCode(event.action)
    this.push(this.event(code, event.properties, event, context), code)
  }

  async pageView(properties, context) {
    if (!this.enabled) return
    this.push(this.event('view', properties && Object.keys(properties).length ? properties : undefined, {}, context), 'view')
  }

  /** Attaches the device userId to the lead with traits.email; the other traits become lead fields. */
  async identify(userId, traits) {
    if (!this.enabled) return
    const { email, name, ...fields } = traits || {}
    const to = typeof email == 'string' && email ? email : /.@./.test(userId) ? userId : ''
    if (!to || !userId) return this.refused({ code: 'BAD_USER_INPUT', message: 'identify needs a userId and traits.email (Crumbs identifies leads by email)' })
    if (String(userId) !== to) fields.userId = String(userId)
    this.queue.push({ identify: { device_id: String(userId), email: to, name, fields } })
    this.schedule()
  }

  /** Nothing to forget on a server: devices are named by each call. */
  async reset() {}

  /** Sends everything queued now; resolves when the queue is empty (retries included). */
  async flush() {
    clearTimeout(this.timer)
    this.timer = null
    while (this.queue.length) {
      this.running ||= this.send().finally(() => (this.running = null))
      await this.running
    }
  }

  /** Sends what is queued and stops; called by ServerAnalytics.shutdown(). */
  async shutdown() {
    await this.flush()
  }

  // One event in the JSON API's shape.
  event(code, properties, event, context) {
    const device = this.config.deviceId(event, context)
    const page = context?.page || {}
    const url = page.url || (page.host && page.path ? `${page.protocol || 'https:'}//${page.host}${page.path}` : undefined)
    return {
      device_id: device == null ? '' : String(device),
      code,
      url,
      referrer: page.referrer || undefined,
      title: page.title || undefined,
      properties: properties || undefined,
      occurred_at: new Date(event.timestamp || Date.now()).toISOString(),
      message_id: randomUUID(),
      source: 'api',
    }
  }

  push(item, code) {
    if (!item.device_id) return this.refused({ code: 'BAD_USER_INPUT', message: 'no device: pass a userId (or sessionId) with the call', eventCode: code })
    this.queue.push({ event: item })
    this.schedule()
  }

  schedule() {
    const events = this.queue.filter((x) => x.event).length
    if (events >= this.config.batchSize) return void this.flush().catch((e) => this.log('flush failed', e))
    if (this.timer) return
    this.timer = setTimeout(() => {
      this.timer = null
      this.flush().catch((e) => this.log('flush failed', e))
    }, this.config.flushInterval)
    this.timer.unref?.()
  }

  // Sends the head of the queue (a run of events, or one identify) until it
  // is stored, refused for good, or out of retries; then takes it off. When
  // a batch is refused as a whole for its content (too large, unreadable),
  // the queue goes one event per request until it is empty, so that only the
  // event at fault is dropped.
  async send() {
    const head = this.queue[0]
    const limit = this.single ? 1 : this.config.batchSize
    let items = head.identify ? [head] : []
    if (head.event) for (const x of this.queue) if (x.event && items.length < limit) items.push(x); else if (!x.event) break
    for (let attempt = 0; items.length; attempt++) {
      const { outcomes, retryAfter, whole } = head.identify ? await this.postIdentify(head.identify) : await this.postEvents(items.map((x) => x.event))
      if (whole && items.length > 1 && !retriable(whole.code, outcomes[0].status) && !FOR_ALL.has(whole.code)) {
        this.single = true
        return
      }
      const again = []
      items.forEach((x, k) => {
        const o = outcomes[k]
        if (!o.error) return
        if (retriable(o.error.code, o.status) && attempt < this.config.maxRetries) again.push(x)
        else this.refused({ ...o.error, eventCode: x.event?.code })
      })
      this.queue = this.queue.filter((x) => !items.includes(x) || again.includes(x))
      items = again
      if (items.length) await sleep(retryAfter * 1000 || Math.min(30000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2))
    }
    if (!this.queue.length) this.single = false
  }

  // POSTs to the API; answers the status (0 for no answer), the JSON body and Retry-After.
  async post(path, body) {
    try {
      const res = await fetch(`${this.base}${path}`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${this.config.secretKey}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.config.timeout),
      })
      const json = await res.json().catch(() => ({}))
      return { status: res.status, json, retryAfter: +res.headers.get('Retry-After') || 0 }
    } catch (e) {
      return { status: 0, json: { error: { code: 'UNAVAILABLE', message: `no answer from Crumbs: ${e.message}` } }, retryAfter: 0 }
    }
  }

  async postEvents(events) {
    const { status, json, retryAfter } = await this.post(`/api/v1/apps/${encodeURIComponent(this.config.appId)}/events`, { events })
    const results = json.results
    const whole = !Array.isArray(results) && { code: json.error?.code || `HTTP_${status}`, message: json.error?.message || `HTTP ${status}` }
    this.log('sent', { events: events.length, status })
    return { retryAfter, whole, outcomes: events.map((_, k) => (whole ? { status, error: whole } : { status, error: results[k]?.error || null })) }
  }

  async postIdentify(input) {
    const { status, json, retryAfter } = await this.post(`/api/v1/apps/${encodeURIComponent(this.config.appId)}/identify`, input)
    const error = status == 200 && typeof json.moved == 'boolean' ? null : { code: json.error?.code || `HTTP_${status}`, message: json.error?.message || `HTTP ${status}` }
    this.log('identify', { email: input.email, status })
    return { retryAfter, outcomes: [{ status, error }] }
  }

  log(message, data) {
    if (this.debug) console.log(`[${this.name}] ${message}`, data ?? '')
  }

  // A refusal, reported and never thrown: a fault in onError stays there.
  refused(refusal) {
    this.log('refused', refusal)
    try {
      this.config.onError?.(refusal)
    } catch (e) {
      this.log('onError failed', e)
    }
  }
}
