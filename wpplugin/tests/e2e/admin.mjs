// End-to-end in wp-admin, as a site owner: the settings page (Test connection, saving with the
// Settings API's nonce) and the block editor (the "Crumbs event trigger" block and the
// "Crumbs event" panel on a core Button, with the event list fetched through the plugin's REST
// route), then the saved post rendered with the chosen trigger.
//
// Env: WP_URL, WP_POST_ID, CRUMBS_SECRET, CHROMIUM. Prints one JSON line; exits non-zero on failure.
import { launchBrowser, loopback, report } from './browser.mjs';
import { submitLogin } from './wplogin.mjs';

const wpUrl = process.env.WP_URL;
const postId = process.env.WP_POST_ID;
const secret = process.env.CRUMBS_SECRET;
if (!wpUrl || !postId || !secret) {
	console.error('missing env WP_URL, WP_POST_ID or CRUMBS_SECRET');
	process.exit(2);
}

const checks = [];
function check(name, ok, detail) {
	checks.push({ name, ok: !!ok, ...(ok ? {} : { detail }) });
}

const { context, close } = await launchBrowser('admin', { viewport: { width: 1400, height: 1000 } });
const result = { ok: false, checks, consoleErrors: [] };
await report(result, close, async () => {
	const page = context.pages()[0] || (await context.newPage());
	page.setDefaultTimeout(30000);
	await page.route('**/*', (route) => (loopback(route.request().url()) ? route.continue() : route.abort()));
	page.on('console', (msg) => {
		if (msg.type() === 'error') result.consoleErrors.push(msg.text());
	});
	page.on('pageerror', (err) => result.consoleErrors.push(String(err)));

	// Log in.
	await page.goto(`${wpUrl}/wp-login.php`);
	await submitLogin(page, 'admin', 'admin-password', /wp-admin/);

	// Settings page.
	const settingsUrl = `${wpUrl}/wp-admin/options-general.php?page=crumbs`;
	await page.goto(settingsUrl);
	check('settings page never contains the secret key', !(await page.content()).includes(secret));
	const testConnection = async () => {
		await page.click('#crumbs-test-connection');
		await page.waitForFunction(() => {
			const t = document.getElementById('crumbs-test-result').textContent;
			return t && !t.startsWith('Checking');
		});
		return page.textContent('#crumbs-test-result');
	};
	let msg = await testConnection();
	check('Test connection with the saved key', msg.includes('Connected to app "crumbs-wp-test"') && msg.includes('valid'), msg);
	const library = await page.textContent('#crumbs-library-url');
	check('Test connection shows the immutable library URL', /\/crumbs\.[0-9a-f]{12}\.js$/.test(library), library);
	// Another server URL typed into the form: the saved key is not sent there (RestTest checks the
	// requests WordPress makes), the page asks for the key instead.
	const savedUrl = await page.inputValue('#crumbs_server_url');
	await page.fill('#crumbs_server_url', 'http://127.0.0.1:9');
	msg = await testConnection();
	check('Test connection with a typed URL asks for the key again', msg.includes('enter the secret key again'), msg);
	check('the typed key field has the focus', await page.evaluate(() => document.activeElement?.id === 'crumbs_secret_key'));
	await page.fill('#crumbs_server_url', savedUrl);
	await page.fill('#crumbs_secret_key', 'sk_not_the_right_key');
	msg = await testConnection();
	check('Test connection with a typed wrong key', /secret key is wrong|did not accept this app id and secret key/.test(msg), msg);
	await page.fill('#crumbs_secret_key', '');

	await page.uncheck('#crumbs_auto_capture');
	await Promise.all([page.waitForURL(/settings-updated=true/), page.click('#submit')]);
	check('saving through options.php keeps the page and unchecks auto-capture',
		!(await page.isChecked('#crumbs_auto_capture')), await page.url());
	msg = await testConnection();
	check('the saved secret survives saving the form with an empty key field', msg.includes('valid'), msg);
	await page.check('#crumbs_auto_capture');
	await Promise.all([page.waitForURL(/settings-updated=true/), page.click('#submit')]);

	// Block editor.
	await page.goto(`${wpUrl}/wp-admin/post.php?post=${postId}&action=edit`);
	await page.waitForFunction(() => window.wp?.data?.select('core/block-editor')?.getBlocks().length > 0);
	await page.evaluate(() => {
		const { dispatch, select } = window.wp.data;
		try {
			if (select('core/edit-post').isFeatureActive('welcomeGuide')) dispatch('core/edit-post').toggleFeature('welcomeGuide');
		} catch {}
	});
	await page.keyboard.press('Escape');
	const blockState = await page.evaluate(() => {
		const all = [];
		const walk = (blocks) => blocks.forEach((b) => { all.push(b); walk(b.innerBlocks); });
		walk(window.wp.data.select('core/block-editor').getBlocks());
		return {
			title: window.wp.blocks.getBlockType('crumbs/event-trigger')?.title,
			invalid: all.filter((b) => !b.isValid).map((b) => b.name),
			button: all.find((b) => b.name === 'core/button')?.clientId,
			trigger: all.find((b) => b.name === 'crumbs/event-trigger')?.clientId,
		};
	});
	check('the block type is registered in the editor', blockState.title === 'Crumbs event trigger', blockState.title);
	check('every block of the post is valid', blockState.invalid.length === 0, blockState.invalid);

	const panelSelect = async (clientId) => {
		await page.evaluate((id) => {
			window.wp.data.dispatch('core/block-editor').selectBlock(id);
			window.wp.data.dispatch('core/edit-post').openGeneralSidebar('edit-post/block');
		}, clientId);
		const panel = page.locator('.components-panel__body', { hasText: 'Crumbs event' }).last();
		const select = panel.locator('select').first();
		await select.locator('option[value="pricing_click"]').waitFor({ state: 'attached' });
		return { panel, select };
	};

	let { panel, select } = await panelSelect(blockState.button);
	const options = await select.locator('option').evaluateAll((os) => os.map((o) => o.value));
	check('the Button panel lists the enabled definitions from Crumbs',
		['view', 'click', 'submit', 'pdf_download', 'trial_click'].every((c) => options.includes(c)) && !options.includes('disabled_code'), options);
	check('the Button panel shows the saved event', (await select.inputValue()) === 'pricing_click', await select.inputValue());
	await select.selectOption('trial_click');
	await panel.locator('select').nth(1).selectOption('visible');
	const buttonAttrs = await page.evaluate((id) => window.wp.data.select('core/block-editor').getBlockAttributes(id), blockState.button);
	check('choosing in the panel sets the Button attributes',
		buttonAttrs.crumbsEvent === 'trial_click' && buttonAttrs.crumbsOn === 'visible', buttonAttrs);

	({ panel, select } = await panelSelect(blockState.trigger));
	check('the trigger block sidebar shows its event', (await select.inputValue()) === 'demo_click', await select.inputValue());

	await page.evaluate(() => {
		const block = window.wp.blocks.createBlock('crumbs/event-trigger', { code: 'pdf_download', on: 'view', properties: 'from=editor' },
			[window.wp.blocks.createBlock('core/paragraph', { content: 'Inserted in the editor' })]);
		window.wp.data.dispatch('core/block-editor').insertBlocks(block);
		window.wp.data.dispatch('core/editor').savePost();
	});
	await page.waitForFunction(() => {
		const s = window.wp.data.select('core/editor');
		return !s.isSavingPost() && !s.isEditedPostDirty();
	});

	const html = await (await context.request.get(`${wpUrl}/?p=${postId}`)).text();
	check('the saved Button renders its new trigger',
		/<div data-crumbs-event="trial_click" data-crumbs-on="visible" data-crumbs-source="block"[^>]*class="wp-block-button/.test(html));
	check('the inserted trigger block renders around its inner block',
		/data-crumbs-event="pdf_download" data-crumbs-on="view" data-crumbs-source="block" data-crumbs-prop-from="editor"[^>]*>\s*<p>Inserted in the editor<\/p>/.test(html));

	result.ok = checks.every((c) => c.ok);
});
