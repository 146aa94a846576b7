<?php

/**
 * php docroot.php DIR — makes DIR a web root for router.php: a symlink to every entry of Debian's
 * /usr/share/wordpress except wp-config.php and wp-content, and a wp-config.php that loads
 * wp-env.php. Run the web server with CRUMBS_WP_ABSPATH=DIR.
 */

$crumbsDir = rtrim((string) ($argv[1] ?? ''), '/');
$crumbsSource = '/usr/share/wordpress';
if ($crumbsDir === '' || (!is_dir($crumbsDir) && !mkdir($crumbsDir, 0755, true))) {
    fwrite(STDERR, "usage: php docroot.php DIR\n");
    exit(2);
}
foreach (scandir($crumbsSource) ?: [] as $crumbsEntry) {
    if (in_array($crumbsEntry, ['.', '..', 'wp-config.php', 'wp-content'], true)) {
        continue;
    }
    $crumbsLink = $crumbsDir . '/' . $crumbsEntry;
    if (!file_exists($crumbsLink)) {
        symlink($crumbsSource . '/' . $crumbsEntry, $crumbsLink);
    }
}
file_put_contents($crumbsDir . '/wp-config.php', "<?php\n\nrequire_once " . var_export(__DIR__ . '/wp-env.php', true)
    . ";\nrequire_once ABSPATH . 'wp-settings.php';\n");
echo "ok\n";
