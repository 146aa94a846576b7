// Sends events through Bento's real Node SDK (@bentonow/bento-node-sdk) to a
// Crumbs webhook URL, which the SDK takes as its base URL; driven by
// server/bento_test.go. Usage: node bento.mjs <webhook base URL>
// (http://host/webhooks/<ingest token>/<integration>).
import { Analytics } from '@bentonow/bento-node-sdk'

const [baseUrl] = process.argv.slice(2)
const bento = new Analytics({
  authentication: { publishableKey: 'unused', secretKey: 'unused' },
  siteUuid: 'crumbs-test',
  clientOptions: { baseUrl },
})
const out = {}
out.track = await bento.V1.track({
  email: 'ada@bento.example', type: '$completed_onboarding',
  details: { step: 3 }, fields: { company: 'Analytical Engines' },
})
out.purchase = await bento.V1.trackPurchase({
  email: 'ada@bento.example',
  purchaseDetails: { unique: { key: 'order-1' }, value: { amount: 4200, currency: 'EUR' } },
})
// The same order again, as a sender retrying after a timeout sends it:
// Bento counts a unique key once.
out.purchaseRetried = await bento.V1.trackPurchase({
  email: 'ada@bento.example',
  purchaseDetails: { unique: { key: 'order-1' }, value: { amount: 4200, currency: 'EUR' } },
})
out.otherPurchase = await bento.V1.trackPurchase({
  email: 'ada@bento.example',
  purchaseDetails: { unique: { key: 'order-2' }, value: { amount: 990, currency: 'EUR' } },
})
out.subscribe = await bento.V1.addSubscriber({ email: 'grace@bento.example', fields: { plan: 'team' } })
out.batch = await bento.V1.Batch.importEvents({
  events: [
    { email: 'grace@bento.example', type: 'Invoice Paid', details: { invoice: 'inv-7' }, date: new Date('2026-01-02T03:04:05Z') },
    { email: 'grace@bento.example', type: 'invoice_paid', details: { invoice: 'inv-8' } },
  ],
})
// Subscribers imported as Bento's SDK imports them: leads with fields, no
// event; ada's plan is merged into the fields she has.
out.imported = await bento.V1.Batch.importSubscribers({
  subscribers: [
    { email: 'ada@bento.example', first_name: 'Ada', plan: 'enterprise' },
    { email: 'linus@bento.example', company: 'Kernel' },
  ],
})
console.log(JSON.stringify(out))
