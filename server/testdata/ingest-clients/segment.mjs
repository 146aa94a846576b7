// Sends track, identify, page and screen calls through Segment's real Node
// library (@segment/analytics-node) to a Crumbs server; driven by
// server/segment_test.go. Usage: node segment.mjs <host> <writeKey>
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: 10, maxRetries: 2 })
const responses = []
analytics.on('http_response', (r) => responses.push(r.status))
analytics.on('error', (err) => console.error('segment error:', err.code, err.reason?.message ?? err.reason))

analytics.identify({
  anonymousId: 'seg-anon-1', userId: 'user-42',
  traits: { email: 'ada@segment.example', name: 'Ada Lovelace', plan: 'pro', seats: 3 },
  context: { userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' },
})
analytics.track({
  anonymousId: 'seg-anon-1', event: 'Order Completed', messageId: 'seg-msg-1',
  properties: { revenue: 42.5, currency: 'EUR' },
  context: { page: { url: 'https://shop.example/checkout', title: 'Checkout' }, userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' },
})
// The same message id again: a resend, stored once.
analytics.track({ anonymousId: 'seg-anon-1', event: 'Order Completed', messageId: 'seg-msg-1', properties: { revenue: 42.5 } })
analytics.track({ userId: 'user-42', event: 'Subscription Renewed', timestamp: new Date('2026-01-02T03:04:05Z') })
analytics.page({ anonymousId: 'seg-anon-1', name: 'Pricing', properties: { url: 'https://shop.example/pricing', title: 'Pricing', referrer: 'https://news.example/' } })
analytics.screen({ anonymousId: 'seg-anon-2', name: 'Home' })
analytics.track({ anonymousId: 'seg-anon-2', event: 'Totally Unknown Thing' })
await analytics.closeAndFlush({ timeout: 20000 })
console.log(JSON.stringify({ responses }))
