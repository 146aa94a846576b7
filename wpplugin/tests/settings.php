<?php

/**
 * php settings.php key=value ... — changes the test site's Crumbs settings (values "1"/"0" for switches).
 */

require __DIR__ . '/wp-env.php';
$_SERVER['HTTP_HOST'] = (string) parse_url(WP_HOME, PHP_URL_HOST);
require __DIR__ . '/no-mail.php';
require ABSPATH . 'wp-settings.php';

$crumbsSettings = \Crumbs\WordPress\Options::all();
foreach (array_slice($argv, 1) as $crumbsPair) {
    [$crumbsKey, $crumbsValue] = array_pad(explode('=', $crumbsPair, 2), 2, '');
    if (!array_key_exists($crumbsKey, $crumbsSettings)) {
        fwrite(STDERR, "unknown setting {$crumbsKey}\n");
        exit(2);
    }
    $crumbsSettings[$crumbsKey] = is_bool($crumbsSettings[$crumbsKey]) ? $crumbsValue === '1' : $crumbsValue;
}
update_option(\Crumbs\WordPress\Options::SETTINGS, $crumbsSettings);
echo wp_json_encode(\Crumbs\WordPress\Options::all()) . "\n";
