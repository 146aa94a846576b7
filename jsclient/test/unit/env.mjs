// A minimal browser-like environment for the unit tests: localStorage (a
// plain object, as the library uses it: properties, Object.keys, delete),
// document.cookie, navigator with Web Locks, plus a scripted stand-in for the
// transport.
import { opts } from '../../src/config.js'

globalThis.localStorage = {}
/** Access to the stored entries by full key. */
export const storage = {
  get: (k) => localStorage[k],
  set: (k, v) => (localStorage[k] = String(v)),
  keys: () => Object.keys(localStorage),
  get size() {
    return Object.keys(localStorage).length
  },
  clear: () => Object.keys(localStorage).forEach((k) => delete localStorage[k]),
}
globalThis.document = { cookie: '', title: 'Test', referrer: '' }
// A page served over http; tests of https pages set it to true.
globalThis.isSecureContext = false

/** Web Locks as browsers have them: one holder per name at a time, the others wait. */
export function webLocks() {
  const held = new Map()
  return {
    request(name, fn) {
      const run = (held.get(name) || Promise.resolve()).then(() => fn())
      held.set(name, run.catch(() => {}))
      return run
    },
  }
}
Object.defineProperty(globalThis, 'navigator', { value: { locks: webLocks() }, writable: true, configurable: true })

/** Resets storage and sets the shared options for one test. */
export function setup(options = {}) {
  storage.clear()
  document.cookie = ''
  globalThis.isSecureContext = false
  navigator.locks = webLocks()
  for (const k in opts) delete opts[k]
  Object.assign(opts, { appId: 'app1', endpoint: 'http://127.0.0.1:1' }, options)
  return opts
}

/** A Response-like object as the transport resolves it. */
export const reply = (body, status = 200, headers = {}) => ({
  status,
  ok: status < 300,
  json: async () => body,
  // Real Headers: names are case-insensitive, as in browsers.
  headers: new Headers(headers),
})

/** Batch results: one entry per item, null for accepted or an error code. */
export const results = (...codes) =>
  reply({ results: codes.map((code) => ({ accepted: !code, error: code && { code, message: code.toLowerCase() } })) })

/** The queued items of app1 in storage, oldest first. */
export const queued = () =>
  storage
    .keys()
    .filter((k) => k.startsWith('crumbs_app1_q'))
    .sort()
    .map((k) => JSON.parse(storage.get(k)))

/**
 * A transport that records every request and answers from `answers` in turn
 * (the last one repeats). undefined stands for a network failure.
 */
export function transport(...answers) {
  const calls = []
  const send = async (url, body) => {
    calls.push({ url: String(url), body: JSON.parse(body) })
    return answers.length > 1 ? answers.shift() : answers[0]
  }
  send.calls = calls
  return send
}

/** Lets pending promise callbacks run (timers are mocked, setImmediate is not). */
export const settle = () => new Promise((r) => setImmediate(r))
