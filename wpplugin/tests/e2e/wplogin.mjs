// Logs in through wp-login.php (already open in page) and waits for the redirect away from it.
//
// wp-login.php focuses and selects #user_login 200 ms after it loads (wp_attempt_focus). A fill
// under way at that moment can type the password into #user_login, and the login fails: the
// likely cause of a CI failure in which the logout script's login stayed on wp-login.php. So the
// form is filled only once the page has taken the focus, and checked before it is sent.
export async function submitLogin(page, login, password, redirected = (u) => !u.pathname.endsWith('wp-login.php')) {
	await page.waitForFunction(() => document.activeElement?.id === 'user_login');
	await page.fill('#user_login', login);
	await page.fill('#user_pass', password);
	const filled = await page.evaluate(() => [document.getElementById('user_login').value, document.getElementById('user_pass').value]);
	if (filled[0] !== login || filled[1] !== password) {
		throw new Error(`the login form holds ${JSON.stringify(filled[0])} and a password of ${filled[1].length} characters`);
	}
	await Promise.all([page.waitForURL(redirected), page.click('#wp-submit')]);
}
