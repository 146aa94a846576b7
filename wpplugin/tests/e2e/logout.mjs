// End-to-end: a browser that changes hands starts a new device. Each scenario runs twice: with the
// device id in localStorage only (the default), and with data-cookie-domain (the id also in a
// cookie; tests/e2e/mu-plugin.php sets the attribute for this browser).
//
// Logging out (run): a subscriber logs in and reads the post (the page identifies the browser's
// device by their email); one more click of theirs is still queued in the browser when they log out
// (Crumbs' events endpoint is out of reach meanwhile). The next page view, whoever makes it, must
// land on a new, anonymous device and not on the lead's timeline; the queued click goes out with
// the old device and stays the lead's, as do the server-side user_logged_in and the earlier page
// view. Later pages keep the new device.
//
// Another user, no logout (runUserChange): an anonymous visitor reads the post and logs in as A
// (the device and its anonymous history join A's lead); A's session ends without a logout (the
// auth cookies are deleted, as when they expire): the next anonymous pages go to a new device, not
// on A's lead, and A logs in again (that device, with those pages, joins A's lead); it ends again
// and B logs in on the same browser: B's page views must land on a new device on B's lead, and
// A's lead keep A's devices and every event of them (nothing of A's moves to B).
//
// Env: WP_URL, WP_POST_URL, CRUMBS_URL, CRUMBS_APP_ID, CRUMBS_ADMIN_TOKEN, CHROMIUM.
// Prints one JSON line with what it saw; exits non-zero when a check fails.
import { launchBrowser, loopback } from './browser.mjs';
import { submitLogin } from './wplogin.mjs';

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

// Polls fn until it answers something truthy; null after ms. Generous, as CI runs this beside every
// other suite under the race detector: a wait is the one thing here that load can break, and a
// passing check returns as soon as it holds.
async function until(fn, ms = 60000) {
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
		{ timeout: 45000 },
	);
	return page.evaluate(() => window.crumbs('deviceId'));
}

// The context's page, once the variant's cookie is set (routes are the caller's).
async function firstPage(context, cookieDomain) {
	if (cookieDomain) {
		await context.addCookies([{ name: 'crumbs_e2e_cookie_domain', value: cookieDomain, url: wpUrl }]);
	}
	return context.pages()[0] || (await context.newPage());
}

// Logs in through wp-login.php and waits for the redirect away from it.
async function logIn(page, login) {
	await page.goto(`${wpUrl}/wp-login.php`);
	await submitLogin(page, login, `${login}-password`);
}

async function run({ login, cookieDomain }) {
	const email = `${login}@example.org`;
	const r = { login, cookieDomain, checks: [] };
	const check = (name, ok, detail) => r.checks.push(ok ? { name, ok: true } : { name, ok: false, detail });
	const { context, close } = await launchBrowser('logout');
	try {
		// Only loopback traffic leaves the browser; while held, the library's event batches fail
		// as if Crumbs were unreachable (on the context, so a keepalive send as a page is left too).
		let held = false;
		const heldBodies = [];
		await context.route('**/*', (route) => {
			const req = route.request();
			const url = new URL(req.url());
			if (!loopback(req.url())) return route.abort();
			if (held && req.url().startsWith(`${crumbsUrl}/api/v1/apps/`) && url.pathname.endsWith('/events')) {
				heldBodies.push(req.postData() || '');
				return route.abort('internetdisconnected');
			}
			return route.continue();
		});
		const page = await firstPage(context, cookieDomain);

		// Logged in: the page identifies the browser's device.
		await logIn(page, login);
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
		const tried = await until(() => heldBodies.some((b) => b.includes('trial_click')), 30000);
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
		await close();
	}
	r.ok = !r.error && r.checks.every((c) => c.ok);
	return r;
}

// Another WordPress user logs in on a browser whose session ended without a logout.
async function runUserChange({ a, b, cookieDomain }) {
	const [emailA, emailB] = [`${a}@example.org`, `${b}@example.org`];
	const r = { a, b, cookieDomain, checks: [] };
	const check = (name, ok, detail) => r.checks.push(ok ? { name, ok: true } : { name, ok: false, detail });
	const { context, close } = await launchBrowser('logout');
	try {
		await context.route('**/*', (route) => (loopback(route.request().url()) ? route.continue() : route.abort()));
		const page = await firstPage(context, cookieDomain);
		const read = async (who) => {
			await page.goto(postUrl, { waitUntil: 'load' });
			const id = await libraryDeviceId(page);
			const identifies = await page.evaluate(() => !!document.getElementById('crumbs-identify'));
			check(`${who}: the page identifies ${who === 'anonymous' ? 'nobody' : 'them'}`, identifies === (who !== 'anonymous'));
			return id;
		};
		// What the browser keeps of who its device was identified as.
		const mark = () => page.evaluate((k) => localStorage[k] ?? null, `${prefix}wp_user`);
		// The session ends without a logout: WordPress's auth cookies are gone, as when they expire.
		const endSession = async () => {
			await context.clearCookies({ name: /^wordpress_(logged_in_|sec_)?[0-9a-f]{32}$/ });
			check('the auth cookies are gone', !(await context.cookies(wpUrl)).some((c) => c.name.startsWith('wordpress_logged_in_')));
			check('no logout flag', !(await context.cookies(wpUrl)).some((c) => c.name === flagName));
		};

		// An anonymous visitor: no lead, nothing marked.
		const d0 = await read('anonymous');
		r.d0 = d0;
		const anon = await until(async () => {
			const d = await device(d0);
			return d && d.codes.includes('view/js') && d;
		});
		check('the anonymous page view is on the browser\'s device, with no lead', anon?.lead === null, anon);
		check('nothing marked before anyone is identified', (await mark()) === null, await mark());

		// A logs in: the same device, its anonymous history joins A's lead.
		await logIn(page, a);
		check('A logged in: the same device', (await read('A')) === d0);
		const joined = await until(async () => {
			const l = await lead(emailA);
			return l && l.devices.includes(d0) && l.events.filter((e) => e.code === 'view' && e.device === d0).length >= 2 && l;
		});
		check('A\'s lead owns the device with the anonymous and the logged-in page views', !!joined, await lead(emailA));
		const markA = await mark();
		r.markA = markA;
		check('the browser marks the device with a 128-bit hash of A and the device id',
			new RegExp(`^[0-9a-f]{32} ${d0}$`).test(markA ?? ''), markA);
		check('… and nothing of A', ![a, emailA, 'Early'].some((s) => (markA ?? '').includes(s)), markA);

		// A's session ends without a logout; whoever reads now is anonymous: a new device, not on
		// A's lead, until A logs in again and takes it with its anonymous page view.
		await endSession();
		const dAnon = await read('anonymous');
		r.dAnon = dAnon;
		check('after the session ended: a new device', dAnon !== d0 && /^\d+$/.test(dAnon), { d0, dAnon });
		check('a reload keeps it', (await read('anonymous')) === dAnon);
		const anonAfter = await until(async () => {
			const d = await device(dAnon);
			return d && d.codes.filter((c) => c === 'view/js').length >= 2 && d;
		});
		check('the anonymous page views are on the new device, with no lead', anonAfter?.lead === null, anonAfter);
		const aMeanwhile = (await lead(emailA)) || { devices: [], events: [] };
		check('nothing read after the session ended is on A\'s lead', !aMeanwhile.devices.includes(dAnon) && !aMeanwhile.events.some((e) => e.device === dAnon), aMeanwhile);
		await logIn(page, a);
		check('A again: the device of the anonymous pages', (await read('A')) === dAnon);
		check('A again: the same user in the mark, with that device', (await mark()) === `${markA.split(' ')[0]} ${dAnon}`, { markA, now: await mark() });
		const beforeB = await until(async () => {
			const l = await lead(emailA);
			return l && l.devices.includes(d0) && l.devices.includes(dAnon) &&
				l.events.filter((e) => e.code === 'view' && e.device === d0).length >= 2 &&
				l.events.filter((e) => e.code === 'view' && e.device === dAnon).length >= 3 && l;
		});
		check('A\'s lead has both devices, with the anonymous page views A made before logging in again', !!beforeB, await lead(emailA));

		// A's session ends again, and B logs in on the same browser: a new device, B's alone.
		await endSession();
		await logIn(page, b);
		const d1 = await read('B');
		r.d1 = d1;
		check('B logged in: a new device', d1 !== d0 && d1 !== dAnon && /^\d+$/.test(d1), { d0, dAnon, d1 });
		if (cookieDomain) {
			const c = (await context.cookies(wpUrl)).find((x) => x.name === `${prefix}id`);
			check('the device id cookie holds the new id', c?.value === d1, c);
		}
		const markB = await mark();
		check('the new device is marked with B', new RegExp(`^[0-9a-f]{32} ${d1}$`).test(markB ?? '') && markB.split(' ')[0] !== markA.split(' ')[0], { markA, markB });
		check('a reload keeps B\'s device', (await read('B')) === d1);
		const leadB = await until(async () => {
			const l = await lead(emailB);
			return l && l.devices.includes(d1) && l.events.filter((e) => e.code === 'view' && e.device === d1).length >= 2 && l;
		});
		check('B\'s page views land on the new device on B\'s lead', !!leadB, await lead(emailB));
		check('B\'s lead has nothing of A\'s devices', !!leadB && ![d0, dAnon].some((d) => leadB.devices.includes(d) || leadB.events.some((e) => e.device === d)), leadB);
		check('B\'s server-side user_logged_in is on B\'s lead', !!leadB?.events.some((e) => `${e.code}/${e.source}` === 'user_logged_in/wordpress'), leadB);

		const leadA = (await lead(emailA)) || { devices: [], events: [] };
		const key = (e) => `${e.code}/${e.source}/${e.device}`;
		check('A\'s lead keeps A\'s devices, not B\'s', leadA.devices.includes(d0) && leadA.devices.includes(dAnon) && !leadA.devices.includes(d1), leadA.devices);
		check('A\'s lead keeps every event it had', beforeB && beforeB.events.every((e) => leadA.events.some((x) => key(x) === key(e))), { before: beforeB?.events, after: leadA.events });
		check('nothing of B is on A\'s lead', !leadA.events.some((e) => e.device === d1));
		for (const d of [d0, dAnon]) {
			const old = await device(d);
			check('A\'s devices are still A\'s', old?.lead === emailA, { d, old });
		}
	} catch (err) {
		r.error = String(err && err.stack ? err.stack : err);
	} finally {
		await close();
	}
	r.ok = !r.error && r.checks.every((c) => c.ok);
	return r;
}

const runs = [];
for (const variant of [{ login: 'leaver', cookieDomain: '' }, { login: 'leaver-cookie', cookieDomain: new URL(wpUrl).hostname }]) {
	runs.push(await run(variant));
}
for (const variant of [{ a: 'ann', b: 'bob', cookieDomain: '' }, { a: 'ann-cookie', b: 'bob-cookie', cookieDomain: new URL(wpUrl).hostname }]) {
	runs.push(await runUserChange(variant));
}
const ok = runs.every((r) => r.ok);
console.log(JSON.stringify({ ok, runs }));
process.exit(ok ? 0 : 1);
