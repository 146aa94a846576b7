// Sends, through Segment's real Node library (@segment/analytics-node), a
// visitor's page while anonymous, the backend's alias of that browser to
// the user, and the user's identify (userId and email), in one batch;
// driven by server/segment_alias_test.go. Usage: node segment-alias.mjs <host> <writeKey>
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: 10, maxRetries: 2 })
const responses = []
analytics.on('http_response', (r) => responses.push(r.status))
analytics.on('error', (err) => console.error('segment error:', err.code, err.reason?.message ?? err.reason))

analytics.page({ anonymousId: 'browser-9', name: 'Pricing', properties: { url: 'https://shop.example/pricing' } })
analytics.alias({ previousId: 'browser-9', userId: 'user-9' })
analytics.identify({ userId: 'user-9', traits: { email: 'lee@segment.example' } })
await analytics.closeAndFlush({ timeout: 20000 })
console.log(JSON.stringify({ responses }))
process.exit(0)
