import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setup, storage } from './env.mjs'
import { deviceId, uid } from '../../src/storage.js'
import { filter } from '../../src/filter.js'
import { fromScript } from '../../src/config.js'
import { read } from '../../src/triggers.js'

test('ids are crypto-random and unique (message ids dedupe retries, so they must never collide)', () => {
  const ids = new Set()
  for (let i = 0; i < 20000; i++) ids.add(uid())
  assert.equal(ids.size, 20000)
  for (const id of [...ids].slice(0, 100)) assert.match(id, /^[0-9]{20,40}$/)
})

test('the device id is generated once and kept in localStorage', () => {
  setup()
  const id = deviceId()
  assert.equal(storage.get('crumbs_id'), id)
  assert.equal(document.cookie, '', 'no cookie unless cookieDomain is set')
  setup()
  storage.set('crumbs_id', 'stored1')
  assert.equal(deviceId(), 'stored1')
})

test('with cookieDomain the id is shared through a cookie, which wins over localStorage', () => {
  setup({ cookieDomain: '.example.com' })
  const id = deviceId()
  assert.match(document.cookie, new RegExp(`^crumbs_id=${id};path=/;domain=.example.com;max-age=\\d+;samesite=lax$`))
  setup({ cookieDomain: '.example.com' })
  storage.set('crumbs_id', 'local1')
  document.cookie = 'other=1; crumbs_id=fromsub1'
  assert.equal(deviceId(), 'fromsub1')
  assert.equal(storage.get('crumbs_id'), 'fromsub1')
})

test('on https the device id cookie is Secure, and SameSite=Lax everywhere', () => {
  setup({ cookieDomain: '.example.com' })
  globalThis.isSecureContext = true
  const id = deviceId()
  assert.match(document.cookie, new RegExp(`^crumbs_id=${id};path=/;domain=.example.com;max-age=\\d+;samesite=lax;secure$`))
})

test('filters say why they stop sending', () => {
  setup()
  assert.equal(filter({}), '')
  assert.equal(filter({ webdriver: true }), 'automation')
  setup({ allowAutomation: true })
  assert.equal(filter({ webdriver: true }), '', 'the test override')
  setup({ respectGpc: true })
  assert.equal(filter({ globalPrivacyControl: true }), 'GPC')
  setup()
  assert.equal(filter({ globalPrivacyControl: true }), '', 'GPC only when configured')
  setup({ appId: '' })
  assert.equal(filter({}), 'no appId')
})

test('script tag options come from data-* attributes', () => {
  const o = fromScript({
    src: 'https://crumbs.example.com/crumbs.abc123.js',
    dataset: { appId: 'app1', autoClick: 'false', cookieless: '', debug: 'true', cookieDomain: '.example.com' },
  })
  assert.deepEqual(o, {
    endpoint: 'https://crumbs.example.com/graphql',
    appId: 'app1',
    autoClick: false,
    cookieless: true,
    debug: 'true',
    cookieDomain: '.example.com',
  })
  assert.equal(fromScript({ src: 'https://x.test/crumbs.js', dataset: { endpoint: 'https://api.test/graphql' } }).endpoint, 'https://api.test/graphql')
})

test('declarative triggers read their code, data-crumbs-prop-* properties and source', () => {
  const el = { dataset: { crumbsEvent: 'trial_click', crumbsPropPlan: 'pro', crumbsPropSeats_count: '5', crumbsSource: 'shortcode', crumbsOn: 'click' } }
  assert.deepEqual(read(el), ['trial_click', { plan: 'pro', seats_count: '5' }, 'shortcode'])
})
