// Unit tests of src/api.js in node, with the browser's fetch, WebSocket,
// localStorage and location stood in for: what the page sends when, which a
// browser test cannot time (a session that ends while a websocket connects).
import assert from 'node:assert/strict'
import { after, beforeEach, test } from 'node:test'

// The vault's answers by operation; a function answers per call.
const vault = {}
const requests = []
globalThis.self = globalThis
// Node's own BroadcastChannel would keep the process alive.
const posted = []
globalThis.BroadcastChannel = class {
  constructor() {
    globalThis.__tabs = this
  }
  postMessage(m) {
    posted.push(m)
  }
}
globalThis.location = { protocol: 'http:', host: 'dash.example' }
Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true })
const stored = new Map()
globalThis.localStorage = {
  getItem: (k) => stored.get(k) ?? null,
  setItem: (k, v) => stored.set(k, String(v)),
  removeItem: (k) => stored.delete(k),
}
globalThis.fetch = async (url, init) => {
  const op = String(url).split('/').pop()
  requests.push(op)
  const a = await (typeof vault[op] == 'function' ? vault[op]() : vault[op])
  if (!a) throw new TypeError('Failed to fetch')
  return { ok: a.status < 300, status: a.status, json: async () => a.body }
}
const sockets = []
globalThis.WebSocket = class {
  static OPEN = 1
  constructor(url) {
    this.url = url
    this.sent = []
    this.readyState = 0
    sockets.push(this)
  }
  send(m) {
    this.sent.push(JSON.parse(m))
  }
  close() {
    this.readyState = 3
    this.onclose?.({ code: 1005 })
  }
  open() {
    this.readyState = 1
    this.onopen()
  }
}

const session = (token) => ({
  status: 200,
  body: { data: { user: { id: '1', email: 'a@example.com' }, accessToken: token, accessTokenExpiresAt: new Date(Date.now() + 36e5).toISOString() } },
})
const unauthenticated = { status: 401, body: { errors: [{ message: 'not signed in', extensions: { code: 'UNAUTHENTICATED' } }] } }
const settle = () => new Promise((r) => setTimeout(r, 10))

const api = await import('../../src/api.js')

beforeEach(async () => {
  for (const k in vault) delete vault[k]
  vault.logout = { status: 200, body: { data: null } }
  vault.refresh = unauthenticated
  await api.signOut()
  requests.length = 0
  sockets.length = 0
  stored.clear()
})

// A signed-in session keeps a refresh timer: signing out ends it.
after(() => api.signOut())

test('the live websocket sends the access token, and no credential without a session', async () => {
  // Signed out (the session ended while the page was open): before, the
  // websocket opened anyway and sent "Authorization: Bearer null".
  const stop = api.subscribe('subscription { x }', {}, () => {})
  await settle()
  for (const s of sockets) s.open()
  const inits = sockets.flatMap((s) => s.sent.filter((m) => m.type == 'connection_init'))
  assert.deepEqual(inits, [], 'no connection_init without an access token')
  assert.ok(requests.includes('refresh'), 'a refresh is tried first')
  stop()

  // With a session in the cookie, the refresh gets one, and its token is sent.
  vault.refresh = session('tok1')
  const stop2 = api.subscribe('subscription { x }', {}, () => {})
  await settle()
  assert.equal(sockets.length, 1)
  sockets[0].open()
  assert.deepEqual(sockets[0].sent[0], { type: 'connection_init', payload: { Authorization: 'Bearer tok1' } })
  stop2()
})

test('signing out without the server signs out here at once, and the next refresh does not sign back in', async () => {
  vault.login = session('tok1')
  await api.signIn('a@example.com', 'pw')
  assert.ok(api.currentUser())
  // The server cannot be reached.
  delete vault.logout
  await api.signOut()
  assert.equal(api.currentUser(), null)
  assert.equal(posted.at(-1), 'signed-out', 'the other tabs are told')
  // Before, the refresh cookie (HttpOnly, only the server clears it) was
  // still good: the next page load's refresh signed the user back in.
  vault.refresh = session('tok2')
  vault.logout = { status: 200, body: { data: null } }
  requests.length = 0
  await assert.rejects(api.refresh(), (e) => e.code == 'UNAUTHENTICATED')
  assert.equal(api.currentUser(), null)
  assert.deepEqual(requests, ['logout'], 'the pending sign-out is sent, and no refresh')
  // The server has it now: a later refresh is a refresh again.
  await api.refresh()
  assert.ok(api.currentUser())
})

test('a sign-out still pending goes to the server before the next sign-in', async () => {
  vault.login = session('tok1')
  await api.signIn('a@example.com', 'pw')
  delete vault.logout
  await api.signOut()
  vault.logout = { status: 200, body: { data: null } }
  requests.length = 0
  await api.signIn('a@example.com', 'pw')
  assert.deepEqual(requests, ['logout', 'login'])
  assert.ok(api.currentUser())
})

// A refresh in flight when the user signed out answered after the sign-out,
// and its session signed the tab back in: the page showed the app again.
test('a sign-out wins over a refresh in flight, in this tab and from another', async () => {
  for (const from of ['this tab', 'another tab']) {
    vault.login = session('tok1')
    await api.signIn('a@example.com', 'pw')
    let answer
    vault.refresh = () => new Promise((r) => (answer = r))
    requests.length = 0
    const seen = []
    const off = api.onSession((u) => seen.push(u))
    const refreshing = api.refresh()
    await settle()
    const out = from === 'this tab' ? api.signOut() : (globalThis.__tabs.onmessage({ data: 'signed-out' }), null)
    assert.equal(api.currentUser(), null)
    answer(session('tok2'))
    await assert.rejects(refreshing, (e) => e.code == 'UNAUTHENTICATED', from)
    await out
    off()
    assert.equal(api.currentUser(), null, `${from}: the refresh's answer does not sign back in`)
    assert.deepEqual(seen, [null], `${from}: no listener hears of a user after the sign-out`)
    if (from === 'this tab') assert.deepEqual(requests, ['refresh', 'logout'], 'the sign-out is sent after the refresh, with the newest cookie')
    // A later refresh, with no sign-out since it began, is a refresh again.
    vault.refresh = session('tok3')
    stored.clear()
    await api.refresh()
    assert.ok(api.currentUser(), from)
    await api.signOut()
  }
})

test('a refusal of bad input gives each field it names its own message', () => {
  const e = new api.ApiError([
    { message: 'code: must be 1 to 64 lowercase letters', extensions: { code: 'BAD_USER_INPUT', field: 'code' } },
    { message: 'color: must be a #RRGGBB color', extensions: { code: 'BAD_USER_INPUT', field: 'color' } },
  ], 200)
  assert.equal(e.field, 'code', 'the first field, as before')
  assert.equal(e.messageFor('code'), 'code: must be 1 to 64 lowercase letters')
  assert.equal(e.messageFor('color'), 'color: must be a #RRGGBB color')
  assert.equal(e.messageFor((f) => f.endsWith('lor')), 'color: must be a #RRGGBB color')
  assert.equal(e.messageFor('name'), undefined)
  assert.equal(new api.ApiError(null, 503).messageFor('code'), undefined)
})
