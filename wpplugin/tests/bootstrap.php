<?php

/**
 * PHPUnit bootstrap: loads the real WordPress installed by install.php (Debian's
 * /usr/share/wordpress, a MariaDB test database) with the Crumbs plugin active.
 */

require __DIR__ . '/wp-env.php';
$_SERVER['HTTP_HOST'] = (string) parse_url(WP_HOME, PHP_URL_HOST);
$_SERVER['SERVER_NAME'] = $_SERVER['HTTP_HOST'];
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['REQUEST_METHOD'] = 'GET';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';

require __DIR__ . '/no-mail.php';
require ABSPATH . 'wp-settings.php';
// WordPress 6.1 predates PHP 8.2 and raises deprecations of its own; our code is checked by phpcs and php -l.
error_reporting(E_ALL & ~E_DEPRECATED & ~E_USER_DEPRECATED);
$_SERVER['REMOTE_ADDR'] = '127.0.0.1';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
require_once ABSPATH . 'wp-admin/includes/template.php';
require_once ABSPATH . 'wp-admin/includes/misc.php';
require_once __DIR__ . '/CrumbsServer.php';
require_once __DIR__ . '/TestCase.php';

if (!is_plugin_active('crumbs/crumbs.php') || !class_exists(\Crumbs\WordPress\Plugin::class)) {
    fwrite(STDERR, "The Crumbs plugin is not active: run tests/install.php first\n");
    exit(1);
}
