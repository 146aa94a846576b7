<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Options;
use Crumbs\WordPress\Queue;

final class PrivacyTest extends TestCase
{
    public function testExporterAndEraserAreRegistered(): void
    {
        $exporters = apply_filters('wp_privacy_personal_data_exporters', []);
        $erasers = apply_filters('wp_privacy_personal_data_erasers', []);
        $this->assertIsCallable($exporters['crumbs']['callback']);
        $this->assertIsCallable($erasers['crumbs']['callback']);
    }

    public function testExportThenEraseThroughCrumbs(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => true, 'exclude_roles' => []]);
        update_option(Options::SECRET, CrumbsServer::secret());
        $user = $this->makeUser('subscriber', 'privacy');
        do_action('wp_login', $user->user_login, $user);
        Queue::flush();

        $exporters = apply_filters('wp_privacy_personal_data_exporters', []);
        $export = call_user_func($exporters['crumbs']['callback'], $user->user_email, 1);
        $this->assertTrue($export['done']);
        $values = [];
        foreach ($export['data'] as $item) {
            $this->assertSame('crumbs', $item['group_id']);
            foreach ($item['data'] as $pair) {
                $values[] = $pair['value'];
            }
        }
        $this->assertContains($user->user_email, $values);
        $this->assertContains('user_registered', $values);
        $this->assertContains('user_logged_in', $values);
        $this->assertCount(3, $export['data'], 'the lead and its two events');

        $erasers = apply_filters('wp_privacy_personal_data_erasers', []);
        $erased = call_user_func($erasers['crumbs']['callback'], $user->user_email, 1);
        $this->assertTrue($erased['items_removed']);
        $this->assertFalse($erased['items_retained']);
        $this->assertTrue($erased['done']);
        $this->assertStringContainsString('2 events', $erased['messages'][0]);
        $this->assertNull(CrumbsServer::lead($user->user_email));

        $again = call_user_func($exporters['crumbs']['callback'], $user->user_email, 1);
        $this->assertSame([], $again['data']);
    }

    public function testEraseReportsAnUnreachableServer(): void
    {
        $this->setSettings(['server_url' => 'http://127.0.0.1:9', 'app_id' => 'app_x']);
        $result = \Crumbs\WordPress\Privacy::erase('someone@example.org');
        $this->assertTrue($result['items_retained']);
        $this->assertStringContainsString('could not erase', $result['messages'][0]);
        $this->assertInstanceOf(\WP_Error::class, \Crumbs\WordPress\Privacy::export('someone@example.org'));
    }
}
