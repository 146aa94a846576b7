<?php

/**
 * Must-use plugin for the end-to-end site only: Playwright sets navigator.webdriver, and the
 * library sends nothing from automated browsers unless data-allow-automation is set. A browser
 * with the cookie crumbs_e2e_cookie_domain gets data-cookie-domain with its value (logout.mjs).
 */

add_filter('crumbs_script_attributes', static function (array $attrs): array {
    $attrs['data-allow-automation'] = 'true';
    $domain = $_COOKIE['crumbs_e2e_cookie_domain'] ?? '';
    if (is_string($domain) && preg_match('/^[a-z0-9.\-]+$/', $domain)) {
        $attrs['data-cookie-domain'] = $domain;
    }
    return $attrs;
});
