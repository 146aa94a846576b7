import assert from 'node:assert/strict'
import { beforeEach, mock, test } from 'node:test'
import { queued, results, settle, setup, storage, transport } from './env.mjs'
import { createQueue } from '../../src/queue.js'
import { deviceId, forget } from '../../src/storage.js'

async function tick(ms) {
  mock.timers.tick(ms)
  for (let i = 0; i < 5; i++) await settle()
}

beforeEach(() => {
  mock.timers.reset()
  mock.timers.enable({ apis: ['setTimeout'] })
})

test('before consent nothing is stored or sent; queued events go out once it arrives', async () => {
  const c = setup({ requireConsent: true })
  const send = transport(results(null, null))
  const q = createQueue(send)
  q.push({ code: 'view', message_id: 'm1' })
  const before = deviceId()
  q.push({ code: 'click', message_id: 'm2' })
  q.unload()
  await tick(60000)
  assert.equal(send.calls.length, 0, 'nothing sent, not even a beacon')
  assert.equal(storage.size, 0, 'nothing stored')
  assert.equal(document.cookie, '')

  c.consented = true
  q.flush()
  await tick(0)
  assert.equal(send.calls.length, 1)
  const sent = send.calls[0].body.events
  assert.deepEqual(sent.map((i) => i.message_id), ['m1', 'm2'])
  assert.equal(sent[0].device_id, before, 'the in-memory id is kept once consent arrives')
  assert.equal(deviceId(), before, 'consent(true) stores the id as it is')
  assert.equal(storage.get('crumbs_app1_id'), before)
})

test('withdrawing consent forgets the id and the queue', () => {
  const c = setup({ cookieDomain: '.example.com' })
  const id = deviceId()
  assert.equal(storage.get('crumbs_app1_id'), id)
  storage.set('crumbs_app1_q1', '{"code":"view"}')
  storage.set('crumbs_app1_consent', '1')
  storage.set('crumbs_app2_id', 'other app')
  c.requireConsent = true
  c.consented = false
  forget()
  assert.deepEqual(storage.keys(), ['crumbs_app2_id'], 'only this app forgets')
  assert.match(document.cookie, /crumbs_app1_id=;.*max-age=0/)
  assert.notEqual(deviceId(), id, 'a new, unstored id')
  assert.ok(!storage.get('crumbs_app1_id'))
})

test('a new device id on demand (reset) replaces the stored one and the cookie', () => {
  setup({ cookieDomain: '.example.com' })
  const id = deviceId()
  const fresh = deviceId(true)
  assert.notEqual(fresh, id)
  assert.equal(storage.get('crumbs_app1_id'), fresh)
  assert.match(document.cookie, new RegExp(`^crumbs_app1_id=${fresh};`))
  assert.equal(deviceId(), fresh)
})

test('cookieless mode keeps the id and the queue in memory only, but still sends', async () => {
  setup({ cookieless: true })
  const send = transport(results(null))
  const q = createQueue(send)
  q.push({ code: 'view', message_id: 'm1' })
  await tick(300)
  assert.equal(send.calls.length, 1)
  assert.equal(deviceId(), send.calls[0].body.events[0].device_id, 'stable in memory')
  assert.deepEqual(queued(), [])
  assert.equal(storage.size, 0)
  assert.equal(document.cookie, '')
})
