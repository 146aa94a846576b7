// Sends n track calls through Segment's real Node library
// (@segment/analytics-node) in one batch (flushAt n); driven by
// server/segment_test.go. Usage: node segment-many.mjs <host> <writeKey> <n>
import { Analytics } from '@segment/analytics-node'

const [host, writeKey, n] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: Number(n), maxRetries: 2 })
const responses = []
analytics.on('http_response', (r) => responses.push(r.status))
analytics.on('error', (err) => console.error('segment error:', err.code, err.reason?.message ?? err.reason))
for (let i = 0; i < Number(n); i++) {
  analytics.track({ anonymousId: 'many-1', event: 'Order Completed', properties: { i } })
}
await analytics.closeAndFlush({ timeout: 30000 })
console.log(JSON.stringify({ responses }))
// Every call was answered; a timer the library leaves would keep node up.
process.exit(0)
