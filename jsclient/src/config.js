/**
 * Options from the script tag's data-* attributes: data-app-id="x" becomes
 * appId: "x"; an empty value becomes true and "false" becomes false.
 * The endpoint defaults to where the script was served from: the Crumbs
 * server's root, or its path behind a proxy (https://example.com/crumbs/).
 */
export function fromScript(el) {
  // (A URL, which new URL takes as a base as it takes its href.)
  const o = { endpoint: new URL('.', el.src) }
  for (const k in el.dataset) {
    const v = el.dataset[k]
    o[k] = v == 'false' ? false : v || true
  }
  return o
}

/**
 * The options in force (see index.d.ts), shared by all modules; init fills
 * them in, together with the state that goes with them: why (the filter's
 * reason not to send), consented, ref (the referrer of this page view) and id
 * (the device id).
 */
export const opts = {}

/** Writes a debug line to the console when the debug option is on. */
export const log = (...a) => opts.debug && console.info('crumbs', ...a)

/**
 * True in the ES module. The script-tag build (build.mjs) defines
 * globalThis.CRUMBS_TAG, leaving out what only the module needs: keeping
 * calls made before init, and checking that init has run (the tag runs init
 * before it installs crumbs(), and its stub keeps earlier calls).
 */
export const ES = !globalThis.CRUMBS_TAG
