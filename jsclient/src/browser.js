// The script-tag build: options from data-* attributes, then the global
// crumbs(command, ...args) replaces the queue stub and replays its calls.
import { fromScript } from './config.js'
import { consent, deviceId, identify, init, track } from './index.js'

const api = { track, identify, consent, deviceId }

const stub = self.crumbs?.q || []
init(fromScript(document.currentScript))
self.crumbs = (cmd, ...args) => api[cmd]?.(...args)
for (const a of stub) self.crumbs(...a)
