/**
 * Options from the script tag's data-* attributes: data-app-id="x" becomes
 * appId: "x"; an empty value becomes true and "false" becomes false.
 * The endpoint defaults to /graphql on the server that served the script.
 */
export function fromScript(el) {
  const o = { endpoint: new URL('/graphql', el.src).href }
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
export const log = (...a) => opts.debug && console.info('crumbs:', ...a)
