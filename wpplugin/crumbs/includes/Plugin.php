<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Wires the plugin's parts to WordPress. Admin-only classes load only under is_admin().
 */
final class Plugin
{
    public function hook(): void
    {
        add_action('init', [$this, 'loadTextdomain']);
        add_action('plugins_loaded', [Queue::class, 'maybeUpgrade']);

        (new Shortcode())->hook();
        (new Blocks())->hook();
        (new Frontend())->hook();
        (new Rest())->hook();
        (new ServerEvents())->hook();
        (new NewDevice())->hook();
        (new Privacy())->hook();
        (new Queue())->hook();
        (new Delivery())->hook();

        if (is_admin()) {
            (new Admin\Settings())->hook();
            (new SiteAddress())->hook();
        }
    }

    public function loadTextdomain(): void
    {
        load_plugin_textdomain('crumbs', false, dirname(plugin_basename(PLUGIN_FILE)) . '/languages');
    }

    /**
     * Creates the delivery queue table and default options.
     */
    public static function activate(): void
    {
        Queue::install();
        add_option(Options::SETTINGS, Options::defaults());
        // The secret key is needed only by server-side calls: keep it out of the autoloaded options.
        add_option(Options::SECRET, '', '', false);
    }

    public static function deactivate(): void
    {
        wp_clear_scheduled_hook(Queue::CRON_HOOK);
    }
}
