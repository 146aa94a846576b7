import assert from 'node:assert/strict'
import { beforeEach, mock, test } from 'node:test'
import { results, settle, setup, storage, transport } from './env.mjs'
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
  q.push({ code: 'view', messageId: 'm1' })
  const before = deviceId()
  q.push({ code: 'click', messageId: 'm2' })
  q.unload()
  await tick(60000)
  assert.equal(send.calls.length, 0, 'nothing sent, not even a beacon')
  assert.equal(storage.size, 0, 'nothing stored')
  assert.equal(document.cookie, '')

  c.consented = true
  q.flush()
  await tick(0)
  assert.equal(send.calls.length, 1)
  const sent = send.calls[0].body.variables.i
  assert.deepEqual(sent.map((i) => i.messageId), ['m1', 'm2'])
  assert.equal(sent[0].deviceId, before, 'the in-memory id is kept once consent arrives')
  assert.equal(storage.get('crumbs_id'), before)
})

test('withdrawing consent forgets the id and the queue', () => {
  const c = setup({ cookieDomain: '.example.com' })
  const id = deviceId()
  assert.equal(storage.get('crumbs_id'), id)
  storage.set('crumbs_q', '[{"code":"view"}]')
  c.requireConsent = true
  c.consented = false
  forget()
  assert.ok(!storage.get('crumbs_id') && !storage.get('crumbs_q'))
  assert.match(document.cookie, /crumbs_id=;.*max-age=0/)
  assert.notEqual(deviceId(), id, 'a new, unstored id')
  assert.ok(!storage.get('crumbs_id'))
})

test('cookieless mode keeps the id and the queue in memory only, but still sends', async () => {
  setup({ cookieless: true })
  const send = transport(results(null))
  const q = createQueue(send)
  q.push({ code: 'view', messageId: 'm1' })
  await tick(300)
  assert.equal(send.calls.length, 1)
  assert.equal(deviceId(), send.calls[0].body.variables.i[0].deviceId, 'stable in memory')
  assert.equal(storage.size, 0)
  assert.equal(document.cookie, '')
})
