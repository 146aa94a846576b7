import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setup, storage } from './env.mjs'
import { deviceId, forget, uid } from '../../src/storage.js'
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
  assert.equal(storage.get('crumbs_app1_id'), id)
  assert.equal(document.cookie, '', 'no cookie unless cookieDomain is set')
  setup()
  storage.set('crumbs_app1_id', 'stored1')
  assert.equal(deviceId(), 'stored1')
})

test('with cookieDomain the id is shared through a cookie, which wins over localStorage', () => {
  setup({ cookieDomain: '.example.com' })
  const id = deviceId()
  assert.match(document.cookie, new RegExp(`^crumbs_app1_id=${id};path=/;domain=.example.com;max-age=\\d+;samesite=lax$`))
  setup({ cookieDomain: '.example.com' })
  storage.set('crumbs_app1_id', 'local1')
  document.cookie = 'other=1; crumbs_app1_id=fromsub1'
  assert.equal(deviceId(), 'fromsub1')
  assert.equal(storage.get('crumbs_app1_id'), 'fromsub1')
})

test('with cookieDomain in a sandboxed page (document.cookie throws) the id stays in memory, and nothing throws', () => {
  setup({ cookieDomain: '.example.com' })
  const cookie = Object.getOwnPropertyDescriptor(document, 'cookie')
  const real = globalThis.localStorage
  const denied = () => {
    throw new DOMException('The document is sandboxed', 'SecurityError')
  }
  Object.defineProperty(document, 'cookie', { get: denied, set: denied, configurable: true })
  Object.defineProperty(globalThis, 'localStorage', { get: denied, configurable: true })
  try {
    const id = deviceId()
    assert.match(id, /^\d{16,}$/)
    assert.equal(deviceId(), id, 'kept in memory')
    forget()
  } finally {
    Object.defineProperty(document, 'cookie', cookie)
    Object.defineProperty(globalThis, 'localStorage', { value: real, writable: true, configurable: true })
  }
})

test('on https the device id cookie is Secure, and SameSite=Lax everywhere', () => {
  setup({ cookieDomain: '.example.com' })
  globalThis.isSecureContext = true
  const id = deviceId()
  assert.match(document.cookie, new RegExp(`^crumbs_app1_id=${id};path=/;domain=.example.com;max-age=\\d+;samesite=lax;secure$`))
})

test('filters say why they stop sending', () => {
  setup()
  const chrome = 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
  assert.equal(filter({ userAgent: chrome }), '')
  assert.equal(filter({ webdriver: true }), 'bot')
  for (const ua of [
    'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)',
    'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)',
    'Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)',
    'Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)',
    'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36',
    'Mozilla/5.0 (compatible; YandexBot/3.0)',
    'Screaming Frog SEO Spider/19.0',
    'CCBot/2.0 (https://commoncrawl.org/faq/)',
  ])
    assert.equal(filter({ userAgent: ua }), 'bot', ua)
  setup({ allowAutomation: true })
  assert.equal(filter({ webdriver: true, userAgent: 'HeadlessChrome/131' }), '', 'the test override')
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
  assert.deepEqual({ ...o, endpoint: String(o.endpoint) }, {
    endpoint: 'https://crumbs.example.com/',
    appId: 'app1',
    autoClick: false,
    cookieless: true,
    debug: 'true',
    cookieDomain: '.example.com',
  })
  assert.equal(String(fromScript({ src: 'https://x.test/crumbs.js', dataset: { endpoint: 'https://api.test/graphql' } }).endpoint), 'https://api.test/graphql')
  // A Crumbs server behind a proxy under a path: the API is under the same path.
  assert.equal(String(fromScript({ src: 'https://example.com/crumbs/crumbs.js', dataset: {} }).endpoint), 'https://example.com/crumbs/')
})

test('declarative triggers read their code, data-crumbs-prop-* properties and source', () => {
  const el = { dataset: { crumbsEvent: 'trial_click', crumbsPropPlan: 'pro', crumbsPropSeats_count: '5', crumbsSource: 'shortcode', crumbsOn: 'click' } }
  assert.deepEqual(read(el), ['trial_click', { plan: 'pro', seats_count: '5' }, 'shortcode'])
  // data-crumbs-prop-2fa: the dataset keeps the dash before a digit.
  assert.deepEqual(read({ dataset: { crumbsEvent: 'x', 'crumbsProp-2fa': 'on' } })[1], { '2fa': 'on' })
})
