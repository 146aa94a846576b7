// The server provider holds the app secret key: a browser bundle of an app
// must never contain it. package.json exports crumbs-jsclient/stacksee/server
// with a null browser condition, so a bundler for the browser refuses it;
// the client provider bundles without any of the server's code.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { project } from './app.mjs'

let app
before(() => (app = project()))
after(() => app.close())

test('a browser bundle that imports the server provider fails to build', async () => {
  app.write('bad.js', "import { CrumbsServerProvider } from 'crumbs-jsclient/stacksee/server'\nnew CrumbsServerProvider({})\n")
  await assert.rejects(app.bundle('bad.js'), (e) => {
    const text = e.errors.map((x) => x.text + ' ' + (x.notes || []).map((n) => n.text).join(' ')).join('\n')
    assert.match(text, /crumbs-jsclient\/stacksee\/server/)
    assert.match(text, /explicitly disabled by the package author/)
    return true
  })
})

test('a browser bundle with the client provider carries the browser library and nothing of the server provider', async () => {
  app.write('good.js', "import { CrumbsClientProvider } from 'crumbs-jsclient/stacksee'\nwindow.p = new CrumbsClientProvider({ appId: 'a' })\n")
  const code = await app.bundle('good.js')
  assert.match(code, /crumbs_/, 'the browser library (its storage keys) is in the bundle')
  // (The browser library itself posts to the JSON API, /api/v1/…: only the server provider's own
  // code — its key, its headers — marks a leak.)
  for (const s of ['Authorization', 'secretKey', 'node:crypto', 'Crumbs-Server']) assert.ok(!code.includes(s), `${s} is in the bundle`)
})

test('in a page the server provider refuses to start', async () => {
  const { CrumbsServerProvider } = await import('../../providers/stacksee/server.js')
  globalThis.window = {}
  globalThis.document = {}
  try {
    assert.throws(() => new CrumbsServerProvider({ appId: 'a', secretKey: 'sk_x', endpoint: 'http://127.0.0.1:1' }), /runs only on a server/)
  } finally {
    delete globalThis.window
    delete globalThis.document
  }
})

test('on a server (server-side rendering) the client provider imports and does nothing', async () => {
  const { CrumbsClientProvider } = await import('../../providers/stacksee/client.js')
  const p = new CrumbsClientProvider({ appId: 'a' })
  p.initialize()
  p.pageView()
  p.track({ action: 'Order Completed', category: 'order' })
  p.identify('u', { email: 'a@example.com' })
  p.reset()
  assert.equal(p.deviceId(), undefined)
})
