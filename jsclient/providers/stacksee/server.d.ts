// Types of the Crumbs server provider for @stacksee/analytics (tested with 0.14.5).
import type { AnalyticsProvider, BaseEvent, EventContext } from '@stacksee/analytics'
import type { Refusal } from '../../index.js'

export type { Refusal }

export interface CrumbsServerConfig {
  /** The app's public id. */
  appId: string
  /** The app's secret key (sk_…). Keep it on the server. */
  secretKey: string
  /** The Crumbs server's URL, e.g. https://crumbs.example.com (a …/graphql endpoint works too). */
  endpoint: string
  /** The device a track or pageView belongs to. Default: event.userId, else context.user.userId, else event.sessionId. */
  deviceId?: (event: BaseEvent | Record<string, never>, context?: EventContext) => string | undefined
  /** Events per request, at most 500. Default 100. */
  batchSize?: number
  /** Milliseconds an event waits for others to share its request. Default 1000. */
  flushInterval?: number
  /** Retries of a request that failed for a reason that may pass (no answer, 429, 5xx). Default 5. */
  maxRetries?: number
  /** Milliseconds to wait for an answer. Default 10000. */
  timeout?: number
  /** Receives every refusal, and every event given up after maxRetries; never thrown. */
  onError?: (refusal: Refusal) => void
  /** Log what the provider sends and why something was refused. Default false. */
  debug?: boolean
  /** Switch the provider off. Default true. */
  enabled?: boolean
}

/**
 * Sends @stacksee/analytics server calls to Crumbs through the JSON API with the
 * secret key, batched and retried. track and pageView resolve once queued;
 * flush() and shutdown() once everything queued is stored or refused.
 */
export declare class CrumbsServerProvider implements AnalyticsProvider {
  name: string
  constructor(config: CrumbsServerConfig)
  initialize(): void
  identify(userId: string, traits?: Record<string, unknown>): Promise<void>
  track(event: BaseEvent, context?: EventContext): Promise<void>
  pageView(properties?: Record<string, unknown>, context?: EventContext): Promise<void>
  reset(): Promise<void>
  flush(): Promise<void>
  shutdown(): Promise<void>
}

/** The Crumbs event code for an event name: "Order Completed" → "order_completed". */
export declare function normaliseEventCode(name: string): string
