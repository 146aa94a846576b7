import { opts as c } from './config.js'

/**
 * Says why this browser must not send anything, or answers '' when it may.
 * allowAutomation lets tests that drive a browser through WebDriver or CDP
 * through; it never switches off the other reasons.
 */
export const filter = (nav = navigator) =>
  !c.appId ? 'no appId' : nav.webdriver && !c.allowAutomation ? 'automation' : c.respectGpc && nav.globalPrivacyControl ? 'GPC' : ''
