// End-to-end with "Require consent" on: the page sends and stores nothing until the visitor
// consents (here through the library's crumbs('consent', true), which is what the WP Consent API
// bridge calls); then the events recorded meanwhile, shortcode click included, reach Crumbs.
//
// Env: WP_POST_URL, CRUMBS_URL, CRUMBS_APP_ID, CRUMBS_ADMIN_TOKEN, CHROMIUM.
import { launchBrowser, loopback, report } from './browser.mjs';

const postUrl = process.env.WP_POST_URL;
const crumbsUrl = process.env.CRUMBS_URL;
const appId = process.env.CRUMBS_APP_ID;
const token = process.env.CRUMBS_ADMIN_TOKEN;
if (!postUrl || !crumbsUrl || !appId) {
	console.error('missing env WP_POST_URL, CRUMBS_URL or CRUMBS_APP_ID');
	process.exit(2);
}

async function timeline(deviceId) {
	const res = await fetch(`${crumbsUrl}/graphql`, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
		body: JSON.stringify({
			query: 'query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) { timeline(first: 100) { edges { node { code source } } } } }',
			variables: { a: appId, d: deviceId },
		}),
	});
	const body = await res.json();
	return (body.data?.device?.timeline?.edges ?? []).map((e) => `${e.node.code}/${e.node.source}`);
}

const { context, close } = await launchBrowser('consent');
const result = { ok: false };
await report(result, close, async () => {
	const page = context.pages()[0] || (await context.newPage());
	await page.route('**/*', (route) => (loopback(route.request().url()) ? route.continue() : route.abort()));
	const sent = [];
	page.on('request', (req) => {
		if (req.url().startsWith(`${crumbsUrl}/api/v1/`) && req.method() === 'POST') sent.push(req.postData() || '');
	});
	await page.goto(postUrl, { waitUntil: 'load' });
	result.requireConsentAttr = await page.$eval('script#crumbs-js', (s) => s.dataset.requireConsent);
	await page.locator('#visible-target').scrollIntoViewIfNeeded();
	await page.click('#shortcode-target');
	await page.waitForTimeout(1500);
	result.sentBeforeConsent = sent.length;
	result.storedBeforeConsent = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith('crumbs_')));

	await page.evaluate(() => window.crumbs('consent', true));
	const deviceId = await page.evaluate(() => window.crumbs('deviceId'));
	result.deviceId = deviceId;
	const deadline = Date.now() + 20000;
	for (;;) {
		result.codes = await timeline(deviceId);
		if (['trial_click/shortcode', 'pdf_download/shortcode'].every((c) => result.codes.includes(c))) break;
		if (Date.now() > deadline) break;
		await page.waitForTimeout(250);
	}
	result.ok = result.requireConsentAttr === 'true'
		&& result.sentBeforeConsent === 0
		&& result.storedBeforeConsent.length === 0
		&& ['trial_click/shortcode', 'pdf_download/shortcode'].every((c) => result.codes.includes(c));
});
