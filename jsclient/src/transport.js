import { opts as c } from './config.js'

/**
 * The JSON API URL of this app for path (events or identify), relative to the
 * endpoint: the Crumbs server's URL (https://crumbs.example.com, or with a
 * path, https://example.com/crumbs/), or its /graphql URL as earlier versions
 * took it.
 */
export const api = (path) => new URL(`api/v1/apps/${c.appId}/${path}`, c.endpoint)

/** Milliseconds a request may take before it is given up and retried. */
export const TIMEOUT = 1e4

/**
 * POSTs a JSON body as text/plain, a CORS "simple" request that needs no
 * preflight. keepalive lets the request finish when the page is being left
 * (as navigator.sendBeacon would); browsers refuse keepalive bodies over
 * 64 KiB in flight, counted in UTF-8 bytes, not in characters: 30,000
 * characters of Chinese are 90,000 bytes, and such a batch, refused at once
 * as a network failure, was retried without end, holding up the queue for
 * good. A character of JSON takes 3 bytes at most, so a body of under 20,000
 * characters surely fits (measuring the bytes cost the size budget more).
 * Resolves to the Response, or to undefined after a
 * network failure or after TIMEOUT without an answer: browsers wait for an
 * answer without end, and a request that never ends would hold the queue's
 * lock, so that no tab sent anything again until it was closed. (Browsers
 * without AbortSignal.timeout wait as before.)
 */
export const post = (url, body) =>
  fetch(url, { method: 'POST', body, keepalive: body.length < 2e4, signal: AbortSignal.timeout?.(TIMEOUT) }).catch(() => {})
