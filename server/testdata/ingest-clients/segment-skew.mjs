// Sends track and page calls through Segment's real Node library
// (@segment/analytics-node) from a machine whose clock is off by skewMs;
// driven by server/segment_test.go. Usage:
// node segment-skew.mjs <host> <writeKey> <skewMs> <anonymousId>
const [host, writeKey, skew, anonymousId] = process.argv.slice(2)

// Every clock reading the library makes (timestamp, sentAt) is off by skew.
const RealDate = Date
globalThis.Date = class extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + Number(skew))
    else super(...args)
  }

  static now() { return RealDate.now() + Number(skew) }
}

const { Analytics } = await import('@segment/analytics-node')
const analytics = new Analytics({ writeKey, host, flushAt: 10, maxRetries: 2 })
const responses = []
analytics.on('http_response', (r) => responses.push(r.status))
analytics.on('error', (err) => console.error('segment error:', err.code, err.reason?.message ?? err.reason))

analytics.track({ anonymousId, event: 'Order Completed', messageId: `${anonymousId}-now` })
// A minute before now, by the sender's clock.
analytics.track({ anonymousId, event: 'Order Completed', messageId: `${anonymousId}-earlier`, timestamp: new Date(Date.now() - 60000) })
analytics.page({ anonymousId, name: 'Pricing', messageId: `${anonymousId}-page` })
await analytics.closeAndFlush({ timeout: 20000 })
console.log(JSON.stringify({ responses }))
