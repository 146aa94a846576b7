import assert from 'node:assert/strict'
import { beforeEach, describe, mock, test } from 'node:test'
import { queued, results, reply, settle, setup, storage, transport } from './env.mjs'
import { BATCH, ITEM, MAX, SIZE, WAIT, backoff, createQueue } from '../../src/queue.js'
import { deviceId } from '../../src/storage.js'

const event = (code, n) => ({ code, properties: { n }, message_id: `m${n}` })
const inputs = (call) => call.body.events || [call.body]
const ids = (call) => inputs(call).map((i) => i.message_id).join()

// Runs the timers for ms and lets the flush that they start finish.
async function tick(ms) {
  mock.timers.tick(ms)
  for (let i = 0; i < 8; i++) await settle()
}

beforeEach(() => {
  mock.timers.reset()
  mock.timers.enable({ apis: ['setTimeout', 'Date'] })
  mock.method(Math, 'random', () => 0.5)
  setup()
})

describe('queueing', () => {
  test('events are batched into one JSON API request with device_id and message_id', async () => {
    const send = transport(results(null, null, null))
    const q = createQueue(send)
    for (const n of [1, 2, 3]) q.push(event('view', n))
    await tick(299)
    assert.equal(send.calls.length, 0, 'waits for the batch window')
    await tick(1)
    assert.equal(send.calls.length, 1)
    assert.equal(send.calls[0].url, 'http://127.0.0.1:1/api/v1/apps/app1/events')
    const sent = inputs(send.calls[0])
    assert.deepEqual(sent.map((i) => i.message_id), ['m1', 'm2', 'm3'])
    assert.ok(sent.every((i) => /^\w{16,}$/.test(i.device_id)))
    assert.equal(new Set(sent.map((i) => i.device_id)).size, 1)
    assert.deepEqual(queued(), [], 'delivered items leave storage')
  })

  test('the API URL is derived from a /graphql endpoint, a server URL or one with a path', async () => {
    for (const [endpoint, want] of [
      ['https://c.example/graphql', 'https://c.example/api/v1/apps/app1/events'],
      ['https://c.example', 'https://c.example/api/v1/apps/app1/events'],
      ['https://example.com/crumbs/', 'https://example.com/crumbs/api/v1/apps/app1/events'],
      ['https://example.com/crumbs/graphql', 'https://example.com/crumbs/api/v1/apps/app1/events'],
    ]) {
      setup({ endpoint })
      const send = transport(results(null))
      createQueue(send).push(event('view', 1))
      await tick(300)
      assert.equal(send.calls[0].url, want, endpoint)
    }
  })

  test(`at most ${BATCH} events per request, the rest follow at once`, async () => {
    const send = transport(results(...Array(BATCH).fill(null)), results(null, null, null, null, null))
    const q = createQueue(send)
    for (let n = 0; n < BATCH + 5; n++) q.push(event('view', n))
    await tick(300)
    await tick(0)
    assert.deepEqual(send.calls.map((c) => inputs(c).length), [BATCH, 5])
  })

  test('identify goes alone to /identify, before later events', async () => {
    const send = transport(results(null), reply({ moved: false, device_id: 'x' }), results(null))
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    q.push({ email: 'a@example.com', fields: {} })
    q.push(event('click', 2))
    await tick(300)
    await tick(0)
    assert.deepEqual(send.calls.map((c) => c.url.split('/').pop()), ['events', 'identify', 'events'])
    assert.equal(send.calls[1].body.email, 'a@example.com')
    assert.ok(send.calls[1].body.device_id)
    assert.deepEqual(queued(), [])
  })

  test(`storage keeps at most ${MAX} items, dropping the oldest`, async () => {
    const q = createQueue(transport(undefined))
    for (let n = 0; n < MAX + 30; n++) q.push(event('view', n))
    const stored = queued()
    assert.equal(stored.length, MAX)
    assert.equal(stored[0].message_id, 'm30')
    assert.equal(stored.at(-1).message_id, `m${MAX + 29}`)
  })

  test(`an item over ${ITEM} characters is not queued, and debug mode says so`, async () => {
    const info = mock.method(console, 'info', () => {})
    setup({ debug: true })
    const send = transport(results(null))
    const q = createQueue(send)
    q.push({ ...event('view', 1), properties: { s: 'x'.repeat(ITEM) } })
    q.push(event('view', 2))
    assert.deepEqual(queued().map((x) => x.message_id), ['m2'])
    await tick(300)
    assert.equal(ids(send.calls[0]), 'm2')
    assert.ok(info.mock.calls.some((c) => c.arguments.join(' ').startsWith('crumbs not sent too big')))
  })

  test(`the queue keeps at most ${SIZE} characters, dropping the oldest`, async () => {
    // Before, items of any size piled up until the origin's storage was full,
    // and the site's own localStorage writes failed.
    const q = createQueue(transport(undefined))
    const big = (n) => ({ ...event('view', n), properties: { s: 'x'.repeat(ITEM - 500) } })
    for (let n = 0; n < 40; n++) q.push(big(n))
    const stored = queued()
    const chars = storage.keys().filter((k) => k.startsWith('crumbs_app1_q')).reduce((t, k) => t + storage.get(k).length, 0)
    assert.ok(chars <= SIZE, `${chars} characters stored`)
    assert.ok(chars > SIZE - ITEM, `${chars} characters stored`)
    assert.equal(stored.at(-1).message_id, 'm39', 'the newest stays')
    assert.equal(stored[0].message_id, `m${40 - stored.length}`, 'the oldest go')
  })

  test('a damaged stored item is dropped and the rest is sent', async () => {
    // Before, one item that was no JSON (or JSON null) threw in every send,
    // and the queue stopped for good; pushes threw into the page.
    storage.set('crumbs_app1_q00a', '{"code":"view","message_id":"m0"}')
    storage.set('crumbs_app1_q00b', '{not json')
    storage.set('crumbs_app1_q00c', 'null')
    storage.set('crumbs_app1_q00d', '7')
    storage.set('crumbs_app1_q00e', '["view"]')
    const send = transport(results(null, null))
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    assert.equal(send.calls.length, 1)
    assert.equal(ids(send.calls[0]), 'm0,m1')
    assert.deepEqual(storage.keys().filter((k) => k.startsWith('crumbs_app1_q')), [])
  })

  test('undelivered events survive a reload with their message ids', async () => {
    const first = createQueue(transport(undefined))
    first.push(event('view', 1))
    first.push(event('click', 2))
    await tick(300)
    // The page reloads: a new queue starts from storage.
    const send = transport(results(null, null))
    createQueue(send).flush()
    await tick(0)
    assert.deepEqual(inputs(send.calls[0]).map((i) => i.message_id), ['m1', 'm2'])
  })

  test('a stored entry under the queue key that is no item (the array of earlier versions) is dropped', async () => {
    storage.set('crumbs_app1_q', JSON.stringify([{ code: 'view', occurredAt: '2026-01-01T00:00:00Z', messageId: 'old1' }]))
    const send = transport(results(null))
    createQueue(send).push(event('view', 1))
    await tick(300)
    assert.deepEqual(send.calls.map(ids), ['m1'])
    assert.deepEqual(storage.keys(), ['crumbs_app1_id'])
  })

  test('two apps on one origin keep separate queues and device ids', async () => {
    const c = setup({ appId: 'appA' })
    createQueue(transport(undefined)).push(event('view', 1))
    const idA = c.id
    // Another page of the origin runs app B (each page has one library).
    mock.timers.reset()
    mock.timers.enable({ apis: ['setTimeout', 'Date'] })
    c.appId = 'appB'
    c.id = 0
    const send = transport(results(null))
    createQueue(send).push(event('view', 2))
    await tick(300)
    assert.equal(ids(send.calls[0]), 'm2', 'app A items are not sent as app B')
    assert.notEqual(inputs(send.calls[0])[0].device_id, idA)
    assert.equal(storage.get('crumbs_appA_id'), idA)
    assert.ok(storage.get('crumbs_appB_id'))
    assert.equal(storage.keys().filter((k) => k.startsWith('crumbs_appA_q')).length, 1)
  })
})

describe('storage full', () => {
  test('an item that storage refuses waits in memory and is sent', async () => {
    const real = globalThis.localStorage
    globalThis.localStorage = new Proxy(real, {
      set(o, k, v) {
        if (String(k).includes('_q')) throw new Error('QuotaExceededError')
        o[k] = v
        return true
      },
    })
    try {
      const send = transport(results(null))
      const q = createQueue(send)
      q.push(event('view', 1))
      await tick(300)
      assert.equal(ids(send.calls[0]), 'm1')
    } finally {
      globalThis.localStorage = real
    }
  })
})

describe('tabs', () => {
  test('two tabs queueing while the server is down lose nothing and send nothing twice once it is up', async () => {
    let up = false
    const stored = new Map()
    const server = async (url, body) => {
      if (!up) return undefined
      const j = JSON.parse(body)
      for (const e of j.events) stored.set(e.message_id, (stored.get(e.message_id) || 0) + 1)
      return results(...j.events.map(() => null))
    }
    const calls = []
    const tab = () => createQueue(async (u, b) => (calls.push(JSON.parse(b)), server(u, b)))
    const a = tab(), b = tab()
    for (let n = 0; n < 6; n++) (n % 2 ? a : b).push(event('trial_click', n))
    await tick(300)
    await tick(1500)
    assert.equal(queued().length, 6, 'every tab sees all six while the server is down')
    up = true
    for (let i = 0; i < 10; i++) await tick(60000)
    assert.deepEqual([...stored.keys()].sort(), ['m0', 'm1', 'm2', 'm3', 'm4', 'm5'])
    assert.ok([...stored.values()].every((n) => n == 1), `each sent once once the server was up: ${JSON.stringify([...stored])}`)
    assert.deepEqual(queued(), [])
  })
})

describe('retry', () => {
  test('network failures retry with exponential backoff, resending the same message ids', async () => {
    const send = transport(undefined, undefined, results(null))
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    assert.equal(send.calls.length, 1)
    // Math.random is 0.5, so each wait is 75% of 2^n seconds.
    await tick(1499)
    assert.equal(send.calls.length, 1)
    await tick(1)
    assert.equal(send.calls.length, 2)
    await tick(2999)
    assert.equal(send.calls.length, 2)
    await tick(1)
    assert.equal(send.calls.length, 3)
    assert.deepEqual(send.calls.map(ids), ['m1', 'm1', 'm1'])
    assert.deepEqual(queued(), [])
  })

  test('backoff grows exponentially, is capped at a minute and jittered', () => {
    mock.method(Math, 'random', () => 0)
    assert.equal(backoff(1), 1000)
    assert.equal(backoff(3), 4000)
    assert.equal(backoff(20), 30000)
    mock.method(Math, 'random', () => 0.999999)
    assert.ok(backoff(1) > 1999 && backoff(1) <= 2000)
    assert.ok(backoff(20) <= 60000)
  })

  test('HTTP 429 and 5xx are retried; Retry-After is honoured', async () => {
    const send = transport(
      reply({ error: { code: 'RATE_LIMITED', message: 'slow down' } }, 429, { 'Retry-After': '7' }),
      reply({}, 503),
      results(null),
    )
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    await tick(6999)
    assert.equal(send.calls.length, 1)
    await tick(1)
    assert.equal(send.calls.length, 2)
    await tick(3000)
    assert.equal(send.calls.length, 3)
    assert.deepEqual(queued(), [])
  })

  test(`a Retry-After over the longest wait (${WAIT / 36e5} h) waits that long`, async () => {
    // Before, 30 days (over the 2^31 ms setTimeout takes) fired at once in
    // browsers, and the queue sent again and again.
    const send = transport(reply({}, 503, { 'Retry-After': String(30 * 86400) }), results(null))
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    await tick(WAIT - 1)
    assert.equal(send.calls.length, 1)
    await tick(1)
    assert.equal(send.calls.length, 2)
    assert.deepEqual(queued(), [])
  })

  test('a negative Retry-After (a broken proxy) backs off instead of sending again at once', async () => {
    const send = transport(reply({}, 503, { 'Retry-After': '-5' }), results(null))
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    assert.equal(send.calls.length, 1)
    await tick(1000)
    assert.equal(send.calls.length, 1)
    await tick(1000)
    assert.equal(send.calls.length, 2)
    assert.deepEqual(queued(), [])
  })

  test('a Retry-After given as an HTTP date waits until then; a date gone by backs off', async () => {
    // The mocked clock starts at 0: the answer comes at 300 ms and asks for 8 s.
    const at = (s) => new Date(s * 1e3).toUTCString()
    const send = transport(reply({}, 503, { 'Retry-After': at(8) }), reply({}, 429, { 'Retry-After': at(1) }), results(null))
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    await tick(7699)
    assert.equal(send.calls.length, 1)
    await tick(1)
    assert.equal(send.calls.length, 2)
    // A date before now: the first backoff (1 to 2 s), not at once.
    await tick(999)
    assert.equal(send.calls.length, 2)
    await tick(1001)
    assert.equal(send.calls.length, 3)
    assert.deepEqual(queued(), [])
  })

  test('UNAVAILABLE (a store outage, a server shutting down) is retried, for events and identify', async () => {
    const down = reply({ error: { code: 'UNAVAILABLE', message: 'the store is unavailable; retry later' } }, 503, { 'Retry-After': '5' })
    const send = transport(down, results(null), down, reply({ moved: false }))
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    assert.deepEqual(queued().map((x) => x.message_id), ['m1'], 'kept for a retry')
    await tick(5000)
    assert.equal(ids(send.calls[1]), 'm1', 'resent after Retry-After')
    q.push({ email: 'a@example.com', fields: {} })
    await tick(300)
    assert.equal(queued().length, 1, 'identify kept for a retry')
    await tick(5000)
    assert.equal(send.calls.length, 4)
    assert.deepEqual(queued(), [])
  })

  test('refused items are dropped, not retried, reported to onError and in debug mode', async () => {
    const info = mock.method(console, 'info', () => {})
    const errors = []
    setup({ debug: true, onError: (e) => errors.push([e.code, e.eventCode]) })
    const send = transport(results(null, 'EVENT_DISABLED', 'UNKNOWN_EVENT_CODE', 'RATE_LIMITED'), results(null))
    const q = createQueue(send)
    for (const n of [1, 2, 3, 4]) q.push(event(`x${n}`, n))
    await tick(300)
    assert.deepEqual(queued().map((x) => x.message_id), ['m4'], 'only the rate-limited item stays')
    await tick(1500)
    assert.equal(ids(send.calls[1]), 'm4')
    assert.deepEqual(errors, [['EVENT_DISABLED', 'x2'], ['UNKNOWN_EVENT_CODE', 'x3']])
    const logged = info.mock.calls.map((c) => c.arguments.join(' '))
    assert.ok(logged.some((l) => l.includes('refused EVENT_DISABLED')), logged.join('\n'))
    assert.ok(logged.some((l) => l.includes('refused UNKNOWN_EVENT_CODE')))
  })

  test('a refusal of the whole request (an origin the app does not allow) is final and reported', async () => {
    const errors = []
    setup({ onError: (e) => errors.push(e.code) })
    const send = transport(reply({ error: { code: 'FORBIDDEN', message: 'origin not allowed' } }, 403))
    const q = createQueue(send)
    q.push(event('x', 1))
    q.push(event('x', 2))
    await tick(300)
    await tick(60000)
    assert.equal(send.calls.length, 1)
    assert.deepEqual(errors, ['FORBIDDEN', 'FORBIDDEN'])
    assert.deepEqual(queued(), [])
  })

  test('a refused identify (BAD_USER_INPUT) is dropped', async () => {
    const send = transport(reply({ error: { code: 'BAD_USER_INPUT', message: 'email: invalid', field: 'email' } }, 400))
    const q = createQueue(send)
    q.push({ email: 'nope', fields: {} })
    await tick(300)
    await tick(60000)
    assert.equal(send.calls.length, 1)
    assert.deepEqual(queued(), [])
  })
})

describe('unload', () => {
  test('sends the queue at once and keeps it until a real answer', async () => {
    const send = transport(undefined)
    const q = createQueue(send)
    q.push(event('click', 1))
    q.unload()
    assert.equal(send.calls.length, 1)
    assert.equal(queued().length, 1, 'kept until a real answer')
  })
})

describe('hooks of the ES module', () => {
  test('onError receives each final refusal with the event code, retriable ones not', async () => {
    const got = []
    setup({ onError: (r) => got.push(r) })
    const send = transport(results(null, 'UNKNOWN_EVENT_CODE', 'RATE_LIMITED', 'EVENT_DISABLED'), results(null))
    const q = createQueue(send)
    for (const [c, n] of [['view', 1], ['nope', 2], ['view', 3], ['off', 4]]) q.push(event(c, n))
    await tick(300)
    assert.deepEqual(got, [
      { code: 'UNKNOWN_EVENT_CODE', message: 'unknown_event_code', eventCode: 'nope' },
      { code: 'EVENT_DISABLED', message: 'event_disabled', eventCode: 'off' },
    ])
  })

  test('an onError that throws does not stop delivery', async () => {
    setup({ onError: () => { throw new Error('host app bug') } })
    const send = transport(results('UNKNOWN_EVENT_CODE'), results(null))
    const q = createQueue(send)
    // The fault surfaces from the microtask (in a browser, as an uncaught error), outside the queue.
    const errors = []
    mock.method(globalThis, 'queueMicrotask', (fn) => {
      try {
        fn()
      } catch (e) {
        errors.push(e.message)
      }
    })
    q.push(event('nope', 1))
    await tick(300)
    q.push(event('view', 2))
    await tick(300)
    assert.deepEqual(send.calls.map((c) => inputs(c).map((i) => i.code)), [['nope'], ['view']])
    assert.deepEqual(errors, ['host app bug'])
    assert.deepEqual(queued(), [])
  })

  test('queued items keep the device id they were made on (reset)', async () => {
    const send = transport(results(null, null))
    const q = createQueue(send)
    q.push(event('view', 1))
    const old = deviceId()
    deviceId(true)
    q.push(event('view', 2))
    await tick(300)
    const [a, b] = inputs(send.calls[0])
    assert.equal(a.device_id, old)
    assert.notEqual(b.device_id, old)
    assert.match(b.device_id, /^\d{16,}$/)
  })
})

describe('flush', () => {
  test('sends at once, every batch, and resolves once the server has answered', async () => {
    const send = transport(results(...Array(BATCH).fill(null)), results(null, null))
    const q = createQueue(send)
    for (let n = 0; n < BATCH + 2; n++) q.push(event('view', n))
    await q.flush()
    assert.deepEqual(send.calls.map((c) => inputs(c).length), [BATCH, 2])
    assert.deepEqual(queued(), [])
    await tick(300)
    assert.equal(send.calls.length, 2, 'the batch window sends nothing more')
  })

  test('resolves after onError has had the refusals', async () => {
    const got = []
    setup({ onError: (r) => got.push(r.eventCode) })
    const q = createQueue(transport(results('UNKNOWN_EVENT_CODE', null)))
    q.push(event('nope', 1))
    q.push(event('view', 2))
    await q.flush()
    assert.deepEqual(got, ['nope'])
  })

  test('resolves when an item waits for a retry; during a backoff it sends at once, in place of the retry', async () => {
    const send = transport(undefined, undefined, results(null))
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    assert.equal(send.calls.length, 1, 'failed; the retry waits 1.5 s')
    await q.flush()
    assert.equal(send.calls.length, 2, 'sent at once')
    assert.deepEqual(queued().map((x) => x.message_id), ['m1'], 'kept for the next retry, in 3 s')
    await tick(1500)
    assert.equal(send.calls.length, 2, 'the retry that flush took the place of does not go out')
    await tick(1500)
    assert.deepEqual(send.calls.map(ids), ['m1', 'm1', 'm1'])
    assert.deepEqual(queued(), [])
  })

  test('sends nothing before consent', async () => {
    setup({ requireConsent: true })
    const send = transport(results(null))
    const q = createQueue(send)
    q.push(event('view', 1))
    await q.flush()
    assert.equal(send.calls.length, 0)
  })
})
