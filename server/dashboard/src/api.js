// Talks to the server: the token vault (sign-in, refresh, sign-out; the
// refresh token stays in an HttpOnly cookie the page cannot read), GraphQL
// over HTTP with the access token held in memory only, and subscriptions
// over the graphql-transport-ws websocket.

let session = null // { user, accessToken, accessTokenExpiresAt }
let timer = 0
const listeners = new Set()

/** An error answered by the API, with its extensions.code and field. */
export class ApiError extends Error {
  constructor(errors, status) {
    const e = (errors && errors[0]) || {}
    super(e.message || `request failed (${status})`)
    this.code = (e.extensions && e.extensions.code) || (status >= 500 ? 'UNAVAILABLE' : 'ERROR')
    this.field = e.extensions && e.extensions.field
    this.errors = errors || []
    this.status = status
  }

  /**
   * The message of the first error naming a field that match accepts (a
   * field name, or a test of one), if any: a refusal of bad input names
   * every bad field, one error each, so a form can mark them all.
   */
  messageFor(match) {
    const test = typeof match === 'function' ? match : (f) => f === match
    const e = this.errors.find((x) => x && x.extensions && x.extensions.field && test(x.extensions.field))
    return e && e.message
  }
}

export const currentUser = () => session && session.user
export const onSession = (fn) => (listeners.add(fn), () => listeners.delete(fn))

function setSession(s) {
  session = s
  clearTimeout(timer)
  if (s) {
    // Refresh a minute before the access token expires, in the background.
    const wait = new Date(s.accessTokenExpiresAt).getTime() - Date.now() - 60000
    // (A wait past setTimeout's 2^31 ms would fire at once: a clock weeks
    // behind the server's refreshed in a loop.)
    timer = setTimeout(() => refresh().catch(() => {}), Math.min(Math.max(wait, 5000), 2 ** 31 - 1))
  }
  listeners.forEach((fn) => fn(s && s.user))
}

async function vault(op, body = {}, signal) {
  const res = await fetch(`/dashboard/auth/${op}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
    signal,
  })
  const j = await res.json().catch(() => ({}))
  if (j.errors) throw new ApiError(j.errors, res.status)
  if (!res.ok) throw new ApiError(null, res.status)
  return j.data
}

// The refresh token is in an HttpOnly cookie that only the server can clear.
// A sign-out the server did not get (it could not be reached, or did not
// answer within LOGOUT_TIMEOUT) is remembered in this browser under this key
// and sent again before its next refresh or sign-in: until then the cookie
// would sign the user back in on the next page load.
const SIGNED_OUT = 'crumbs-signed-out'
const LOGOUT_TIMEOUT = 5000
const signedOut = (v) => {
  try {
    if (v === undefined) return localStorage.getItem(SIGNED_OUT) === '1'
    v ? localStorage.setItem(SIGNED_OUT, '1') : localStorage.removeItem(SIGNED_OUT)
  } catch {
    return false
  }
}

/** Asks the server to end the cookie's sign-in; a sign-out it answers is no longer pending. */
const logout = () =>
  vault('logout', {}, AbortSignal.timeout(LOGOUT_TIMEOUT)).then(() => signedOut(false), () => {})

// Signing in (or accepting an invitation) first ends a sign-out still
// pending, so the earlier sign-in does not outlive it on the server.
async function start(op, body) {
  if (signedOut()) await logout()
  const s = await vault(op, body)
  signedOut(false)
  setSession(s)
}

export const signIn = (email, password) => start('login', { email, password })

export const acceptInvitation = (token, name, password) => start('accept', { token, name: name || null, password })

// After a sign-out the server has not got, the cookie is not used: the
// sign-out is sent again, and the user stays signed out.
async function renew() {
  if (!signedOut()) return vault('refresh')
  await logout()
  throw signedOutError()
}

const signedOutError = () => new ApiError([{ message: 'Signed out.', extensions: { code: 'UNAUTHENTICATED' } }], 401)

let refreshing = null
// Counts sign-outs (this tab's and the others'): a refresh begun before one
// is not let to sign this tab back in when its answer comes after it.
let signOuts = 0

/**
 * Trades the cookie's refresh token for a new session. Tabs share the
 * cookie and a refresh token works once, so tabs take turns (Web Locks).
 * A sign-out wins over a refresh still in flight: its answer is dropped.
 */
export function refresh() {
  if (!refreshing) {
    const begun = signOuts
    const run = () => renew().then((s) => {
      if (signOuts !== begun) throw signedOutError()
      setSession(s)
    }, (e) => {
      if (e.code === 'UNAUTHENTICATED') setSession(null)
      throw e
    })
    const locked = navigator.locks ? navigator.locks.request('crumbs-refresh', run) : run()
    refreshing = locked.finally(() => (refreshing = null))
  }
  return refreshing
}

// Signing out in one tab signs out the others of this browser: each holds
// its pages' data and an access token in memory, and would go on showing
// them until its next request was refused.
const tabs = self.BroadcastChannel && new BroadcastChannel('crumbs-session')
if (tabs) tabs.onmessage = (m) => m.data === 'signed-out' && (signOuts++, setSession(null))

/**
 * Signs out: this tab and the others of this browser drop the session at
 * once, whether or not the server can be reached; resolves once the server
 * has ended the sign-in, or has not answered (the sign-out is then pending,
 * see SIGNED_OUT).
 */
export async function signOut() {
  signOuts++
  signedOut(true)
  setSession(null)
  tabs && tabs.postMessage('signed-out')
  // A refresh in flight may yet set a new cookie: the sign-out is sent once
  // it has, so that it ends the sign-in the newest cookie holds.
  if (refreshing) await refreshing.catch(() => {})
  await logout()
}

/** Runs one GraphQL operation; refreshes the session once if it has expired. */
export async function gql(query, variables = {}, retried = false) {
  const headers = { 'Content-Type': 'application/json', Accept: 'application/json' }
  if (session) headers.Authorization = `Bearer ${session.accessToken}`
  let res
  try {
    res = await fetch('/graphql', { method: 'POST', headers, body: JSON.stringify({ query, variables }) })
  } catch (e) {
    throw new ApiError([{ message: 'The server cannot be reached.', extensions: { code: 'UNAVAILABLE' } }], 0)
  }
  const j = await res.json().catch(() => ({}))
  if (j.errors && j.errors.length) {
    const err = new ApiError(j.errors, res.status)
    if (err.code === 'UNAUTHENTICATED' && !retried && session) {
      await refresh()
      return gql(query, variables, true)
    }
    throw err
  }
  if (!res.ok || !j.data) throw new ApiError(null, res.status)
  return j.data
}

let seq = 0
/**
 * Subscribes over graphql-transport-ws. onEvent gets each payload's data,
 * onState 'open' | 'closed' | an error message. Returns a function that stops it.
 */
export function subscribe(query, variables, onEvent, onState = () => {}) {
  let ws, stopped = false, retry = 0
  const id = String(++seq)
  const later = () => setTimeout(() => !stopped && connect(), Math.min(30000, 1000 * 2 ** retry++))
  // The websocket's only credential is the access token in connection_init
  // (browsers set no headers on a websocket). Without a session there is
  // none to send: a refresh may get one (or sign the tab out, which ends
  // the page); until then no connection is made.
  const connect = async () => {
    if (!session) await refresh().catch(() => {})
    if (stopped) return
    if (!session) return later()
    ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`, 'graphql-transport-ws')
    ws.onopen = () => (session ? ws.send(JSON.stringify({ type: 'connection_init', payload: { Authorization: `Bearer ${session.accessToken}` } })) : ws.close())
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data)
      if (msg.type === 'connection_ack') {
        retry = 0
        onState('open')
        ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query, variables } }))
      } else if (msg.type === 'next' && msg.payload.data) onEvent(msg.payload.data)
      else if (msg.type === 'next' && msg.payload.errors) onState(msg.payload.errors[0].message)
      else if (msg.type === 'error') onState((msg.payload[0] && msg.payload[0].message) || 'subscription refused')
      else if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong' }))
    }
    ws.onclose = async (e) => {
      if (stopped) return
      onState('closed')
      // 4401: the access token expired; refresh and reconnect.
      if (e.code === 4401) await refresh().catch(() => {})
      later()
    }
  }
  connect()
  return () => {
    stopped = true
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ id, type: 'complete' }))
    ws && ws.close()
  }
}

/**
 * Streams the app's events from the moment of the call: takes a live cursor
 * first, then subscribes with it, so whatever commits while the websocket
 * connects is sent too (the server backfills from the cursor). Reconnects
 * keep the first cursor, so nothing committed during an outage is lost
 * either; the events sent again are dropped here by id (newIds). onEvent
 * gets each event once; onState as for subscribe. Returns a function that
 * stops it.
 */
export function subscribeLive(appId, fields, onEvent, onState = () => {}) {
  let stop = null, stopped = false
  const isNew = newIds(LIVE_BACKFILL)
  const start = (retry) => gql('query($a: ID!) { liveCursor(appId: $a) }', { a: appId }).then((d) => {
    if (stopped) return
    stop = subscribe(`subscription($a: ID!, $after: String) { eventStored(appId: $a, after: $after) { ${fields} } }`, { a: appId, after: d.liveCursor }, (e) => {
      if (isNew(e.eventStored.id)) onEvent(e.eventStored)
    }, onState)
  }, (e) => {
    if (stopped) return
    onState(e.message)
    setTimeout(() => !stopped && start(retry + 1), Math.min(30000, 1000 * 2 ** retry))
  })
  onState('connecting')
  start(0)
  return () => {
    stopped = true
    stop && stop()
  }
}

/*
 * What the server guarantees (models/live.go, eventStored in
 * graph/schema/insights.graphqls): a subscription sends each event once, so
 * only a new subscription's backfill repeats events, and a backfill sends at
 * most the newest LIVE_BACKFILL events past its cursor (by id). Ids are no
 * commit order, so the newest id seen is no cursor; but an event seen with
 * LIVE_BACKFILL seen ids above it is never among the newest past the cursor
 * again, so it is never sent again. Remembering the highest LIVE_BACKFILL
 * ids is enough, however long the page stays open.
 */
const LIVE_BACKFILL = 1000

/**
 * Returns isNew(id): false for an id it returned true for before, as long
 * as fewer than limit higher ids came since. Keeps at most limit ids.
 */
export function newIds(limit) {
  const ids = [] // BigInt, ascending
  const kept = new Set()
  return (id) => {
    if (kept.has(id)) return false
    const n = BigInt(id)
    if (ids.length === limit && n < ids[0]) return true
    let i = ids.length // arrivals are mostly the highest yet
    while (i > 0 && ids[i - 1] > n) i--
    ids.splice(i, 0, n)
    kept.add(id)
    if (ids.length > limit) kept.delete(String(ids.shift()))
    return true
  }
}
