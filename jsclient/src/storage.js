import { opts } from './config.js'

// Everything stored is prefixed with crumbs_<appId>_, so the site's own keys
// are never touched and two apps on one origin keep apart.
export const P = () => `crumbs_${opts.appId}_`

/** Reads (no value) or writes a localStorage entry of this app; quiet when storage is unavailable. */
export function ls(k, v) {
  try {
    return v == null ? localStorage[P() + k] : (localStorage[P() + k] = v)
  } catch {}
}

// With cookieDomain (e.g. .example.com) the id also lives in a cookie there,
// so all subdomains share one device id: cookie() reads it, cookie(v) writes
// it, and an empty value deletes it. SameSite=Lax keeps it out of cross-site
// requests; on https (a secure context) it is Secure. In a sandboxed page
// document.cookie throws, as localStorage does: there is no cookie then.
const cookie = (v) => {
  try {
    return (
      opts.cookieDomain &&
      (v == null
        ? document.cookie.match(P() + 'id=(\\w+)')?.[1]
        : (document.cookie = `${P()}id=${v};path=/;domain=${opts.cookieDomain};max-age=${v ? 4e7 : 0};samesite=lax${isSecureContext ? ';secure' : ''}`))
    )
  } catch {}
}

/** A crypto-random id (128 bits as decimal digits), for device ids and message ids. */
export const uid = () => crypto.getRandomValues(new Uint32Array(4)).join('')

/** Whether anything may be sent: consent is not required, or given. */
export const ready = () => !opts.requireConsent || opts.consented

/** Whether anything may be stored: not in cookieless mode, and not before consent. */
export const keep = () => !opts.cookieless && ready()

/**
 * The device id, generated once. While `keep` is false it lives in memory only;
 * once it may be stored, an id already in storage wins over the one in memory.
 * With fresh, a new id replaces the old one.
 */
export function deviceId(fresh) {
  const k = keep()
  opts.id = fresh ? uid() : (k && (cookie() || ls('id'))) || opts.id || uid()
  if (k) ls('id', opts.id), cookie(opts.id)
  return opts.id
}

/** Removes everything this app stored: the device id, the queue and the consent flag (consent withdrawn). */
export function forget() {
  try {
    // (for-in also lists Storage's methods, which have no such prefix.)
    for (const k in localStorage) k.startsWith(P()) && delete localStorage[k]
  } catch {}
  cookie('')
  opts.id = 0
}
