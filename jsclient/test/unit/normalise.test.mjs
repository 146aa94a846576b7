import assert from 'node:assert/strict'
import { test } from 'node:test'
import { normaliseEventCode } from '../../providers/stacksee/normalise.js'

// The cases of models.NormaliseEventCode's test, and a few more: one name lands on one code everywhere.
test('event names become codes as the Segment endpoint makes them', () => {
  for (const [name, code] of [
    ['Order Completed', 'order_completed'],
    ['Page-View!', 'page_view'],
    ['  signup_started  ', 'signup_started'],
    ['__a__b__', 'a_b'],
    ['Checkout: Step 2 / Payment', 'checkout_step_2_payment'],
    ['already_fine', 'already_fine'],
    ['v1.2-beta', 'v1_2_beta'],
    ['Café Visit', 'caf_visit'],
    ['!!!', ''],
    ['Ünïcode Évent', 'n_code_vent'],
    ['$purchase', 'purchase'],
    ['CamelCaseEvent', 'camelcaseevent'],
    ['a\tb\nc', 'a_b_c'],
    ['video 🎬 played', 'video_played'],
    ['', ''],
    ['İstanbul Trip', 'istanbul_trip'],
    ['\u212Aelvin', 'kelvin'],
    ['a'.repeat(63) + ' b', 'a'.repeat(63)],
    ['x'.repeat(70), 'x'.repeat(64)],
  ])
  {
    assert.equal(normaliseEventCode(name), code, name)
    assert.equal(normaliseEventCode(code), code, `idempotent on ${code}`)
  }
})
