// End-to-end: a real WordPress page with the Crumbs shortcode, block and core-button panel,
// opened in Debian's headless Chromium; the clicks must land on the visitor's timeline in Crumbs.
//
// Env: WP_POST_URL (the fixture post), CRUMBS_URL, CRUMBS_APP_ID, CRUMBS_ADMIN_TOKEN (a dashboard
// user's access token, for reading the timeline), CHROMIUM (default /usr/bin/chromium).
// Prints one JSON line with what it saw; exits non-zero when an expectation fails.
import { launchBrowser, loopback, report } from './browser.mjs';
import { submitLogin } from './wplogin.mjs';

const postUrl = need('WP_POST_URL');
const crumbsUrl = need('CRUMBS_URL');
const appId = need('CRUMBS_APP_ID');

const expected = [
	{ code: 'pdf_download', source: 'shortcode', props: { file: 'guide.pdf' } },
	{ code: 'trial_click', source: 'shortcode', props: { plan: 'pro' } },
	{ code: 'visible_test', source: 'shortcode', props: {} },
	{ code: 'demo_click', source: 'block', props: { placement: 'hero' } },
	{ code: 'pricing_click', source: 'block', props: {} },
];

function need(name) {
	const v = process.env[name];
	if (!v) {
		console.error(`missing env ${name}`);
		process.exit(2);
	}
	return v;
}

// Finds every "deviceId" value in a JSON body the library sent, whatever its exact shape.
function deviceIds(value, out = new Set()) {
	if (Array.isArray(value)) {
		value.forEach((v) => deviceIds(v, out));
	} else if (value && typeof value === 'object') {
		for (const [k, v] of Object.entries(value)) {
			if ((k === 'deviceId' || k === 'device_id') && typeof v === 'string') out.add(v);
			else deviceIds(v, out);
		}
	}
	return out;
}

async function graphql(query, variables) {
	const res = await fetch(`${crumbsUrl}/graphql`, {
		method: 'POST',
		// Reading a device's timeline is a dashboard query: it needs a signed-in user's token.
		headers: { 'Content-Type': 'application/json', ...(process.env.CRUMBS_ADMIN_TOKEN ? { Authorization: `Bearer ${process.env.CRUMBS_ADMIN_TOKEN}` } : {}) },
		body: JSON.stringify({ query, variables }),
	});
	return res.json();
}

async function timeline(deviceId) {
	const body = await graphql(
		'query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) { timeline(first: 200) { edges { node { code source url properties } } } } }',
		{ a: appId, d: deviceId },
	);
	return (body.data?.device?.timeline?.edges ?? []).map((e) => e.node);
}

const { context, close } = await launchBrowser('e2e');
const result = { ok: false, deviceIds: [], events: [], missing: [], consoleErrors: [], blocked: [] };
await report(result, close, async () => {
	const page = context.pages()[0] || (await context.newPage());
	// Only loopback traffic leaves the browser.
	await page.route('**/*', (route) => {
		if (loopback(route.request().url())) return route.continue();
		result.blocked.push(route.request().url());
		return route.abort();
	});
	const seen = new Set();
	page.on('request', (req) => {
		if (!req.url().startsWith(crumbsUrl) || req.method() !== 'POST') return;
		try {
			deviceIds(JSON.parse(req.postData() || 'null'), seen);
		} catch {
			// Not JSON (e.g. a beacon in another encoding): nothing to read.
		}
	});
	// The library's requests and the server's answers, for the report when something is missing.
	result.answers = [];
	page.on('requestfinished', async (req) => {
		if (!req.url().startsWith(`${crumbsUrl}/api/v1/`)) return;
		const res = await req.response();
		const body = await res?.text().catch(() => '');
		result.answers.push(`${res?.status()} ${String(body).slice(0, 300)}`);
	});
	page.on('requestfailed', (req) => {
		if (req.url().startsWith(crumbsUrl)) result.answers.push(`failed ${req.url()}: ${req.failure()?.errorText}`);
	});
	page.on('console', (msg) => {
		if (msg.type() === 'error') result.consoleErrors.push(msg.text());
	});
	page.on('pageerror', (err) => result.consoleErrors.push(String(err)));

	const library = page.waitForResponse((r) => r.url() === `${crumbsUrl}/crumbs.js`, { timeout: 15000 }).catch(() => null);
	await page.goto(postUrl, { waitUntil: 'load' });
	result.library = (await library)?.status() ?? 'no response';
	const tag = await page.$eval('script#crumbs-js', (s) => ({ src: s.src, async: s.async, defer: s.defer, appId: s.dataset.appId }));
	result.scriptTag = tag;
	if (!tag.async || tag.defer || tag.appId !== appId || tag.src !== `${crumbsUrl}/crumbs.js`) {
		throw new Error(`unexpected library tag ${JSON.stringify(tag)}`);
	}
	if (result.library !== 200) throw new Error(`the library ${crumbsUrl}/crumbs.js answered HTTP ${result.library}`);
	const html = await page.content();
	if (/sk_[a-z0-9]{8,}/.test(html)) throw new Error('a secret key is in the page source');

	await page.locator('#visible-target').scrollIntoViewIfNeeded();
	await page.click('#shortcode-target');
	await page.click('#block-target');
	await page.getByText('See pricing').click();

	// Delivery may be batched: poll Crumbs until every expected event is on the timeline.
	const deadline = Date.now() + 20000;
	let events = [];
	for (;;) {
		if (seen.size === 0) {
			const stored = await page.evaluate(() => {
				const out = [];
				for (let i = 0; i < localStorage.length; i++) {
					const k = localStorage.key(i);
					if (/crumbs/i.test(k)) out.push(localStorage.getItem(k));
				}
				return out;
			});
			for (const s of stored) {
				try {
					deviceIds(JSON.parse(s), seen);
				} catch {
					if (/^[\w-]{8,128}$/.test(s)) seen.add(s);
				}
			}
		}
		events = [];
		for (const id of seen) events.push(...(await timeline(id)));
		const missing = expected.filter(
			(want) => !events.some((e) => e.code === want.code && e.source === want.source
				&& Object.entries(want.props).every(([k, v]) => e.properties?.[k] === v)),
		);
		result.missing = missing.map((m) => `${m.code}/${m.source}`);
		if (missing.length === 0 || Date.now() > deadline) break;
		await page.waitForTimeout(250);
	}
	result.deviceIds = [...seen];
	result.events = events.map((e) => ({ code: e.code, source: e.source, properties: e.properties }));
	result.ok = result.deviceIds.length > 0 && result.missing.length === 0;
	// The same visitor logs in as a subscriber: WordPress sends user_logged_in server-side and the
	// page identifies the browser's device by the user's email, so the lead's timeline holds the
	// anonymous shortcode/block events from before and the server-side login.
	if (result.ok) {
		await page.goto(`${new URL(postUrl).origin}/wp-login.php`);
		await submitLogin(page, 'reader', 'reader-password');
		await page.goto(postUrl, { waitUntil: 'load' });
		const identifyDeadline = Date.now() + 20000;
		let lead = null;
		for (;;) {
			const body = await graphql(
				'query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) { name devices { id } timeline(first: 200) { edges { node { code source } } } } }',
				{ a: appId, e: 'reader@example.org' },
			);
			lead = body.data?.leadByEmail ?? null;
			const codes = (lead?.timeline.edges ?? []).map((e) => `${e.node.code}/${e.node.source}`);
			result.lead = { name: lead?.name, devices: lead?.devices.map((d) => d.id), codes };
			const done = lead
				&& result.deviceIds.every((id) => lead.devices.some((d) => d.id === id))
				&& codes.includes('trial_click/shortcode') && codes.includes('demo_click/block')
				&& codes.includes('user_logged_in/wordpress');
			if (done) break;
			if (Date.now() > identifyDeadline) {
				result.ok = false;
				result.identifyError = 'the logged-in reader was not identified with both devices and events';
				break;
			}
			await page.waitForTimeout(250);
		}
		if (lead && lead.name !== 'Rita Reader') {
			result.ok = false;
			result.identifyError = `lead name ${lead.name}`;
		}
	}
	const wrongUrl = events.filter((e) => expected.some((x) => x.code === e.code) && !String(e.url || '').startsWith(postUrl.split('?')[0]));
	if (wrongUrl.length) {
		result.ok = false;
		result.wrongUrl = wrongUrl.map((e) => `${e.code}: ${e.url}`);
	}
});
