<?php

/**
 * Router for `php -S 127.0.0.1:PORT -t DOCROOT router.php`, serving the test site: front end,
 * wp-admin, wp-login.php and the REST API. DOCROOT (= CRUMBS_WP_ABSPATH) mirrors Debian's
 * /usr/share/wordpress with symlinks, plus a wp-config.php that loads wp-env.php, because Debian's
 * own wp-config.php reads /etc/wordpress, which the tests must not touch. wp-content is
 * CRUMBS_WP_CONTENT_DIR.
 */

require __DIR__ . '/wp-env.php';

$crumbsPath = rawurldecode((string) parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH));
if (str_contains($crumbsPath, '..')) {
    http_response_code(400);
    return true;
}

if (str_starts_with($crumbsPath, '/wp-content/')) {
    $crumbsFile = realpath(WP_CONTENT_DIR . substr($crumbsPath, strlen('/wp-content')));
    if ($crumbsFile === false || !is_file($crumbsFile) || str_ends_with($crumbsFile, '.php')) {
        http_response_code(404);
        return true;
    }
    $crumbsTypes = ['css' => 'text/css', 'js' => 'text/javascript', 'json' => 'application/json', 'svg' => 'image/svg+xml',
        'png' => 'image/png', 'jpg' => 'image/jpeg', 'woff2' => 'font/woff2', 'woff' => 'font/woff'];
    $crumbsExt = strtolower(pathinfo($crumbsFile, PATHINFO_EXTENSION));
    header('Content-Type: ' . ($crumbsTypes[$crumbsExt] ?? 'application/octet-stream'));
    readfile($crumbsFile);
    return true;
}

$crumbsFile = ABSPATH . ltrim($crumbsPath, '/');
if (is_dir($crumbsFile)) {
    $crumbsFile = rtrim($crumbsFile, '/') . '/index.php';
}
if (is_file($crumbsFile) && !str_ends_with($crumbsFile, '.php')) {
    return false;
}
if (!is_file($crumbsFile)) {
    $crumbsFile = ABSPATH . 'index.php';
}

$_SERVER['SCRIPT_FILENAME'] = $crumbsFile;
$_SERVER['SCRIPT_NAME'] = '/' . substr($crumbsFile, strlen(ABSPATH));
$_SERVER['PHP_SELF'] = $_SERVER['SCRIPT_NAME'];
chdir(dirname($crumbsFile));
require __DIR__ . '/no-mail.php';
require $crumbsFile;
