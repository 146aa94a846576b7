<?php

/**
 * Installs WordPress into the (fresh) test database the way wp-admin/install.php would, activates
 * the Crumbs plugin, saves its settings and creates the end-to-end fixture post. Prints JSON.
 *
 * Env: the wp-env.php variables plus CRUMBS_URL, CRUMBS_APP_ID, CRUMBS_SECRET.
 */

require __DIR__ . '/wp-env.php';
define('WP_INSTALLING', true);
$_SERVER['HTTP_HOST'] = (string) parse_url(WP_HOME, PHP_URL_HOST);
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_NAME'] = $_SERVER['HTTP_HOST'];

require __DIR__ . '/no-mail.php';
require ABSPATH . 'wp-settings.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

$crumbsInstall = wp_install('Crumbs test site', 'admin', 'admin@example.org', false, '', 'admin-password');
update_option('permalink_structure', '');
switch_theme('twentytwentythree');

$crumbsActivated = activate_plugin('crumbs/crumbs.php', '', false, false);
if (is_wp_error($crumbsActivated)) {
    fwrite(STDERR, 'activate_plugin: ' . $crumbsActivated->get_error_message() . "\n");
    exit(1);
}

update_option('crumbs_settings', [
    'server_url' => (string) getenv('CRUMBS_URL'),
    'app_id' => (string) getenv('CRUMBS_APP_ID'),
    'auto_capture' => true,
    'identify_users' => true,
    'exclude_roles' => ['administrator'],
    'require_consent' => false,
] + \Crumbs\WordPress\Options::defaults());
update_option('crumbs_secret_key', (string) getenv('CRUMBS_SECRET'));

$crumbsContent = <<<'HTML'
<!-- wp:paragraph -->
<p>[crumbs_event code="pdf_download" file="guide.pdf" /]</p>
<!-- /wp:paragraph -->

<!-- wp:paragraph -->
<p>[crumbs_event code="trial_click" on="click" plan="pro"]<a id="shortcode-target" href="#trial">Start your trial</a>[/crumbs_event]</p>
<!-- /wp:paragraph -->

<!-- wp:crumbs/event-trigger {"code":"demo_click","on":"click","properties":"placement=hero"} -->
<!-- wp:paragraph -->
<p><button id="block-target" type="button">Book a demo</button></p>
<!-- /wp:paragraph -->
<!-- /wp:crumbs/event-trigger -->

<!-- wp:html -->
[crumbs_event code="visible_test" on="visible" tag="div"]<p id="visible-target">You scrolled down to here.</p>[/crumbs_event]
<!-- /wp:html -->

<!-- wp:buttons -->
<div class="wp-block-buttons"><!-- wp:button {"crumbsEvent":"pricing_click","crumbsOn":"click"} -->
<div class="wp-block-button"><a class="wp-block-button__link wp-element-button" href="#pricing">See pricing</a></div>
<!-- /wp:button --></div>
<!-- /wp:buttons -->
HTML;

$crumbsPost = wp_insert_post([
    'post_title' => 'Crumbs e2e',
    'post_content' => $crumbsContent,
    'post_status' => 'publish',
    'post_type' => 'post',
    'post_author' => $crumbsInstall['user_id'],
], true);
if (is_wp_error($crumbsPost)) {
    fwrite(STDERR, 'wp_insert_post: ' . $crumbsPost->get_error_message() . "\n");
    exit(1);
}

$crumbsReader = wp_insert_user([
    'user_login' => 'reader',
    'user_email' => 'reader@example.org',
    'user_pass' => 'reader-password',
    'display_name' => 'Rita Reader',
    'role' => 'subscriber',
]);
if (is_wp_error($crumbsReader)) {
    fwrite(STDERR, 'wp_insert_user: ' . $crumbsReader->get_error_message() . "\n");
    exit(1);
}
// Users who log in and out in logout.mjs, one per way the library keeps the device id, and the two
// who take turns on one browser without logging out.
$crumbsUsers = [
    'leaver' => 'Lou Leaver', 'leaver-cookie' => 'Coco Leaver',
    'ann' => 'Ann Early', 'bob' => 'Bob Later', 'ann-cookie' => 'Ann Early', 'bob-cookie' => 'Bob Later',
];
foreach ($crumbsUsers as $crumbsLogin => $crumbsName) {
    $crumbsUser = wp_insert_user([
        'user_login' => $crumbsLogin,
        'user_email' => $crumbsLogin . '@example.org',
        'user_pass' => $crumbsLogin . '-password',
        'display_name' => $crumbsName,
        'role' => 'subscriber',
    ]);
    if (is_wp_error($crumbsUser)) {
        fwrite(STDERR, 'wp_insert_user: ' . $crumbsUser->get_error_message() . "\n");
        exit(1);
    }
}
// The fixture users' registrations are not part of what the e2e tests check.
$wpdb->query('DELETE FROM ' . \Crumbs\WordPress\Queue::table());

echo wp_json_encode([
    'postId' => $crumbsPost,
    'postUrl' => get_permalink($crumbsPost),
    'active' => is_plugin_active('crumbs/crumbs.php'),
]) . "\n";
