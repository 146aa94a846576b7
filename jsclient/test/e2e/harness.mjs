// Helpers for the end-to-end tests: the real Crumbs server, a site that
// serves test pages and the built library, GraphQL calls, and Chromium.
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const jsclient = fileURLToPath(new URL('../..', import.meta.url))
export const dist = join(jsclient, 'dist/crumbs.js')

/** A free TCP port on 127.0.0.1 (so the server can be restarted on the same one). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createNetServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** CRUMBS_BIN, or a server binary built from the repository into dir. */
export function serverBinary(dir) {
  if (process.env.CRUMBS_BIN) return process.env.CRUMBS_BIN
  const bin = join(dir, 'crumbs')
  execFileSync('go', ['build', '-o', bin, './server'], { cwd: join(jsclient, '..'), stdio: 'inherit' })
  return bin
}

/**
 * The Crumbs server on a fixed port and SQLite file, which can be stopped and
 * started again (the same data) to test delivery while it is down.
 */
export class CrumbsServer {
  constructor(bin, port, db) {
    Object.assign(this, { bin, port, db, url: `http://127.0.0.1:${port}`, log: [] })
  }

  get env() {
    return { ...process.env, CRUMBS_ADDR: `127.0.0.1:${this.port}`, CRUMBS_DATABASE_URL: `sqlite:${this.db}` }
  }

  /**
   * Creates the dashboard user that the admin queries sign in as
   * (`crumbs admin create`, with the password from CRUMBS_ADMIN_PASSWORD).
   */
  createAdmin() {
    this.admin = { email: 'e2e@example.test', password: `e2e-${Math.random().toString(36).slice(2)}-Password1` }
    execFileSync(this.bin, ['admin', 'create', '--email', this.admin.email, '--name', 'e2e'], {
      env: { ...this.env, CRUMBS_ADMIN_PASSWORD: this.admin.password },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
  }

  start() {
    this.proc = spawn(this.bin, [], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] })
    const proc = this.proc
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server not ready in 30s:\n${this.log.join('')}`)), 30000)
      const onData = (d) => {
        this.log.push(String(d))
        if (this.log.join('').includes(`crumbs listening on ${this.url}`)) {
          clearTimeout(timer)
          resolve()
        }
      }
      proc.stdout.on('data', onData)
      proc.stderr.on('data', (d) => this.log.push(String(d)))
      proc.on('exit', (code) => {
        clearTimeout(timer)
        reject(new Error(`server exited (${code}):\n${this.log.join('')}`))
      })
    })
  }

  /** Stops the server with SIGTERM and waits for it to exit. */
  stop() {
    const proc = this.proc
    this.proc = null
    if (!proc || proc.exitCode !== null) return Promise.resolve()
    return new Promise((resolve) => {
      proc.removeAllListeners('exit')
      proc.on('exit', () => resolve())
      proc.kill('SIGTERM')
      setTimeout(() => proc.exitCode === null && proc.kill('SIGKILL'), 10000).unref()
    })
  }

  /**
   * A GraphQL request as the admin user; throws on top-level errors. It signs
   * in again when the token is refused (e.g. after a restart).
   */
  async gql(query, variables, retry = true) {
    const headers = { 'Content-Type': 'application/json' }
    if (this.token) headers.Authorization = `Bearer ${this.token}`
    const res = await fetch(`${this.url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) })
    const j = await res.json()
    if (retry && this.admin && j.errors?.some((e) => e.extensions?.code == 'UNAUTHENTICATED')) {
      this.token = null
      const login = await this.gql(
        'mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }',
        { e: this.admin.email, p: this.admin.password },
        false,
      )
      this.token = login.login.accessToken
      return this.gql(query, variables, false)
    }
    if (j.errors) throw new Error(`GraphQL ${JSON.stringify(j.errors)} for ${query}`)
    return j.data
  }

  async createApp() {
    return (await this.gql('mutation { createApp(input: {name: "e2e"}) { app { id } } }')).createApp.app.id
  }

  async defineEvent(appId, code, enabled = true) {
    const d = await this.gql(
      'mutation($i: CreateEventDefinitionInput!) { createEventDefinition(input: $i) { id } }',
      { i: { appId, code, name: code } },
    )
    const id = d.createEventDefinition.id
    if (!enabled) await this.gql('mutation($id: ID!) { updateEventDefinition(id: $id, input: {enabled: false}) { id } }', { id })
    return id
  }

  /** The device's lead and timeline, oldest event first. */
  async device(appId, deviceId) {
    // Before its first event a device is unknown: null, or a NOT_FOUND error.
    const d = await this.gql(
      `query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) {
        lead { id email }
        timeline(first: 100) { edges { node { code source url referrer title properties occurredAt } } }
      } }`,
      { a: appId, d: deviceId },
    ).catch((e) => {
      if (/"NOT_FOUND"/.test(e.message)) return {}
      throw e
    })
    if (!d.device) return { lead: null, events: [] }
    return { lead: d.device.lead, events: d.device.timeline.edges.map((e) => e.node).reverse() }
  }

  async leadTimeline(id) {
    const d = await this.gql(
      'query($id: ID!) { lead(id: $id) { email timeline(first: 100) { edges { node { code source url properties } } } } }',
      { id },
    )
    return { email: d.lead.email, events: d.lead.timeline.edges.map((e) => e.node).reverse() }
  }
}

/**
 * The test site: pages added by path, the built library at /crumbs.js, and
 * any POST answered with the page at that path (form targets).
 */
export async function startSite() {
  const pages = new Map()
  const held = {}
  held.promise = new Promise((r) => (held.resolve = r))
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    if (path == '/crumbs.js' || path == '/held/crumbs.js') {
      // /held/crumbs.js answers once release() is called: a server that hangs.
      return (path == '/crumbs.js' ? Promise.resolve() : held.promise).then(() => {
        res.writeHead(200, { 'Content-Type': 'text/javascript', 'Cache-Control': 'no-store' })
        res.end(readFileSync(dist))
      })
    }
    // The ES module, as a bundler would take it from src/.
    if (/^\/src\/\w+\.js$/.test(path)) {
      res.writeHead(200, { 'Content-Type': 'text/javascript', 'Cache-Control': 'no-store' })
      return res.end(readFileSync(join(jsclient, path)))
    }
    const page = pages.get(path)
    if (typeof page == 'function') return page(req, res)
    req.resume()
    res.writeHead(page ? 200 : 404, { 'Content-Type': 'text/html; charset=utf-8' })
    res.end(page || 'not found')
  })
  const port = await freePort()
  await new Promise((r) => server.listen(port, '127.0.0.1', r))
  server.unref() // a test that fails early must not keep node running
  const url = `http://127.0.0.1:${port}`
  return {
    url,
    /** Adds a page as it is (full HTML). */
    raw(path, html) {
      pages.set(path, html)
      return url + path
    },
    /**
     * Adds a page with the crumbs tag as the README gives it (attrs are its data-* attributes),
     * after head (such as the queue stub) and before this body.
     */
    add(path, { title = path, attrs = {}, head = '', body = '', src = `${url}/crumbs.js` }) {
      pages.set(path, `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}
${this.tag(attrs, src)}</head><body>${body}</body></html>`)
      return url + path
    },
    /** The crumbs tag as the README gives it. */
    tag(attrs, src = `${url}/crumbs.js`) {
      const data = Object.entries(attrs)
        .map(([k, v]) => (v === true ? ` data-${k}` : ` data-${k}="${v}"`))
        .join('')
      return `<script async src="${src}"${data}></script>`
    },
    /** Answers path with handler(req, res). */
    handle(path, handler) {
      pages.set(path, handler)
      return url + path
    },
    /** Lets /held/crumbs.js answer. */
    release: () => held.resolve(),
    close: () => {
      const closed = new Promise((r) => server.close(r))
      server.closeAllConnections() // the browser keeps connections alive
      return closed
    },
  }
}

/**
 * Debian's Chromium, headless, with no network of its own and a fresh profile.
 * With bfcache, the back/forward cache is on, as in browsers people use
 * (Playwright switches it off by default).
 */
export async function launchBrowser({ bfcache = false } = {}) {
  const profile = mkdtempSync(join(tmpdir(), 'crumbs-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    ignoreDefaultArgs: bfcache ? ['--disable-back-forward-cache'] : [],
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  const close = async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  }
  return { context, close }
}

/** Polls fn until it answers truthy; fails with the last answer after ms. */
export async function until(fn, ms = 15000, what = 'condition') {
  const end = Date.now() + ms
  let last
  while (Date.now() < end) {
    last = await fn()
    if (last) return last
    await sleep(200)
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`)
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** Counts events by code. */
export const counts = (events) => events.reduce((m, e) => ((m[e.code] = (m[e.code] || 0) + 1), m), {})
