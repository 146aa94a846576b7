<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Options;
use Crumbs\WordPress\Queue;

/**
 * Runs last and alone (phpunit --group uninstall): it deletes the plugin's data for good.
 *
 * @group uninstall
 */
final class UninstallTest extends \PHPUnit\Framework\TestCase
{
    public function testUninstallRemovesOptionsTransientsQueueAndCron(): void
    {
        global $wpdb;
        update_option(Options::SECRET, 'sk_to_be_removed');
        update_option(Options::LIBRARY, ['server_url' => 'https://x.example', 'url' => 'https://x.example/crumbs.abc123.js']);
        $this->assertNotSame('', Options::siteId());
        $this->assertNotSame([], Options::homeUrls());
        update_option(\Crumbs\WordPress\Delivery::OPTION, ['problem' => ['code' => 'NETWORK', 'message' => 'down', 'at' => time()], 'dropped' => null], false);
        wp_schedule_single_event(time() + 600, Queue::CRON_HOOK);
        // What the privacy exporter and eraser keep between pages.
        set_transient('crumbs_export_' . md5('someone@example.org|2'), ['source' => 0, 'after' => 'c'], HOUR_IN_SECONDS);
        set_transient('crumbs_erase_' . wp_hash('someone@example.org'), ['removed' => false, 'erasures' => []], HOUR_IN_SECONDS);
        update_option('crumbs_erase_' . wp_hash('someone@example.org'), ['expires' => time() + 60, 'removed' => false, 'erasures' => []], false);
        set_transient('crumbsother', 'not ours', HOUR_IN_SECONDS);
        update_option(\Crumbs\WordPress\Privacy::DELETED_USER . wp_hash('gone@example.org'), [42], false);
        $this->assertSame(Queue::table(), $wpdb->get_var($wpdb->prepare('SHOW TABLES LIKE %s', Queue::table())));

        uninstall_plugin('crumbs/crumbs.php');

        $this->assertFalse(get_option(Options::SETTINGS));
        $this->assertFalse(get_option(Options::SECRET));
        $this->assertFalse(get_option(Queue::DB_VERSION_OPTION));
        $this->assertFalse(get_option(Options::SITE_ID));
        $this->assertFalse(get_option(Options::LIBRARY));
        $this->assertFalse(wp_next_scheduled(Queue::CRON_HOOK));
        $this->assertNull($wpdb->get_var($wpdb->prepare('SHOW TABLES LIKE %s', Queue::table())));
        $this->assertSame([], $wpdb->get_col("SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE '%crumbs\\_%'"));
        $this->assertSame('not ours', get_transient('crumbsother'));
        delete_transient('crumbsother');
    }
}
