<?php

/**
 * Test-only WordPress configuration, read from the environment. It replaces wp-config.php so the
 * suites can run Debian's /usr/share/wordpress against a throw-away database and content dir.
 *
 * CRUMBS_WP_DB_HOST (127.0.0.1:3306), CRUMBS_WP_DB_NAME (crumbs_wp_test), CRUMBS_WP_DB_USER (root),
 * CRUMBS_WP_DB_PASSWORD (''), CRUMBS_WP_CONTENT_DIR (required), CRUMBS_WP_URL (http://127.0.0.1).
 */

$crumbsEnv = static function (string $name, string $default = ''): string {
    $value = getenv($name);
    return $value === false || $value === '' ? $default : $value;
};

define('ABSPATH', rtrim($crumbsEnv('CRUMBS_WP_ABSPATH', '/usr/share/wordpress'), '/') . '/');
define('DB_NAME', $crumbsEnv('CRUMBS_WP_DB_NAME', 'crumbs_wp_test'));
define('DB_USER', $crumbsEnv('CRUMBS_WP_DB_USER', 'root'));
define('DB_PASSWORD', $crumbsEnv('CRUMBS_WP_DB_PASSWORD'));
define('DB_HOST', $crumbsEnv('CRUMBS_WP_DB_HOST', '127.0.0.1:3306'));
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
define('WP_CONTENT_DIR', $crumbsEnv('CRUMBS_WP_CONTENT_DIR'));
define('WP_HOME', $crumbsEnv('CRUMBS_WP_URL', 'http://127.0.0.1'));
define('WP_SITEURL', WP_HOME);
define('WP_CONTENT_URL', WP_HOME . '/wp-content');
define('WP_DEBUG', true);
define('WP_DEBUG_DISPLAY', PHP_SAPI === 'cli');
define('WP_DEBUG_LOG', WP_CONTENT_DIR . '/debug.log');
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
// Only loopback traffic: WordPress may reach its own host (127.0.0.1) and nothing else.
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('WP_ACCESSIBLE_HOSTS', '127.0.0.1,localhost');
define('FS_METHOD', 'direct');
// wp-admin/load-scripts.php would redefine ABSPATH; serve scripts one by one instead.
define('CONCATENATE_SCRIPTS', false);
foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY', 'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as $crumbsKey) {
    define($crumbsKey, 'crumbs-test-' . $crumbsKey);
}
$table_prefix = 'wp_';

if (WP_CONTENT_DIR === '' || !is_dir(WP_CONTENT_DIR)) {
    fwrite(STDERR, "CRUMBS_WP_CONTENT_DIR must name an existing directory\n");
    exit(2);
}
