/**
 * POSTs a GraphQL body. A string body goes as text/plain, a CORS "simple"
 * request that needs no preflight. With `unload` it uses navigator.sendBeacon
 * where it can, since the page may be gone before an answer arrives. Resolves
 * to the Response, to true after a beacon, or to undefined after a network
 * failure.
 */
export const post = async (url, body, unload) =>
  (unload && navigator.sendBeacon?.(url, body)) ||
  // Browsers refuse keepalive bodies over 64 KiB in flight.
  fetch(url, { method: 'POST', body, keepalive: body.length < 6e4 }).catch(() => {})
