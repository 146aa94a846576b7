/**
 * The Crumbs event code for an event name, as the Segment endpoint and the
 * Bento webhooks make it: trimmed, lowercased, every run of characters
 * outside [a-z0-9] one "_", no "_" at either end. "Order Completed" becomes
 * order_completed, "Page-View!" page_view; cut to 64 characters (a code's
 * limit), without a "_" left at the end. The same as models.NormaliseEventCode
 * on the server. The server still checks that the code is defined for the app.
 */
export const normaliseEventCode = (name) =>
  String(name)
    .trim()
    // Go's simple case mapping lowercases U+0130 (İ) to "i"; JavaScript's full one to "i" and a combining dot.
    .replace(/\u0130/g, 'i')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 64)
    .replace(/_+$/, '')
