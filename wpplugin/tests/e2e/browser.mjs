// What the end-to-end scripts share: Debian's headless Chromium with a profile of its own, the
// loopback-only rule for its traffic, and the one JSON line each script prints.
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// Launches Chromium (CHROMIUM, default /usr/bin/chromium) with a fresh profile named for the
// script; close() ends it and removes the profile. options go to launchPersistentContext.
export async function launchBrowser(name, options = {}) {
	const userDataDir = mkdtempSync(join(tmpdir(), `crumbs-wp-${name}-`));
	const context = await chromium.launchPersistentContext(userDataDir, {
		executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
		headless: true,
		args: [
			'--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync',
		],
		...options,
	});
	const close = async () => {
		await context.close();
		rmSync(userDataDir, { recursive: true, force: true });
	};
	return { context, close };
}

// Whether url is on loopback: the only traffic that may leave the browser.
export function loopback(url) {
	const host = new URL(url).hostname;
	return host === '127.0.0.1' || host === 'localhost';
}

// Runs body, then close(), and prints result as the script's JSON line (with the error, if body
// threw); exits non-zero unless result.ok.
export async function report(result, close, body) {
	try {
		await body();
	} catch (err) {
		result.error = String(err && err.stack ? err.stack : err);
	} finally {
		await close();
	}
	console.log(JSON.stringify(result));
	process.exit(result.ok ? 0 : 1);
}
