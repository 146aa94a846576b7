// Helpers for the dashboard's browser tests: the real Crumbs server (the
// store named by CRUMBS_DATABASE_URL, else a fresh SQLite file), GraphQL
// calls as the admin, and Debian's Chromium.
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer as createNetServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium } from 'playwright-core'

export const root = fileURLToPath(new URL('../../..', import.meta.url))

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

/** CRUMBS_BIN, or a server binary built from the repository. */
export function serverBinary(dir) {
  if (process.env.CRUMBS_BIN) return process.env.CRUMBS_BIN
  const bin = join(dir, 'crumbs')
  execFileSync('go', ['build', '-o', bin, './server'], { cwd: root, stdio: 'inherit' })
  return bin
}

/** Where screenshots go: DASHBOARD_ARTIFACTS, else a temp folder. */
export function artifacts() {
  const dir = process.env.DASHBOARD_ARTIFACTS || mkdtempSync(join(tmpdir(), 'crumbs-dashboard-shots-'))
  mkdirSync(dir, { recursive: true })
  return dir
}

export class CrumbsServer {
  constructor(bin, port, databaseURL) {
    Object.assign(this, { bin, port, databaseURL, url: `http://127.0.0.1:${port}`, log: [] })
  }

  get env() {
    return { ...process.env, CRUMBS_ADDR: `127.0.0.1:${this.port}`, CRUMBS_DATABASE_URL: this.databaseURL }
  }

  /** Makes the first dashboard user, as a newcomer would (`crumbs admin create`). */
  createAdmin(email = 'owner@example.test') {
    this.admin = { email, password: `Tour-${Math.random().toString(36).slice(2)}-Password1` }
    execFileSync(this.bin, ['admin', 'create', '--email', email, '--name', 'Olivia Owner'], {
      env: { ...this.env, CRUMBS_ADMIN_PASSWORD: this.admin.password },
      stdio: ['ignore', 'ignore', 'pipe'],
    })
  }

  start() {
    this.proc = spawn(this.bin, [], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] })
    const proc = this.proc
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server not ready in 60s:\n${this.log.join('')}`)), 60000)
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

  /** GraphQL as the admin (its own sign-in, not the browser's); throws on errors. */
  async gql(query, variables, headers = {}) {
    if (!this.token && this.admin && !('Authorization' in headers)) {
      const r = await this.gql('mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }', { e: this.admin.email, p: this.admin.password }, { Authorization: '' })
      this.token = r.login.accessToken
    }
    const h = { 'Content-Type': 'application/json', ...headers }
    if (h.Authorization === undefined && this.token) h.Authorization = `Bearer ${this.token}`
    if (!h.Authorization) delete h.Authorization
    const res = await fetch(`${this.url}/graphql`, { method: 'POST', headers: h, body: JSON.stringify({ query, variables }) })
    const j = await res.json()
    if (j.errors) throw new Error(`GraphQL ${JSON.stringify(j.errors)} for ${query}`)
    return j.data
  }
}

/**
 * Starts a server on the configured store with an admin user (email: one
 * of its own for each test file, since the files run one after the other
 * on the same store).
 */
export async function startServer(dir, email) {
  const bin = serverBinary(dir)
  const url = process.env.CRUMBS_DATABASE_URL || `sqlite:${join(dir, 'crumbs.db')}`
  const s = new CrumbsServer(bin, await freePort(), url)
  s.createAdmin(email)
  await s.start()
  return s
}

/** Debian's Chromium, headless, with a fresh profile. */
export async function launchBrowser() {
  const profile = mkdtempSync(join(tmpdir(), 'crumbs-dash-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  const close = async () => {
    await context.close()
    rmSync(profile, { recursive: true, force: true })
  }
  return { context, close }
}

export async function until(fn, ms = 15000, what = 'condition') {
  const end = Date.now() + ms
  let last
  while (Date.now() < end) {
    last = await fn()
    if (last) return last
    await new Promise((r) => setTimeout(r, 200))
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`)
}
