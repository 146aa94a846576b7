// Sends, through Segment's real Node library (@segment/analytics-node), the
// calls of a visitor who signs in: a page while anonymous, the server's
// identify of the user (userId and email only, as a backend knows them),
// then a track from the same browser naming both ids, all in one batch;
// driven by server/segment_test.go. Usage: node segment-user.mjs <host> <writeKey>
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: 10, maxRetries: 2 })
const responses = []
analytics.on('http_response', (r) => responses.push(r.status))
analytics.on('error', (err) => console.error('segment error:', err.code, err.reason?.message ?? err.reason))

analytics.page({ anonymousId: 'browser-1', name: 'Pricing', properties: { url: 'https://shop.example/pricing' } })
analytics.identify({ userId: 'user-1', traits: { email: 'kay@segment.example' } })
analytics.track({
  anonymousId: 'browser-1', userId: 'user-1', event: 'Order Completed', properties: { revenue: 9.5 },
  context: { userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0' },
})
await analytics.closeAndFlush({ timeout: 20000 })
console.log(JSON.stringify({ responses }))
process.exit(0)
