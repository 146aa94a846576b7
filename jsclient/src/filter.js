import { opts as c } from './config.js'

/** Crawlers (Googlebot, bingbot, Baiduspider, …) and headless browsers, by user agent. */
export const BOTS = /bot|crawl|spider|headless/i

/**
 * Says why the browser of navigator nav must not send anything, or answers ''
 * when it may: a bot is a browser driven through WebDriver or CDP, or one
 * whose user agent is a crawler's or a headless browser's. allowAutomation
 * lets tests that drive a browser through; it never switches off the other
 * reasons.
 */
export const filter = (nav) =>
  !c.appId ? 'no appId' : (nav.webdriver || BOTS.test(nav.userAgent)) && !c.allowAutomation ? 'bot' : c.respectGpc && nav.globalPrivacyControl ? 'GPC' : ''
