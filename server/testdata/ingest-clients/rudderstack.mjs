// Sends identify, track and page calls through RudderStack's real Node
// library (@rudderstack/rudder-sdk-node) to a Crumbs server, as it sends by
// default: gzipped, labelled application/x-www-form-urlencoded, with the
// time of each call in originalTimestamp; driven by server/segment_test.go.
// Usage: node rudderstack.mjs <host> <writeKey>
import { createRequire } from 'node:module'

const Analytics = createRequire(import.meta.url)('@rudderstack/rudder-sdk-node')
const [host, writeKey] = process.argv.slice(2)
const errors = []
const client = new Analytics(writeKey, {
  dataPlaneUrl: host, flushAt: 10, retryCount: 0, logLevel: 'error',
  errorHandler: (err) => errors.push(err.response?.status ?? err.code),
})
client.identify({
  anonymousId: 'rs-anon-1', userId: 'rs-user-1',
  traits: { email: 'ada@rudder.example', name: 'Ada', plan: 'pro' },
})
client.track({
  anonymousId: 'rs-anon-1', event: 'Order Completed', messageId: 'rs-msg-1',
  properties: { revenue: 42.5, currency: 'EUR' },
  originalTimestamp: new Date('2026-01-02T03:04:05Z'),
})
client.page({ anonymousId: 'rs-anon-1', name: 'Pricing', properties: { url: 'https://shop.example/pricing' } })
await client.flush()
console.log(JSON.stringify({ errors }))
