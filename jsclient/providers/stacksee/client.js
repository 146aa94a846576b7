// The Crumbs client provider for @stacksee/analytics. It drives the Crumbs
// browser library (../../src), so events share its device id, queue,
// retries, consent and batching; it has no transport of its own.
import { consent, deviceId, flush, identify, init, reset, track } from '../../src/index.js'
import { normaliseEventCode } from './normalise.js'

export { normaliseEventCode }

/**
 * An @stacksee/analytics client provider (the library's AnalyticsProvider
 * interface) that sends to Crumbs: pageView is the view event (anonymous
 * page views work), track(event) the event's normalised code, identify the
 * lead with traits.email, reset a new device id, flush and pageLeave the
 * library's queue at once. Refusals go to onError and, with debug, to the
 * console; nothing is thrown into the app.
 */
export class CrumbsClientProvider {
  name = 'Crumbs-Client'

  constructor(config) {
    this.config = { ...config }
    this.debug = !!config?.debug
    this.enabled = config?.enabled !== false
    this.initialized = false
  }

  /** Starts the browser library; outside a browser, and when disabled, it does nothing. */
  initialize() {
    if (this.initialized || !this.enabled || typeof window == 'undefined' || typeof document == 'undefined') return
    const { enabled, onError, endpoint, ...rest } = this.config
    init({
      // The app calls pageView and track itself: no automatic events unless asked for.
      autoView: false,
      autoClick: false,
      autoSubmit: false,
      ...rest,
      endpoint: endpoint || location.origin,
      onError: (refusal) => this.refused(refusal),
    })
    this.initialized = true
    this.log('initialized', { appId: this.config.appId })
  }

  // Whether calls go through: enabled, in a browser, and initialized (which
  // the library does before the first call; a call that comes first starts it).
  ready() {
    this.initialize()
    return this.initialized
  }

  identify(userId, traits) {
    if (!this.ready()) return
    const { email, ...fields } = traits || {}
    const to = typeof email == 'string' && email ? email : /.@./.test(userId) ? userId : ''
    if (!to) return this.refused({ code: 'BAD_USER_INPUT', message: 'identify needs traits.email (Crumbs identifies leads by email)' })
    if (userId != null && userId !== to) fields.userId = String(userId)
    identify(to, fields)
    this.log('identify', { email: to, fields })
  }

  track(event) {
    if (!this.ready()) return
    const code = normaliseEventCode(event.action)
    track(code, event.properties)
    this.log('track', { code, properties: event.properties })
  }

  pageView(properties) {
    if (!this.ready()) return
    track('view', properties && Object.keys(properties).length ? properties : undefined)
    this.log('view', properties)
  }

  /** A logout: later events belong to a new, anonymous device. */
  reset() {
    if (!this.ready()) return
    reset()
    this.log('reset: new device id')
  }

  /**
   * Sends what the library has queued now; resolves once the server has
   * answered (refusals have reached onError). With useBeacon (the page is
   * being unloaded), the next request goes out at once with fetch keepalive,
   * and it resolves without waiting for the answer.
   */
  async flush(useBeacon) {
    if (this.ready()) await flush(useBeacon)
  }

  /**
   * The page is being left: what is queued goes out at once with keepalive
   * (flush(true)). Crumbs has no page-leave event (every app would refuse it
   * as UNKNOWN_EVENT_CODE unless it defined one), so no event is recorded
   * and the properties are not sent.
   */
  pageLeave() {
    if (!this.ready()) return
    flush(true)
    this.log('pageLeave: queue sent with keepalive')
  }

  /** Gives or withdraws consent (with requireConsent: true). */
  consent(granted) {
    if (this.ready()) consent(granted)
  }

  /** The Crumbs device id, e.g. for a server that sends events for this visitor. */
  deviceId() {
    return this.ready() ? deviceId() : undefined
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
