// Drives the real graphql-ws client (graphql-transport-ws) against a Crumbs
// server; server/graphqlws_test.go starts the server and checks the JSON
// this prints. Usage: node subscribe.mjs BASE_URL APP_ID SECRET_KEY USER_TOKEN
// The server lets one websocket per credential be open at once.
import { createClient } from 'graphql-ws'
import WebSocket from 'ws'

const [base, appId, secret, userToken] = process.argv.slice(2)
const wsURL = base.replace(/^http/, 'ws') + '/graphql'
const query = 'subscription($a: ID!) { eventStored(appId: $a) { id url } }'
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// until waits for check() to hold, or fails with what.
async function until(what, check) {
  for (const end = Date.now() + 30000; Date.now() < end; await sleep(50)) {
    if (check()) return
  }
  throw new Error('timed out waiting for ' + what)
}

async function gql(token, q, variables) {
  const res = await fetch(base + '/graphql', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token },
    body: JSON.stringify({ query: q, variables }),
  })
  const body = await res.json()
  if (body.errors) throw new Error(JSON.stringify(body.errors))
  return body.data
}

// triggering stores an event at url over HTTP every 200 ms until stopped.
function triggering(url) {
  let on = true
  const loop = (async () => {
    while (on) {
      await gql(secret, 'mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }', {
        in: { appId, deviceId: 'graphql-ws-client', code: 'view', url },
      })
      await sleep(200)
    }
  })()
  return async () => { on = false; await loop }
}

// watch subscribes a new client with token, recording what it sees.
function watch(token) {
  const seen = { events: [], closes: [], connecting: 0, connected: 0, error: null, completed: false }
  const client = createClient({
    url: wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: 'Bearer ' + token },
    retryAttempts: 100,
    retryWait: () => sleep(200),
    on: {
      connecting: () => seen.connecting++,
      connected: () => seen.connected++,
      closed: (e) => seen.closes.push(e.code),
    },
  })
  client.subscribe({ query, variables: { a: appId } }, {
    next: (r) => (r.errors ? (seen.error = r.errors) : seen.events.push(r.data.eventStored.url)),
    error: (e) => (seen.error = e && e.code !== undefined ? { code: e.code, reason: e.reason } : String(e)),
    complete: () => (seen.completed = true),
  })
  return { client, seen }
}

const out = {}

// Events triggered over HTTP arrive.
const stopFirst = triggering('https://s.example/graphql-ws/first')
const first = watch(secret)
await until('an event', () => first.seen.events.includes('https://s.example/graphql-ws/first'))
out.events = first.seen.events.length

// A second client of the same key is refused (1013, try again later) and
// retries; once the first client is gone, it connects and subscribes.
const second = watch(secret)
await until('a refusal of the second client', () => second.seen.closes.includes(1013))
await first.client.dispose()
await stopFirst()
const stopSecond = triggering('https://s.example/graphql-ws/second')
await until('an event after reconnecting', () => second.seen.events.includes('https://s.example/graphql-ws/second'))
await stopSecond()
out.refusedWith = second.seen.closes
out.connectedAfterRefusal = second.seen.connected
await second.client.dispose()

// A user's subscription ends with the sign-in: logoutEverywhere closes it
// with 4401 although no event comes, and the client does not retry.
const stopUser = triggering('https://s.example/graphql-ws/user')
const user = watch(userToken)
await until("an event of the user's subscription", () => user.seen.events.includes('https://s.example/graphql-ws/user'))
await stopUser()
await gql(userToken, 'mutation { logoutEverywhere }')
await until('the end of the subscription', () => user.seen.error !== null || user.seen.completed)
const connecting = user.seen.connecting
await sleep(1500)
out.endedWith = user.seen.error
out.retriedAfterEnd = user.seen.connecting !== connecting
await user.client.dispose()

console.log(JSON.stringify(out))
process.exit(0)
