// End-to-end with a Crumbs server that accepts connections and never answers (HUNG_URL, the
// plugin's server URL for this run): the page is ready on time, and the site's own
// DOMContentLoaded handlers run while the library is still loading. A deferred library held
// DOMContentLoaded until the browser gave up on it.
//
// Env: WP_POST_URL, HUNG_URL, CHROMIUM.
import { launchBrowser, loopback, report } from './browser.mjs';

const postUrl = process.env.WP_POST_URL;
const hungUrl = process.env.HUNG_URL;
if (!postUrl || !hungUrl) {
	console.error('missing env WP_POST_URL or HUNG_URL');
	process.exit(2);
}

const { context, close } = await launchBrowser('hung');
const result = { ok: false };
await report(result, close, async () => {
	const page = context.pages()[0] || (await context.newPage());
	await page.route('**/*', (route) => (loopback(route.request().url()) ? route.continue() : route.abort()));
	// The site's own script, as a theme would have one: it notes when the document is ready.
	await page.addInitScript(() => {
		document.addEventListener('DOMContentLoaded', () => {
			window.siteReady = typeof window.crumbs === 'function' && !window.crumbs.q ? 'after the library' : 'before the library';
		});
	});
	await page.goto(postUrl, { waitUntil: 'domcontentloaded', timeout: 15000 });
	result.siteReady = await page.evaluate(() => window.siteReady);
	result.scriptTag = await page.$eval('script#crumbs-js', (s) => ({ src: s.src, async: s.async, defer: s.defer }));
	result.ok = result.siteReady === 'before the library'
		&& result.scriptTag.src === `${hungUrl}/crumbs.js`
		&& result.scriptTag.async && !result.scriptTag.defer;
});
