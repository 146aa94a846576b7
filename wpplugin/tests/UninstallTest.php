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
    public function testUninstallRemovesOptionsQueueAndCron(): void
    {
        global $wpdb;
        update_option(Options::SECRET, 'sk_to_be_removed');
        update_option(Options::LIBRARY, ['server_url' => 'https://x.example', 'url' => 'https://x.example/crumbs.abc123.js']);
        $this->assertNotSame('', Options::siteId());
        wp_schedule_single_event(time() + 600, Queue::CRON_HOOK);
        $this->assertSame(Queue::table(), $wpdb->get_var($wpdb->prepare('SHOW TABLES LIKE %s', Queue::table())));

        uninstall_plugin('crumbs/crumbs.php');

        $this->assertFalse(get_option(Options::SETTINGS));
        $this->assertFalse(get_option(Options::SECRET));
        $this->assertFalse(get_option(Queue::DB_VERSION_OPTION));
        $this->assertFalse(get_option(Options::SITE_ID));
        $this->assertFalse(get_option(Options::LIBRARY));
        $this->assertFalse(wp_next_scheduled(Queue::CRON_HOOK));
        $this->assertNull($wpdb->get_var($wpdb->prepare('SHOW TABLES LIKE %s', Queue::table())));
    }
}
