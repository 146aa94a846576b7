<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Frontend;
use Crumbs\WordPress\NewDevice;
use Crumbs\WordPress\Options;
use Crumbs\WordPress\Queue;
use Crumbs\WordPress\ServerEvents;

/**
 * A logout, or another user identified on the browser, starts a new browser device (the browser side
 * is tests/e2e/logout.mjs).
 */
final class NewDeviceTest extends TestCase
{
    public function testLogoutLeavesALongLivedFlagThePageCanReadAndRemove(): void
    {
        $this->assertTrue($this->loggedOutIsHooked(), 'wp_logout leaves the flag');
        $cookie = NewDevice::flagCookie('abc123');
        $this->assertSame(NewDevice::COOKIE, $cookie['name']);
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
                if (is_array($callback['function']) && $callback['function'][0] instanceof NewDevice && $callback['function'][1] === 'loggedOut') {
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
        $this->assertStringContainsString('"mark":"crumbs_app_front_wp_user"', $html, 'in the library\'s keys of the app, which it forgets on withdrawn consent');
        $this->assertStringContainsString('"user":"' . NewDevice::userHash($author->ID) . '"', $html, 'the user this page identifies');

        // Anonymous pages: the same script for everyone, so that a full-page cache may keep it.
        wp_set_current_user(0);
        ob_start();
        (new Frontend())->printLibrary();
        $anonymous = (string) ob_get_clean();
        $this->assertSame(NewDevice::script(Frontend::scriptAttributes()), $this->inline($anonymous, 'crumbs-new-device'));
        $this->assertStringContainsString('"user":""', $anonymous, 'nobody to compare with the device\'s last user');
        $this->assertStringNotContainsString('crumbs("identify"', $anonymous);
        $this->assertSame(
            $this->inline($anonymous, 'crumbs-new-device'),
            str_replace(NewDevice::userHash($author->ID), '', $this->inline($html, 'crumbs-new-device')),
            'a logged-in page differs only in the user it identifies anyway'
        );

        // A logged-in user the plugin does not identify gets the anonymous script: the device is
        // compared only where an identify could move it.
        $this->setSettings(['identify_users' => false]);
        wp_set_current_user($author->ID);
        ob_start();
        (new Frontend())->printLibrary();
        $unidentified = (string) ob_get_clean();
        $this->assertSame($this->inline($anonymous, 'crumbs-new-device'), $this->inline($unidentified, 'crumbs-new-device'));
    }

    public function testTheBrowserKeepsAKeyedHashOfTheUserAndNothingElseOfThem(): void
    {
        global $wpdb;
        $this->setSettings(['server_url' => 'https://crumbs.example.com', 'app_id' => 'app_front', 'identify_users' => true, 'exclude_roles' => ['administrator']]);
        $ann = $this->makeUser('subscriber', 'ann');
        $bob = $this->makeUser('subscriber', 'bob');
        $wpdb->update($wpdb->users, ['display_name' => 'Ann </script><script>alert(1)</script>'], ['ID' => $ann->ID]);
        clean_user_cache($ann->ID);
        wp_set_current_user($ann->ID);
        ob_start();
        (new Frontend())->printLibrary();
        $html = (string) ob_get_clean();
        $this->assertSame(3, substr_count($html, '</script>'), 'only the three tags close a script');
        $script = $this->inline($html, 'crumbs-new-device');

        $hash = NewDevice::userHash($ann->ID);
        $this->assertMatchesRegularExpression('/^[0-9a-f]{32}$/', $hash);
        $this->assertSame($hash, NewDevice::userHash($ann->ID), 'the same user, the same hash: their device is kept');
        $this->assertNotSame($hash, NewDevice::userHash($bob->ID));
        $this->assertMatchesRegularExpression('/"user":"[0-9a-f]{32}"/', $script);
        foreach ([$ann->user_email, $ann->user_login, 'Ann', 'alert', '"user":"' . $ann->ID . '"', '"user":' . $ann->ID] as $personal) {
            $this->assertStringNotContainsString($personal, $script, 'nothing of the user but the keyed hash');
        }
        foreach (['md5', 'sha1', 'sha256'] as $algo) {
            $this->assertStringNotContainsString(substr(hash($algo, (string) $ann->ID), 0, 16), $script, 'not a plain hash of the id, which anyone could recompute');
        }
        $otherSite = static fn (): string => 'another site\'s secret';
        add_filter('salt', $otherSite);
        try {
            $this->assertNotSame($hash, NewDevice::userHash($ann->ID), 'keyed with the site\'s secret');
        } finally {
            remove_filter('salt', $otherSite);
        }
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
        $this->assertStringContainsString('"mark":"crumbs_other\u003C/script\u003E', $html);
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
