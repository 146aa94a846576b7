// Types for the Crumbs browser library: the ES module (src/index.js) and the
// global `crumbs` that the script tag (dist/crumbs.js) installs.

/** Options; on the script tag each is a data-* attribute (appId is data-app-id). */
export interface CrumbsOptions {
  /** The public appId. Required. */
  appId: string
  /**
   * The Crumbs server (under a path, end it with /), or its /graphql URL as earlier versions took it;
   * the JSON API URLs are derived from it. The script tag defaults to where crumbs.js was served from.
   */
  endpoint: string
  /** Send `view` on every page view, including single-page-app navigations. Default true. */
  autoView?: boolean
  /** Send `click` for clicks on links and buttons. Default true. */
  autoClick?: boolean
  /** Send `submit` for form submissions. Default true. */
  autoSubmit?: boolean
  /** On submit, identify the visitor from the form's email field (no other field is read). Default false. */
  identifyForms?: boolean
  /** Keep the device id in memory only: nothing is stored, each page load is a new device. Default false. */
  cookieless?: boolean
  /** Store and send nothing until consent(true); events wait in memory until then. Default false. */
  requireConsent?: boolean
  /** Also keep the device id in a cookie on this domain (e.g. ".example.com") so subdomains share it. */
  cookieDomain?: string
  /** Send nothing when the browser signals Global Privacy Control. Default false. */
  respectGpc?: boolean
  /** Send even from a bot: navigator.webdriver, a crawler's or headless browser's user agent (for end-to-end tests). Default false. */
  allowAutomation?: boolean
  /** Log to the console why events are not sent or were refused. Default false. */
  debug?: boolean
  /** Receives every final refusal, in a microtask of its own (the script tag: `crumbs('onError', fn)`). */
  onError?: (refusal: Refusal) => void
}

/** A final refusal from the server, e.g. UNKNOWN_EVENT_CODE, EVENT_DISABLED or FORBIDDEN. */
export interface Refusal {
  code: string
  message?: string
  /** The refused event's code; undefined for a refused identify. */
  eventCode?: string
}

/** Where an event came from; the library sends js unless told otherwise. */
export type EventSource = 'shortcode' | 'block' | 'js' | 'api' | 'webhook' | 'wordpress'

/** A JSON object of at most 8 KiB when encoded. */
export type Properties = Record<string, unknown>

/** Starts tracking. The script tag calls it with the data-* options; later calls are ignored. track and identify before it are kept until it runs. */
export function init(options: CrumbsOptions): void
/** Sends event `code` (a code defined for the app) for this device. */
export function track(code: string, properties?: Properties, source?: EventSource): void
/** Attaches this device to the lead with this email; `fields.name` becomes the lead's name, the rest its fields. */
export function identify(email: string, fields?: { name?: string; [field: string]: unknown }): void
/** Gives (true) or withdraws (false) consent; withdrawing forgets the device id and the stored queue. Called before init, the last answer holds once init runs. */
export function consent(granted: boolean): void
/** The device id, for passing to a backend that triggers events for the same device. Undefined before init. */
export function deviceId(): string | undefined
/** Starts a new device id (a sign-out) and answers it (undefined before init); what is queued stays with the old one, later events belong to the new, anonymous device. */
export function reset(): string | undefined
/**
 * Sends what is queued now instead of in a moment (ES module only). Resolves once each item has been
 * stored or refused for good (`onError` has had the refusal), or waits for a retry. With `keepalive`
 * (the page is being left), the next request (up to 20 events, or an identify) goes out at once with
 * fetch keepalive and it resolves without waiting for the answer. Before init or consent it sends nothing.
 */
export function flush(keepalive?: boolean): Promise<void>

/** The global function: calls made before the script loads are queued and replayed. */
export interface Crumbs {
  (command: 'track', code: string, properties?: Properties, source?: EventSource): void
  (command: 'identify', email: string, fields?: { name?: string; [field: string]: unknown }): void
  (command: 'consent', granted: boolean): void
  (command: 'deviceId'): string | undefined
  (command: 'reset'): string | undefined
  /** Sets the function that receives every final refusal (the ES module's onError option); a later call replaces it, null removes it. */
  (command: 'onError', handler: ((refusal: Refusal) => void) | null): void
  /** Calls queued by the stub before the library loaded. */
  q?: IArguments[]
}

declare global {
  interface Window {
    crumbs: Crumbs
  }
  var crumbs: Crumbs
}
