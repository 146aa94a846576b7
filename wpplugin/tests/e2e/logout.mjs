// End-to-end: logging out of WordPress starts a new device in the browser. A subscriber logs in and
// reads the post (the page identifies the browser's device by their email); one more click of
// theirs is still queued in the browser when they log out (Crumbs' events endpoint is out of
// reach meanwhile). The next page view, whoever makes it, must land on a new, anonymous device and
// not on the lead's timeline; the queued click goes out with the old device and stays the lead's,
// as do the server-side user_logged_in and the earlier page view. Later pages keep the new device.
// Runs twice: with the device id in localStorage only (the default), and with data-cookie-domain
// (the id also in a cookie; tests/e2e/mu-plugin.php sets the attribute for this browser).
//
// Env: WP_URL, WP_POST_URL, CRUMBS_URL, CRUMBS_APP_ID, CRUMBS_ADMIN_TOKEN, CHROMIUM.
// Prints one JSON line with what it saw; exits non-zero when a check fails.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const wpUrl = need('WP_URL');
const postUrl = need('WP_POST_URL');
const crumbsUrl = need('CRUMBS_URL');
const appId = need('CRUMBS_APP_ID');
const prefix = `crumbs_${appId}_`;
const flagName = 'crumbs_new_device';

function need(name) {
	const v = process.env[name];
	if (!v) {
		console.error(`missing env ${name}`);
		process.exit(2);
	}
	return v;
}

// The answer's data; NOT_FOUND (a device Crumbs has not seen yet) answers null.
async function graphql(query, variables) {
	const res = await fetch(`${crumbsUrl}/graphql`, {
		method: 'POST',
		headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${process.env.CRUMBS_ADMIN_TOKEN}` },
		body: JSON.stringify({ query, variables }),
	});
	const body = await res.json();
	if (body.errors?.every((e) => e.extensions?.code === 'NOT_FOUND')) return null;
	if (body.errors) throw new Error(`graphql: ${JSON.stringify(body.errors)}`);
	return body.data;
}

// A device's lead (email or null) and events as "code/source", or null when Crumbs has none.
async function device(id) {
	const data = await graphql(
		'query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) { lead { email } timeline(first: 100) { edges { node { code source } } } } }',
		{ a: appId, d: id },
	);
	const d = data?.device;
	return d && { lead: d.lead?.email ?? null, codes: d.timeline.edges.map((e) => `${e.node.code}/${e.node.source}`) };
}

// A lead's devices and timeline events as { code, source, device }.
async function lead(email) {
	const data = await graphql(
		'query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) { devices { id } timeline(first: 200) { edges { node { code source device { id } } } } } }',
		{ a: appId, e: email },
	);
	const l = data?.leadByEmail;
	return l && {
		devices: l.devices.map((d) => d.id),
		events: l.timeline.edges.map((e) => ({ code: e.node.code, source: e.node.source, device: e.node.device?.id })),
	};
}

// Polls fn until it answers something truthy; null after ms.
async function until(fn, ms = 20000) {
	const deadline = Date.now() + ms;
	for (;;) {
		const v = await fn();
		if (v || Date.now() > deadline) return v || null;
		await new Promise((r) => setTimeout(r, 250));
	}
}

// The device id the library uses on this page, once it has loaded (the stub has no deviceId).
async function libraryDeviceId(page) {
	await page.waitForFunction(
		() => typeof window.crumbs === 'function' && !window.crumbs.q && typeof window.crumbs('deviceId') === 'string',
		null,
		{ timeout: 15000 },
	);
	return page.evaluate(() => window.crumbs('deviceId'));
}

async function run({ login, cookieDomain }) {
	const email = `${login}@example.org`;
	const r = { login, cookieDomain, checks: [] };
	const check = (name, ok, detail) => r.checks.push(ok ? { name, ok: true } : { name, ok: false, detail });
	const userDataDir = mkdtempSync(join(tmpdir(), 'crumbs-wp-logout-'));
	const context = await chromium.launchPersistentContext(userDataDir, {
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true,
		args: [
			'--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync',
		],
	});
	try {
		// Only loopback traffic leaves the browser; while held, the library's event batches fail
		// as if Crumbs were unreachable (on the context, so a keepalive send as a page is left too).
		let held = false;
		const heldBodies = [];
		await context.route('**/*', (route) => {
			const req = route.request();
			const url = new URL(req.url());
			if (url.hostname !== '127.0.0.1' && url.hostname !== 'localhost') return route.abort();
			if (held && req.url().startsWith(`${crumbsUrl}/api/v1/apps/`) && url.pathname.endsWith('/events')) {
				heldBodies.push(req.postData() || '');
				return route.abort('internetdisconnected');
			}
			return route.continue();
		});
		if (cookieDomain) {
			await context.addCookies([{ name: 'crumbs_e2e_cookie_domain', value: cookieDomain, url: wpUrl }]);
		}
		const page = context.pages()[0] || (await context.newPage());

		// Logged in: the page identifies the browser's device.
		await page.goto(`${wpUrl}/wp-login.php`);
		await page.fill('#user_login', login);
		await page.fill('#user_pass', `${login}-password`);
		await Promise.all([page.waitForURL((u) => !u.pathname.endsWith('wp-login.php')), page.click('#wp-submit')]);
		await page.goto(postUrl, { waitUntil: 'load' });
		const first = await libraryDeviceId(page);
		r.first = first;
		if (cookieDomain) {
			const c = (await context.cookies(wpUrl)).find((x) => x.name === `${prefix}id`);
			check('with data-cookie-domain the library keeps its id in a cookie too', c?.value === first, c);
		}
		const identified = await until(async () => {
			const l = await lead(email);
			return l && l.devices.includes(first) && l.events.some((e) => e.code === 'view' && e.device === first) && l;
		});
		check('logged in, the browser device is the lead\'s, with its page view', !!identified, identified);

		// One more click of the logged-in user, still queued in the browser when they log out.
		held = true;
		await page.click('#shortcode-target');
		const tried = await until(() => heldBodies.some((b) => b.includes('trial_click')), 10000);
		check('the logged-in click was tried and failed', tried, heldBodies);

		await page.goto(`${wpUrl}/wp-login.php?action=logout`);
		await Promise.all([page.waitForURL(/loggedout=true/), page.click('a[href*="action=logout"]')]);
		const atLogout = await page.evaluate((p) => ({
			id: localStorage[p + 'id'],
			queued: Object.keys(localStorage).filter((k) => k.startsWith(p + 'q')).map((k) => JSON.parse(localStorage[k])),
		}), prefix);
		check('at logout the click is still queued, with the old device',
			atLogout.queued.some((x) => x.code === 'trial_click' && x.device_id === first), atLogout);
		const flag = (await context.cookies(wpUrl)).find((c) => c.name === flagName);
		check('logging out leaves the flag cookie', !!flag && /^\w+$/.test(flag.value) && !flag.httpOnly, flag);
		held = false;

		// The next page view: a new device, before the library sends anything.
		await page.goto(postUrl, { waitUntil: 'load' });
		const second = await libraryDeviceId(page);
		r.second = second;
		check('the next page view is a new device', second !== first, { first, second });
		check('the flag is removed', !(await context.cookies(wpUrl)).some((c) => c.name === flagName));
		if (cookieDomain) {
			const c = (await context.cookies(wpUrl)).find((x) => x.name === `${prefix}id`);
			check('the device id cookie holds the new id', c?.value === second, c);
		}
		const fresh = await until(async () => {
			const d = await device(second);
			return d && d.codes.includes('view/js') && d.codes.includes('pdf_download/shortcode') && d;
		});
		check('the page view and the page\'s view trigger land on the new device', !!fresh, await device(second));
		check('the new device is anonymous', fresh?.lead === null, fresh);
		const old = await until(async () => {
			const d = await device(first);
			return d && d.codes.includes('trial_click/shortcode') && d;
		});
		check('the queued click went out with the old device', !!old, await device(first));

		// Later pages keep the new device, even with the same logout's flag again (a flag cookie
		// that could not be removed): the reset happens once.
		await page.reload({ waitUntil: 'load' });
		check('a reload keeps the new device', (await libraryDeviceId(page)) === second);
		await context.addCookies([{ name: flagName, value: flag?.value ?? 'none', url: wpUrl }]);
		await page.reload({ waitUntil: 'load' });
		check('the same flag again starts no other device', (await libraryDeviceId(page)) === second);
		check('… and is removed again', !(await context.cookies(wpUrl)).some((c) => c.name === flagName));
		const views = await until(async () => {
			const d = await device(second);
			return d && d.codes.filter((c) => c === 'view/js').length >= 3 && d;
		});
		check('the three anonymous page views are on the new device', !!views, await device(second));

		const l = (await lead(email)) || { devices: [], events: [] };
		r.lead = l;
		check('the lead owns the old device, not the new one', l.devices.includes(first) && !l.devices.includes(second), l.devices);
		check('nothing of the new device is on the lead\'s timeline', !l.events.some((e) => e.device === second));
		const mine = (code, dev) => l.events.some((e) => `${e.code}/${e.source}` === code && (!dev || e.device === dev));
		check('the logged-in page view and click stay on the lead',
			mine('view/js', first) && mine('trial_click/shortcode', first), l.events);
		check('the server-side user_logged_in stays on the lead', mine('user_logged_in/wordpress'), l.events);
	} catch (err) {
		r.error = String(err && err.stack ? err.stack : err);
	} finally {
		await context.close();
		rmSync(userDataDir, { recursive: true, force: true });
	}
	r.ok = !r.error && r.checks.every((c) => c.ok);
	return r;
}

const runs = [];
for (const variant of [{ login: 'leaver', cookieDomain: '' }, { login: 'leaver-cookie', cookieDomain: new URL(wpUrl).hostname }]) {
	runs.push(await run(variant));
}
const ok = runs.every((r) => r.ok);
console.log(JSON.stringify({ ok, runs }));
process.exit(ok ? 0 : 1);
