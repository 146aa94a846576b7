// The script-tag build: options from data-* attributes, then the global
// crumbs(command, ...args) replaces the queue stub and replays its calls.
import { fromScript, opts } from './config.js'
import { consent, deviceId, identify, init, reset, track } from './index.js'

// The commands. onError sets the function that receives final refusals (the
// init() option of the ES module); a later call replaces it, null removes it.
// From the stub it is replayed before any answer can arrive, so it sees them all.
const api = { track, identify, consent, deviceId, reset, onError: (f) => (opts.onError = f) }

// The stub's calls run once the queue exists and before the page view is
// queued (see init), so that the view belongs to the device they leave.
const stub = self.crumbs?.q || []
self.crumbs = (cmd, ...args) => api[cmd]?.(...args)
init(fromScript(document.currentScript), () => stub.map((a) => crumbs(...a)))
