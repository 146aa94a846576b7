// The Crumbs server provider with the real @stacksee/analytics server
// library (the version pinned in package.json), against the real Crumbs
// server on SQLite and on MariaDB; events are read back through GraphQL.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import http from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { after, before, describe, test } from 'node:test'
import { CrumbsServer, counts, freePort, serverBinary } from '../e2e/harness.mjs'
import { project } from './app.mjs'

let dir, bin, app, lib

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'crumbs-stacksee-server-'))
  bin = serverBinary(dir)
  app = project()
  // Imported the way a server app imports them: through the packages' exports.
  const entry = app.write(
    'server.mjs',
    "export { CrumbsServerProvider } from 'crumbs-jsclient/stacksee/server'\nexport { createServerAnalytics } from '@stacksee/analytics/server'\n",
  )
  lib = await import(pathToFileURL(entry))
})

after(() => {
  app?.close()
  rmSync(dir, { recursive: true, force: true })
})

// A Crumbs server on a database URL instead of the harness's SQLite file.
class Server extends CrumbsServer {
  constructor(bin, port, url) {
    super(bin, port, '')
    this.dbURL = url
    this.extra = {}
  }
  get env() {
    return { ...process.env, CRUMBS_ADDR: `127.0.0.1:${this.port}`, CRUMBS_DATABASE_URL: this.dbURL, ...this.extra }
  }
  /** Starts the server again with these extra variables. */
  async restart(extra) {
    await this.stop()
    this.extra = extra
    await this.start()
  }
}

// The MariaDB of CRUMBS_TEST_MYSQL_DSN (go-sql-driver form, user@tcp(host:port)/db).
function mariadb() {
  const dsn = process.env.CRUMBS_TEST_MYSQL_DSN
  const m = dsn && /^([^:@]+)(?::([^@]*))?@tcp\(([^:)]+):(\d+)\)\//.exec(dsn)
  if (!m) return null
  const [, user, password, host, port] = m
  const mysql = (sql) =>
    execFileSync('mysql', ['--protocol=tcp', `-h${host}`, `-P${port}`, `-u${user}`, ...(password ? [`-p${password}`] : []), '-e', sql])
  return { user, password, host, port, mysql }
}

const stores = [['SQLite', () => ({ url: `sqlite:${join(dir, `crumbs-${Date.now()}.db`)}`, drop() {} })]]
const my = mariadb()
if (my)
  stores.push([
    'MariaDB',
    () => {
      const name = `crumbs_stacksee_${process.pid}_${Date.now()}`
      my.mysql(`CREATE DATABASE ${name} CHARACTER SET utf8mb4`)
      const auth = my.password ? `${my.user}:${my.password}` : my.user
      return { url: `${auth}@tcp(${my.host}:${my.port})/${name}`, drop: () => my.mysql(`DROP DATABASE IF EXISTS ${name}`) }
    },
  ])
else if (process.env.CI == 'true') throw new Error('CRUMBS_TEST_MYSQL_DSN is not set; CI must test the provider on MariaDB')

for (const [store, database] of stores) {
  describe(store, () => {
    let server, db, appId, secretKey

    before(async () => {
      db = database()
      server = new Server(bin, await freePort(), db.url)
      server.createAdmin()
      await server.start()
      const d = await server.gql('mutation { createApp(input: {name: "server"}) { app { id } secretKey } }')
      appId = d.createApp.app.id
      secretKey = d.createApp.secretKey
      for (const code of ['order_completed', 'signup_started']) await server.defineEvent(appId, code)
      await server.defineEvent(appId, 'old_thing', false)
    })

    after(async () => {
      await server?.stop()
      db?.drop()
    })

    // The library with the Crumbs provider; refusals and debug lines are collected.
    function analytics(t, extra = {}) {
      const refusals = []
      const lines = []
      t.mock.method(console, 'log', (...a) => lines.push(a.map((x) => (typeof x == 'string' ? x : JSON.stringify(x))).join(' ')))
      const provider = new lib.CrumbsServerProvider({
        appId,
        secretKey,
        endpoint: server.url,
        flushInterval: 50,
        debug: true,
        onError: (r) => refusals.push(r),
        ...extra,
      })
      return { analytics: lib.createServerAnalytics({ providers: [provider] }), provider, refusals, lines }
    }

    test('tracks, a page view and an identify arrive once, batched; refusals reach onError', async (t) => {
      const { analytics: a, refusals, lines } = analytics(t)
      for (const amount of [10, 20, 30]) await a.track('Order Completed', { amount }, { userId: 'srv-1' })
      await a.identify('srv-1', { email: 'srv@example.com', name: 'Server Sam', plan: 'team' })
      await a.track('Signup Started', { via: 'api' }, { userId: 'srv-2' })
      await a.track('Nope', {}, { userId: 'srv-2' })
      await a.track('old thing', {}, { userId: 'srv-2' })
      await a.pageView({ variant: 'b' }, { context: { user: { userId: 'srv-1' }, page: { url: 'https://shop.example/pricing', path: '/pricing', title: 'Pricing' } } })
      await a.track('No Device', {})
      await a.shutdown()

      const one = await server.device(appId, 'srv-1')
      assert.deepEqual(counts(one.events), { order_completed: 3, view: 1 })
      assert.deepEqual(one.events.filter((e) => e.code == 'order_completed').map((e) => e.properties.amount), [10, 20, 30])
      assert.ok(one.events.every((e) => e.source == 'api'))
      const view = one.events.find((e) => e.code == 'view')
      assert.equal(view.url, 'https://shop.example/pricing')
      assert.equal(view.title, 'Pricing')
      assert.deepEqual(view.properties, { variant: 'b' })
      assert.equal(one.lead?.email, 'srv@example.com')
      const lead = await server.gql('query($id: ID!) { lead(id: $id) { name fields } }', { id: one.lead.id })
      assert.deepEqual(lead.lead, { name: 'Server Sam', fields: { plan: 'team', userId: 'srv-1' } })
      assert.deepEqual(counts((await server.leadTimeline(one.lead.id)).events), { order_completed: 3, view: 1 })
      assert.deepEqual(counts((await server.device(appId, 'srv-2')).events), { signup_started: 1 })

      assert.deepEqual(
        refusals.map((r) => [r.code, r.eventCode]),
        [['BAD_USER_INPUT', 'no_device'], ['UNKNOWN_EVENT_CODE', 'nope'], ['EVENT_DISABLED', 'old_thing']],
      )
      // The three tracks shared a request; the identify went between them and the rest.
      const sent = lines.filter((l) => l.startsWith('[Crumbs-Server] sent')).map((l) => JSON.parse(l.slice(l.indexOf('{'))).events)
      assert.deepEqual(sent, [3, 4])
    })

    test('while the server is down events wait and are retried; each is stored once', async (t) => {
      const { analytics: a, refusals } = analytics(t, { maxRetries: 8 })
      await server.stop()
      await a.track('Order Completed', { n: 1 }, { userId: 'srv-down' })
      await a.track('Order Completed', { n: 2 }, { userId: 'srv-down' })
      const flushed = a.shutdown()
      await new Promise((r) => setTimeout(r, 1500))
      await server.start()
      await flushed
      assert.deepEqual(refusals, [])
      const { events } = await server.device(appId, 'srv-down')
      assert.deepEqual(events.map((e) => e.properties.n), [1, 2])
    })

    test('an answer of 429 waits for its Retry-After and sends again; each event is stored once', async (t) => {
      // A proxy in front of Crumbs answers the first request 429 with Retry-After: 1, as a rate
      // limiter in front of the server would, then passes every request through.
      const seen = []
      const proxy = http.createServer((req, res) => {
        seen.push(Date.now())
        if (seen.length == 1) {
          req.resume()
          res.writeHead(429, { 'Retry-After': '1', 'Content-Type': 'application/json' })
          res.end(JSON.stringify({ error: { code: 'RATE_LIMITED', message: 'slow down' } }))
          return
        }
        const up = http.request(server.url + req.url, { method: req.method, headers: req.headers }, (r) => {
          res.writeHead(r.statusCode, r.headers)
          r.pipe(res)
        })
        req.pipe(up)
      })
      await new Promise((r) => proxy.listen(0, '127.0.0.1', r))
      t.after(() => proxy.close())
      const { analytics: a, refusals } = analytics(t, { endpoint: `http://127.0.0.1:${proxy.address().port}` })
      await a.track('Order Completed', { n: 1 }, { userId: 'srv-429' })
      await a.track('Order Completed', { n: 2 }, { userId: 'srv-429' })
      await a.shutdown()
      assert.deepEqual(refusals, [])
      assert.ok(seen.length >= 2, `${seen.length} requests`)
      assert.ok(seen[1] - seen[0] >= 950, `sent again ${seen[1] - seen[0]} ms after the 429, before its Retry-After`)
      const { events } = await server.device(appId, 'srv-429')
      assert.deepEqual(events.map((e) => e.properties.n), [1, 2])
    })

    test('events given up after maxRetries are reported through onError', async (t) => {
      const { analytics: a, refusals } = analytics(t, { maxRetries: 1 })
      await server.stop()
      t.after(() => server.start())
      await a.track('Order Completed', {}, { userId: 'srv-gone' })
      await a.shutdown()
      assert.deepEqual(refusals.map((r) => [r.code, r.eventCode]), [['UNAVAILABLE', 'order_completed']])
      assert.match(refusals[0].message, /no answer from Crumbs/)
    })

    test('a batch refused as a whole for its size goes one event at a time; only the event at fault is dropped', async (t) => {
      await server.restart({ CRUMBS_MAX_BODY_BYTES: '4096' })
      t.after(() => server.restart({}))
      const { analytics: a, refusals, lines } = analytics(t)
      const pad = 'x'.repeat(600)
      for (let n = 1; n <= 6; n++) await a.track('Order Completed', { n, pad }, { userId: 'srv-big' })
      await a.track('Order Completed', { n: 7, pad: 'y'.repeat(5000) }, { userId: 'srv-big' })
      await a.track('Order Completed', { n: 8 }, { userId: 'srv-big' })
      await a.shutdown()
      const { events } = await server.device(appId, 'srv-big')
      assert.deepEqual(events.map((e) => e.properties.n), [1, 2, 3, 4, 5, 6, 8])
      assert.deepEqual(refusals.map((r) => [r.code, r.eventCode]), [['PAYLOAD_TOO_LARGE', 'order_completed']])
      const sent = lines.filter((l) => l.startsWith('[Crumbs-Server] sent')).map((l) => JSON.parse(l.slice(l.indexOf('{'))).events)
      assert.deepEqual(sent, [8, 1, 1, 1, 1, 1, 1, 1, 1])
    })

    test('a wrong secret key is reported through onError, never thrown', async (t) => {
      const { analytics: a, refusals } = analytics(t, { secretKey: 'sk_wrong' })
      await a.track('Order Completed', {}, { userId: 'srv-x' })
      await a.identify('srv-x', { email: 'x@example.com' })
      await a.shutdown()
      assert.deepEqual(refusals.map((r) => [r.code, r.eventCode]), [['UNAUTHENTICATED', 'order_completed'], ['UNAUTHENTICATED', undefined]])
      assert.deepEqual((await server.device(appId, 'srv-x')).events, [])
    })
  })
}
