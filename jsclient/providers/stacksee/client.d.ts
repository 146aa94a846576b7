// Types of the Crumbs client provider for @stacksee/analytics (tested with 0.14.5).
import type { AnalyticsProvider, BaseEvent, EventContext } from '@stacksee/analytics'
import type { CrumbsOptions, Refusal } from '../../index.js'

export type { Refusal }

export interface CrumbsClientConfig extends Omit<CrumbsOptions, 'endpoint' | 'onError'> {
  /** The app's public id. */
  appId: string
  /** The Crumbs server's URL, e.g. https://crumbs.example.com (its /graphql URL works too). Default: the page's origin. */
  endpoint?: string
  /** Receives every refusal (UNKNOWN_EVENT_CODE, EVENT_DISABLED, an identify without email…); never thrown. */
  onError?: (refusal: Refusal) => void
  /** Log what the provider does and why something was refused. Default false. */
  debug?: boolean
  /** Switch the provider off. Default true. */
  enabled?: boolean
}

/**
 * Sends @stacksee/analytics calls to Crumbs through the Crumbs browser library:
 * pageView → view (anonymous page views work), track → the event's normalised
 * code ("Order Completed" → order_completed), identify → the lead with
 * traits.email (the other traits become lead fields, name the lead's name),
 * reset → a new device id, flush → the library's queue sent now, pageLeave → the
 * queue sent at once with keepalive (no event: Crumbs has no page-leave code).
 * autoView, autoClick and autoSubmit default to false.
 */
export declare class CrumbsClientProvider implements AnalyticsProvider {
  name: string
  constructor(config: CrumbsClientConfig)
  initialize(): void
  identify(userId: string, traits?: Record<string, unknown>): void
  track(event: BaseEvent, context?: EventContext): void
  pageView(properties?: Record<string, unknown>, context?: EventContext): void
  reset(): void
  /**
   * Sends what is queued now; resolves once the server has answered (refusals have reached onError).
   * With useBeacon, the next request goes out at once with fetch keepalive, without waiting for the answer.
   */
  flush(useBeacon?: boolean): Promise<void>
  /** The page is being left: the queue goes out at once with keepalive; no event is recorded, the properties are not sent. */
  pageLeave(properties?: Record<string, unknown>, context?: EventContext): void
  /** Gives (true) or withdraws (false) consent, with requireConsent: true. */
  consent(granted: boolean): void
  /** The Crumbs device id, e.g. for a server that sends events for this visitor. */
  deviceId(): string | undefined
}

/** The Crumbs event code for an event name: "Order Completed" → "order_completed". */
export declare function normaliseEventCode(name: string): string
