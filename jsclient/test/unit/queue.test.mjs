import assert from 'node:assert/strict'
import { beforeEach, describe, mock, test } from 'node:test'
import { results, reply, settle, setup, storage, transport } from './env.mjs'
import { BATCH, MAX, backoff, createQueue } from '../../src/queue.js'

const event = (code, n) => ({ code, properties: { n }, messageId: `m${n}` })
const inputs = (call) => (Array.isArray(call.body.variables.i) ? call.body.variables.i : [call.body.variables.i])

// Runs the timers for ms and lets the flush that they start finish.
async function tick(ms) {
  mock.timers.tick(ms)
  for (let i = 0; i < 5; i++) await settle()
}

beforeEach(() => {
  mock.timers.reset()
  mock.timers.enable({ apis: ['setTimeout'] })
  mock.method(Math, 'random', () => 0.5)
  setup()
})

describe('queueing', () => {
  test('events are batched into one triggerBatch with appId, deviceId and messageId', async () => {
    const send = transport(results(null, null, null))
    const q = createQueue(send)
    for (const n of [1, 2, 3]) q.push(event('view', n))
    await tick(299)
    assert.equal(send.calls.length, 0, 'waits for the batch window')
    await tick(1)
    assert.equal(send.calls.length, 1)
    const { body } = send.calls[0]
    assert.match(body.query, /triggerBatch/)
    const sent = inputs(send.calls[0])
    assert.deepEqual(sent.map((i) => i.messageId), ['m1', 'm2', 'm3'])
    assert.ok(sent.every((i) => i.appId == 'app1' && /^\w{16,}$/.test(i.deviceId)))
    assert.equal(new Set(sent.map((i) => i.deviceId)).size, 1)
    assert.equal(storage.get('crumbs_q'), '[]', 'delivered items leave storage')
  })

  test(`at most ${BATCH} events per request, the rest follow at once`, async () => {
    const send = transport(results(...Array(BATCH).fill(null)), results(null, null, null, null, null))
    const q = createQueue(send)
    for (let n = 0; n < BATCH + 5; n++) q.push(event('view', n))
    await tick(300)
    await tick(0)
    assert.deepEqual(send.calls.map((c) => inputs(c).length), [BATCH, 5])
  })

  test('identify goes alone, in order between events', async () => {
    const send = transport(results(null), reply({ data: { r: { moved: false } } }), results(null))
    const q = createQueue(send)
    q.push(event('view', 1))
    q.push({ email: 'a@example.com', fields: {} })
    q.push(event('click', 2))
    await tick(300)
    await tick(0)
    await tick(0)
    assert.deepEqual(
      send.calls.map((c) => c.body.query.match(/(triggerBatch|identify)\(/)[1]),
      ['triggerBatch', 'identify', 'triggerBatch'],
    )
    assert.equal(send.calls[1].body.variables.i.email, 'a@example.com')
    assert.equal(send.calls[1].body.variables.i.appId, 'app1')
  })

  test(`storage keeps at most ${MAX} items, dropping the oldest`, async () => {
    const q = createQueue(transport(undefined))
    for (let n = 0; n < MAX + 30; n++) q.push(event('view', n))
    const stored = JSON.parse(storage.get('crumbs_q'))
    assert.equal(stored.length, MAX)
    assert.equal(stored[0].messageId, 'm30')
    assert.equal(stored.at(-1).messageId, `m${MAX + 29}`)
  })

  test('undelivered events survive a reload with their messageIds', async () => {
    const first = createQueue(transport(undefined))
    first.push(event('view', 1))
    first.push(event('click', 2))
    await tick(300)
    // The page reloads: a new queue starts from storage.
    const send = transport(results(null, null))
    createQueue(send).flush()
    await tick(0)
    assert.deepEqual(inputs(send.calls[0]).map((i) => i.messageId), ['m1', 'm2'])
  })
})

describe('retry', () => {
  test('network failures retry with exponential backoff, resending the same messageIds', async () => {
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
    assert.deepEqual(send.calls.map((c) => inputs(c)[0].messageId), ['m1', 'm1', 'm1'])
    assert.equal(storage.get('crumbs_q'), '[]')
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
    const send = transport(reply({}, 429, { 'Retry-After': '7' }), reply({}, 503), results(null))
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    await tick(6999)
    assert.equal(send.calls.length, 1)
    await tick(1)
    assert.equal(send.calls.length, 2)
    await tick(3000)
    assert.equal(send.calls.length, 3)
  })

  test('UNAVAILABLE (a store outage, a server shutting down) is retried, for batch items and identify', async () => {
    const down = { 'Retry-After': '5' }
    const unavailable = { message: 'the store is unavailable; retry later', extensions: { code: 'UNAVAILABLE' } }
    const send = transport(
      reply({ data: { r: [{ error: { code: 'UNAVAILABLE', message: 'the store is unavailable; retry later' } }] } }, 503, down),
      results(null),
      reply({ data: null, errors: [unavailable] }, 503, down),
      reply({ data: { r: { moved: false } } }),
    )
    const q = createQueue(send)
    q.push(event('view', 1))
    await tick(300)
    assert.deepEqual(JSON.parse(storage.get('crumbs_q')).map((x) => x.messageId), ['m1'], 'kept for a retry')
    await tick(5000)
    assert.deepEqual(inputs(send.calls[1]).map((i) => i.messageId), ['m1'], 'resent after Retry-After')
    q.push({ email: 'a@example.com', fields: {} })
    await tick(300)
    assert.equal(JSON.parse(storage.get('crumbs_q')).length, 1, 'identify kept for a retry')
    await tick(5000)
    assert.equal(send.calls.length, 4)
    assert.equal(storage.get('crumbs_q'), '[]')
  })

  test('refused items are dropped, not retried, and reported in debug mode', async () => {
    const info = mock.method(console, 'info', () => {})
    setup({ debug: true })
    const send = transport(results(null, 'EVENT_DISABLED', 'UNKNOWN_EVENT_CODE', 'RATE_LIMITED'), results(null))
    const q = createQueue(send)
    for (const n of [1, 2, 3, 4]) q.push(event('x', n))
    await tick(300)
    assert.deepEqual(JSON.parse(storage.get('crumbs_q')).map((x) => x.messageId), ['m4'], 'only the rate-limited item stays')
    await tick(1500)
    assert.deepEqual(inputs(send.calls[1]).map((i) => i.messageId), ['m4'])
    const logged = info.mock.calls.map((c) => c.arguments.join(' '))
    assert.ok(logged.some((l) => l.includes('refused EVENT_DISABLED')), logged.join('\n'))
    assert.ok(logged.some((l) => l.includes('refused UNKNOWN_EVENT_CODE')))
  })

  test('a refused identify (BAD_USER_INPUT) is dropped', async () => {
    const send = transport(reply({ data: null, errors: [{ message: 'email: invalid', extensions: { code: 'BAD_USER_INPUT' } }] }))
    const q = createQueue(send)
    q.push({ email: 'nope', fields: {} })
    await tick(300)
    await tick(60000)
    assert.equal(send.calls.length, 1)
    assert.equal(storage.get('crumbs_q'), '[]')
  })

  test('a whole batch refused is resent one item at a time, so only the bad item is lost', async () => {
    const bad = reply({ errors: [{ message: 'bad properties', extensions: { code: 'BAD_USER_INPUT' } }] })
    const send = transport(bad, results(null), bad, results(null))
    const q = createQueue(send)
    for (const n of [1, 2, 3]) q.push(event('x', n))
    for (let i = 0; i < 5; i++) await tick(300)
    assert.deepEqual(send.calls.map((c) => inputs(c).map((i) => i.messageId).join()), ['m1,m2,m3', 'm1', 'm2', 'm3'])
    assert.equal(storage.get('crumbs_q'), '[]')
  })

  test('HTTP 413 for a single item drops it', async () => {
    const send = transport(reply({}, 413), results(null))
    const q = createQueue(send)
    q.push(event('big', 1))
    await tick(300)
    q.push(event('small', 2))
    await tick(300)
    assert.deepEqual(send.calls.map((c) => inputs(c)[0].messageId), ['m1', 'm2'])
  })
})

describe('unload', () => {
  test('beacons the queue and keeps it, once per change', async () => {
    const send = transport(results(null))
    const q = createQueue(send)
    q.push(event('click', 1))
    q.unload()
    q.unload()
    assert.equal(send.calls.length, 1)
    assert.equal(send.calls[0].unload, 1)
    assert.equal(JSON.parse(storage.get('crumbs_q')).length, 1, 'kept until a real answer')
    q.push(event('click', 2))
    q.unload()
    assert.equal(send.calls.length, 2)
    assert.deepEqual(inputs(send.calls[1]).map((i) => i.messageId), ['m1', 'm2'])
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
    assert.equal(storage.get('crumbs_q'), '[]')
  })

  test('seal keeps queued items on the device id they were made on', async () => {
    const send = transport(results(null, null))
    const q = createQueue(send)
    q.push(event('view', 1))
    q.seal('old-device')
    q.push(event('view', 2))
    await tick(300)
    const [a, b] = inputs(send.calls[0])
    assert.equal(a.deviceId, 'old-device')
    assert.notEqual(b.deviceId, 'old-device')
    assert.match(b.deviceId, /^\d{16,}$/)
  })
})
