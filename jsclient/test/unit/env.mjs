// A minimal browser-like environment for the unit tests: localStorage,
// document.cookie and navigator, plus a scripted stand-in for the transport.
import { opts } from '../../src/config.js'

export const storage = new Map()
globalThis.localStorage = {
  getItem: (k) => (storage.has(k) ? storage.get(k) : null),
  setItem: (k, v) => storage.set(k, String(v)),
  removeItem: (k) => storage.delete(k),
}
globalThis.document = { cookie: '', title: 'Test', referrer: '' }
// A page served over http; tests of https pages set it to true.
globalThis.isSecureContext = false
Object.defineProperty(globalThis, 'navigator', { value: {}, writable: true, configurable: true })

/** Resets storage and sets the shared options for one test. */
export function setup(options = {}) {
  storage.clear()
  document.cookie = ''
  globalThis.isSecureContext = false
  for (const k in opts) delete opts[k]
  Object.assign(opts, { appId: 'app1', endpoint: 'http://127.0.0.1:1/graphql' }, options)
  return opts
}

/** A Response-like object as the transport resolves it. */
export const reply = (body, status = 200, headers = {}) => ({
  status,
  json: async () => body,
  headers: { get: (h) => headers[h] ?? null },
})

/** Batch results: one entry per item, null for accepted or an error code. */
export const results = (...codes) =>
  reply({ data: { r: codes.map((code) => ({ error: code && { code, message: code.toLowerCase() } })) } })

/**
 * A transport that records every request and answers from `answers` in turn
 * (the last one repeats). undefined stands for a network failure.
 */
export function transport(...answers) {
  const calls = []
  const send = async (url, body, unload) => {
    calls.push({ url, body: JSON.parse(body), unload })
    return unload ? true : answers.length > 1 ? answers.shift() : answers[0]
  }
  send.calls = calls
  return send
}

/** Lets pending promise callbacks run (timers are mocked, setImmediate is not). */
export const settle = () => new Promise((r) => setImmediate(r))
