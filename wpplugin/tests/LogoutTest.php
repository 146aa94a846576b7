<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Frontend;
use Crumbs\WordPress\Logout;
use Crumbs\WordPress\Options;
use Crumbs\WordPress\Queue;
use Crumbs\WordPress\ServerEvents;

/**
 * A logout starts a new browser device (the browser side is tests/e2e/logout.mjs).
 */
final class LogoutTest extends TestCase
{
    public function testLogoutLeavesALongLivedFlagThePageCanReadAndRemove(): void
    {
        $this->assertTrue($this->loggedOutIsHooked(), 'wp_logout leaves the flag');
        $cookie = Logout::flagCookie('abc123');
        $this->assertSame(Logout::COOKIE, $cookie['name']);
        $this->assertSame('abc123', $cookie['value']);
        $options = $cookie['options'];
        $this->assertSame(COOKIEPATH, $options['path'], 'every front-end page sees it');
        $this->assertSame('', $options['domain'], 'COOKIE_DOMAIN is not set here: a host-only cookie');
        $this->assertFalse($options['httponly'], 'the page\'s script reads and removes it');
        $this->assertFalse($options['secure'], 'the test site is http');
        $this->assertSame('Lax', $options['samesite']);
        $this->assertGreaterThan(time() + 300 * DAY_IN_SECONDS, $options['expires'], 'the next person may come days later');
    }

    private function loggedOutIsHooked(): bool
    {
        global $wp_filter;
        foreach ($wp_filter['wp_logout']->callbacks ?? [] as $callbacks) {
            foreach ($callbacks as $callback) {
                if (is_array($callback['function']) && $callback['function'][0] instanceof Logout && $callback['function'][1] === 'loggedOut') {
                    return true;
                }
            }
        }
        return false;
    }

    public function testTheScriptRunsBeforeTheLibraryAndNamesTheAppsDeviceId(): void
    {
        $this->setSettings(['server_url' => 'https://crumbs.example.com', 'app_id' => 'app_front', 'identify_users' => true, 'exclude_roles' => ['administrator']]);
        $author = $this->makeUser('author', 'author');
        wp_set_current_user($author->ID);
        ob_start();
        (new Frontend())->printLibrary();
        $html = (string) ob_get_clean();
        $reset = strpos($html, 'id="crumbs-new-device"');
        $this->assertIsInt($reset);
        $this->assertLessThan(strpos($html, 'crumbs("identify"'), $reset, 'a new device first, then identify whoever is logged in now');
        $this->assertLessThan(strpos($html, 'id="crumbs-js"'), $reset);
        $this->assertStringContainsString('"key":"crumbs_app_front_id"', $html, 'the library\'s localStorage key and cookie name for the id');
        $this->assertStringContainsString('"remove":"crumbs_new_device=;path=' . COOKIEPATH . ';max-age=0"', $html, 'removed with the path it was set with');
        $this->assertStringContainsString('"domain":""', $html, 'no device id cookie without data-cookie-domain');

        // The same script for everyone, so that a full-page cache may keep it.
        wp_set_current_user(0);
        ob_start();
        (new Frontend())->printLibrary();
        $anonymous = (string) ob_get_clean();
        $this->assertSame(Logout::script(Frontend::scriptAttributes()), $this->inline($anonymous, 'crumbs-new-device'));
        $this->assertSame($this->inline($html, 'crumbs-new-device'), $this->inline($anonymous, 'crumbs-new-device'));
    }

    public function testTheScriptFollowsTheFilteredAttributesSafely(): void
    {
        $this->setSettings(['server_url' => 'https://crumbs.example.com', 'app_id' => 'app_front']);
        $filter = static function (array $attrs): array {
            $attrs['data-app-id'] = 'other</script><script>alert(1)</script>';
            $attrs['data-cookie-domain'] = '.example.com';
            return $attrs;
        };
        add_filter('crumbs_script_attributes', $filter);
        try {
            ob_start();
            (new Frontend())->printLibrary();
            $html = (string) ob_get_clean();
        } finally {
            remove_filter('crumbs_script_attributes', $filter);
        }
        $this->assertStringContainsString('"domain":".example.com"', $html, 'the id cookie is replaced on its domain');
        $this->assertStringContainsString('"key":"crumbs_other\u003C/script\u003E', $html, 'the app id the library is given');
        $this->assertSame(2, substr_count($html, '</script>'), 'only the two tags close a script');
    }

    public function testLoggingOutKeepsTheUsersQueuedServerSideEvents(): void
    {
        $this->requireCrumbs();
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => true, 'exclude_roles' => ['administrator']]);
        update_option(Options::SECRET, CrumbsServer::secret());
        $user = $this->makeUser('subscriber', 'leaving');
        $wpdb->query('DELETE FROM ' . Queue::table());

        do_action('wp_login', $user->user_login, $user);
        $queued = Queue::pending();
        $this->assertSame(['identify', 'trigger'], array_column($queued, 'kind'));
        do_action('wp_logout', $user->ID);
        $this->assertSame($queued, Queue::pending(), 'the logout leaves the queue as it was');

        Queue::flush();
        $device = ServerEvents::userDeviceId($user->ID);
        $this->assertSame(['user_logged_in'], array_column(CrumbsServer::deviceEvents($device), 'code'));
        $lead = CrumbsServer::lead($user->user_email);
        $this->assertNotNull($lead);
        $this->assertSame([$device], array_column($lead['devices'], 'id'), 'the user\'s own device, which no browser shares');
        $this->assertSame(['user_logged_in'], array_column(array_column($lead['timeline']['edges'], 'node'), 'code'));
    }

    private function inline(string $html, string $id): string
    {
        $this->assertSame(1, preg_match('#<script id="' . preg_quote($id, '#') . '"[^>]*>\s*(.*?)\s*</script>#s', $html, $m), $html);
        return $m[1];
    }
}
