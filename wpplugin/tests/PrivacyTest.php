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

    /**
     * A subscriber signs in and is erased within the minute: the login trigger's send got no
     * answer (its queue row stays for WP-Cron to confirm), and another login is still queued.
     * The eraser purges the queued rows of the user's device, and a resend that still happens
     * (a copy of the queue made before the erasure) is answered duplicate by the server, which
     * kept a tombstone of the erased messageId, and stores nothing.
     */
    public function testEraseThenCronResendStaysErased(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => true, 'exclude_roles' => []]);
        update_option(Options::SECRET, CrumbsServer::secret());
        $user = $this->makeUser('subscriber', 'resend');
        $device = \Crumbs\WordPress\ServerEvents::userDeviceId((int) $user->ID);
        do_action('wp_login', $user->user_login, $user);
        $sent = array_values(array_filter(Queue::pending(), static fn ($row) => $row['kind'] === 'trigger'));
        $this->assertNotEmpty($sent);
        Queue::flush();
        $this->assertNotEmpty(CrumbsServer::deviceEvents($device), 'the login was stored');

        // A second login, queued and not sent yet.
        do_action('wp_login', $user->user_login, $user);
        $this->assertNotEmpty(Queue::pending());

        $erasers = apply_filters('wp_privacy_personal_data_erasers', []);
        $erased = call_user_func($erasers['crumbs']['callback'], $user->user_email, 1);
        $this->assertTrue($erased['items_removed']);
        $this->assertFalse($erased['items_retained']);
        $left = array_filter(Queue::pending(), static fn ($row) => str_contains((string) $row['payload'], $device));
        $this->assertSame([], array_values($left), 'the eraser leaves no queued call of the user\'s device');

        // WP-Cron resends the first login anyway.
        foreach ($sent as $row) {
            Queue::push('trigger', (array) json_decode((string) $row['payload'], true), (string) $row['message_id']);
        }
        Queue::flush();
        $this->assertSame([], Queue::pending(), 'the resend was answered (duplicate) and left the queue');
        $this->assertSame([], CrumbsServer::deviceEvents($device), 'the resend stored nothing');
        $this->assertNull(CrumbsServer::lead($user->user_email));
    }

    /**
     * The exporter pages through every event (not only the first 500), and empty maps are {}.
     */
    public function testExporterPagesThroughEveryEvent(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId()]);
        update_option(Options::SECRET, CrumbsServer::secret());
        $email = 'pages-' . wp_generate_password(8, false) . '@example.org';
        $client = \Crumbs\WordPress\Client::fromOptions();
        // 20 devices of 26 events: within the per-device rate limit's burst.
        $inputs = [];
        for ($d = 0; $d < 20; $d++) {
            $device = 'export-' . $d . '-' . wp_generate_password(12, false);
            $client->identify(['deviceId' => $device, 'email' => $email]);
            for ($i = 0; $i < 26; $i++) {
                $inputs[] = ['appId' => CrumbsServer::appId(), 'deviceId' => $device, 'code' => 'user_logged_in', 'url' => 'https://example.org/p' . $i];
            }
        }
        foreach (array_chunk($inputs, 260) as $chunk) {
            $data = $client->graphql('mutation($in: [TriggerInput!]!) { triggerBatch(inputs: $in) { accepted error { message } } }', ['in' => $chunk]);
            $this->assertCount(260, array_filter($data['triggerBatch'] ?? [], static fn ($r) => $r['accepted']), (string) wp_json_encode($data));
        }

        $exporters = apply_filters('wp_privacy_personal_data_exporters', []);
        $events = [];
        $lead = null;
        for ($page = 1; $page < 10; $page++) {
            $export = call_user_func($exporters['crumbs']['callback'], $email, $page);
            foreach ($export['data'] as $item) {
                if ($item['item_id'] === 'crumbs-lead') {
                    $lead = $item;
                    continue;
                }
                $events[$item['item_id']] = $item;
            }
            if ($export['done']) {
                break;
            }
        }
        $this->assertSame(3, $page, 'three pages of 200');
        $this->assertCount(520, $events, 'every event, once');
        $this->assertNotNull($lead);
        $values = array_column($lead['data'], 'value', 'name');
        $this->assertSame('{}', $values['Fields']);
        $this->assertStringContainsString('Lead: ' . $email, $values['Activity summary']);
        $this->assertStringContainsString('Only the most recent 500 events are told; 20 earlier ones are left out.', $values['Activity summary']);
        $first = array_column(reset($events)['data'], 'value', 'name');
        $this->assertSame('{}', $first['Properties']);
    }

    public function testEraseReportsAnUnreachableServer(): void
    {
        $this->setSettings(['server_url' => 'http://127.0.0.1:9', 'app_id' => 'app_x']);
        $pages = $this->eraseAllPages('someone@example.org');
        $this->assertCount(1 + \Crumbs\WordPress\Privacy::ERASE_RETRIES, $pages, 'tried again on the next pages before giving up');
        $result = end($pages);
        $this->assertTrue($result['done']);
        $this->assertTrue($result['items_retained']);
        $this->assertFalse($result['items_removed']);
        $this->assertStringContainsString('could not erase', $result['messages'][0]);
        $this->assertFalse(get_option('crumbs_erase_' . wp_hash('someone@example.org')), 'nothing kept after the last page');
        $this->assertInstanceOf(\WP_Error::class, \Crumbs\WordPress\Privacy::export('someone@example.org'));
    }

    /**
     * Runs the eraser as WordPress does: page after page until one answers done.
     *
     * @return list<array{items_removed: bool, items_retained: bool, messages: list<string>, done: bool}>
     */
    private function eraseAllPages(string $email): array
    {
        $pages = [];
        for ($page = 1; $page <= \Crumbs\WordPress\Privacy::ERASE_PAGES; $page++) {
            $pages[] = $result = \Crumbs\WordPress\Privacy::erase($email, $page);
            if ($result['done']) {
                break;
            }
        }
        return $pages;
    }

    /**
     * A person with a lead (their wp-user device, two events) and a guest comment (the commenter
     * device, on no lead). Crumbs answers 503 UNAVAILABLE to the erasure of the commenter device,
     * after it erased the lead. The eraser reported the request done with items retained and
     * nothing removed, dropping the lead's erasure from its counts; run again, the lead was gone
     * and the counts stayed short. It now tries the failed step again on the next page and
     * reports everything erased.
     *
     * @return array{0: string, 1: string, 2: int} the email, the commenter device and the post
     */
    private function seedPersonWithALeadAndAGuestComment(): array
    {
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => true, 'exclude_roles' => []]);
        update_option(Options::SECRET, CrumbsServer::secret());
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
        $user = $this->makeUser('subscriber', 'unavail');
        do_action('wp_login', $user->user_login, $user);
        $post = wp_insert_post(['post_title' => 'Erasure post', 'post_status' => 'publish']);
        $id = wp_insert_comment([
            'comment_post_ID' => $post,
            'comment_content' => 'A guest comment',
            'comment_type' => 'comment',
            'comment_author' => 'Guest',
            'comment_author_email' => $user->user_email,
            'comment_approved' => 1,
        ]);
        do_action('comment_post', $id, 1, []);
        Queue::flush();
        $device = \Crumbs\WordPress\ServerEvents::emailDeviceId('commenter', $user->user_email);
        $this->assertCount(1, CrumbsServer::deviceEvents($device), 'the guest comment is in Crumbs');
        $this->assertNotNull(CrumbsServer::lead($user->user_email));
        return [$user->user_email, $device, (int) $post];
    }

    /**
     * Answers 503 UNAVAILABLE, as Crumbs does when its store fails (with a Retry-After of 1 s
     * here, 5 s from Crumbs), to the first $times erasures of $device; every other request goes
     * to Crumbs.
     */
    private function unavailableFor(string $device, int $times): \Closure
    {
        $left = $times;
        $filter = static function ($preempt, array $args, string $url) use ($device, &$left) {
            $body = json_decode((string) ($args['body'] ?? ''), true);
            if ($left > 0 && str_contains((string) ($body['query'] ?? ''), 'eraseDevice') && ($body['variables']['deviceId'] ?? '') === $device) {
                $left--;
                return [
                    'headers' => ['retry-after' => '1', 'content-type' => 'application/json'],
                    'body' => '{"errors":[{"message":"the store is unavailable; retry later","extensions":{"code":"UNAVAILABLE"}}],"data":null}',
                    'response' => ['code' => 503, 'message' => 'Service Unavailable'],
                    'cookies' => [],
                    'filename' => null,
                ];
            }
            return $preempt;
        };
        add_filter('pre_http_request', $filter, 10, 3);
        return $filter;
    }

    public function testA503MidErasureIsTriedAgainAndCountedInFull(): void
    {
        $this->requireCrumbs();
        [$email, $device, $post] = $this->seedPersonWithALeadAndAGuestComment();
        $filter = $this->unavailableFor($device, 2);
        try {
            $pages = $this->eraseAllPages($email);
        } finally {
            remove_filter('pre_http_request', $filter, 10);
            wp_delete_post($post, true);
        }
        $this->assertCount(3, $pages, 'two pages found Crumbs unavailable, the third finished');
        $this->assertFalse($pages[0]['done']);
        $this->assertSame([], $pages[0]['messages']);
        $last = end($pages);
        $this->assertTrue($last['done']);
        $this->assertTrue($last['items_removed']);
        $this->assertFalse($last['items_retained']);
        $this->assertSame(['Crumbs erased the lead and 3 events.'], $last['messages'], 'the lead\'s two events and the comment');
        $this->assertNull(CrumbsServer::lead($email));
        $this->assertSame([], CrumbsServer::deviceEvents($device));
        $this->assertFalse(get_option('crumbs_erase_' . wp_hash($email)));
    }

    /**
     * Crumbs stays unavailable: after its retries the eraser gives up with items retained, and
     * still reports what was erased before the failure.
     */
    public function testAnErasureCrumbsKeepsFailingReportsWhatItErased(): void
    {
        $this->requireCrumbs();
        [$email, $device, $post] = $this->seedPersonWithALeadAndAGuestComment();
        $filter = $this->unavailableFor($device, 1000);
        try {
            $pages = $this->eraseAllPages($email);
            try {
                \Crumbs\WordPress\Client::fromOptions()->eraseDevice($device);
                $this->fail('no 503');
            } catch (\Crumbs\WordPress\ClientError $e) {
                $this->assertSame(['UNAVAILABLE', true, 1], [$e->errorCode, $e->retryable, $e->retryAfter], 'the wait Crumbs asks for is read');
            }
        } finally {
            remove_filter('pre_http_request', $filter, 10);
            wp_delete_post($post, true);
        }
        $this->assertCount(1 + \Crumbs\WordPress\Privacy::ERASE_RETRIES, $pages);
        $last = end($pages);
        $this->assertTrue($last['done']);
        $this->assertTrue($last['items_removed'], 'the lead was erased');
        $this->assertTrue($last['items_retained'], 'the comment\'s event is still in Crumbs');
        $this->assertSame('Crumbs erased the lead and 2 events before the failure below; the rest is still in Crumbs.', $last['messages'][0]);
        $this->assertStringContainsString('Crumbs could not erase the visitor events', $last['messages'][1]);
        $this->assertNull(CrumbsServer::lead($email));
        $this->assertCount(1, CrumbsServer::deviceEvents($device));
        $this->assertFalse(get_option('crumbs_erase_' . wp_hash($email)));
    }

    /**
     * Without the saved key, or with one Crumbs no longer accepts, the tools failed with Crumbs'
     * own words ("send the secret key as Authorization: Bearer <key>"), which name neither the
     * setting nor where it is.
     */
    /**
     * WordPress's privacy tools insert the eraser's messages and the exporter's error as HTML
     * (wp-admin/js/privacy-tools.js). The failure they name comes from outside the site: Crumbs'
     * answer, or the transport's own report, which quotes what the other end sent (an old cURL
     * names the certificate's subject: "SSL: certificate subject name '…' does not match"). Markup
     * in them ran in the administrator's browser.
     */
    public function testPrivacyToolsShowAFailureAsText(): void
    {
        $this->setSettings(['server_url' => 'https://crumbs.example', 'app_id' => 'app_x']);
        update_option(Options::SECRET, 'sk_xsstestxsstestxsstest1');
        $markup = '<img src=x onerror=alert(1)>';
        foreach (
            [
                'transport' => new \WP_Error('http_request_failed', "cURL error 51: SSL: certificate subject name '" . $markup . "' does not match target host name 'crumbs.example'"),
                'Crumbs' => [
                    'headers' => ['content-type' => 'application/json'],
                    'body' => (string) wp_json_encode(['errors' => [['message' => 'refused: ' . $markup, 'extensions' => ['code' => 'BAD_USER_INPUT']]], 'data' => null]),
                    'response' => ['code' => 200, 'message' => 'OK'],
                    'cookies' => [],
                    'filename' => null,
                ],
            ] as $what => $answer
        ) {
            $filter = static fn () => $answer;
            add_filter('pre_http_request', $filter, 10, 3);
            try {
                $export = \Crumbs\WordPress\Privacy::export('someone@example.org');
                $pages = $this->eraseAllPages('someone@example.org');
                $erase = end($pages);
            } finally {
                remove_filter('pre_http_request', $filter, 10);
            }
            $this->assertInstanceOf(\WP_Error::class, $export);
            $this->assertStringNotContainsString('<img', $export->get_error_message(), $what);
            $this->assertStringContainsString('&lt;img', $export->get_error_message(), $what . ': still said, as text');
            $this->assertTrue($erase['items_retained'], $what);
            $this->assertStringNotContainsString('<img', implode("\n", $erase['messages']), $what);
            $this->assertStringContainsString('&lt;img', implode("\n", $erase['messages']), $what);
        }
    }

    public function testPrivacyToolsSayWhichSettingToFix(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId()]);
        update_option(Options::SECRET, '');
        $export = \Crumbs\WordPress\Privacy::export('someone@example.org');
        $this->assertInstanceOf(\WP_Error::class, $export);
        $this->assertStringContainsString('the app secret key is not saved in Settings → Crumbs', $export->get_error_message());
        $erase = \Crumbs\WordPress\Privacy::erase('someone@example.org');
        $this->assertTrue($erase['items_retained']);
        $this->assertStringContainsString('the app secret key is not saved in Settings → Crumbs', $erase['messages'][0]);

        update_option(Options::SECRET, 'sk_rotatedrotatedrotated1');
        $erase = \Crumbs\WordPress\Privacy::erase('someone@example.org');
        $this->assertStringContainsString('did not accept the app id and secret key saved in Settings → Crumbs', $erase['messages'][0]);
    }

    /**
     * A visitor without an account comments twice: the first comment's event is in Crumbs, on
     * the device the plugin made from their email (never identified: guests have no lead), the
     * second is still queued. The eraser knew only the user's and the WooCommerce customer's
     * devices, so both stayed, and WP-Cron sent the queued one after the erasure.
     */
    public function testEraseRemovesAGuestCommentersEvents(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => true, 'exclude_roles' => []]);
        update_option(Options::SECRET, CrumbsServer::secret());
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
        $email = 'Guest.' . wp_generate_password(8, false, false) . '@example.org';
        $device = \Crumbs\WordPress\ServerEvents::emailDeviceId('commenter', $email);
        $post = wp_insert_post(['post_title' => 'Erasure post', 'post_status' => 'publish']);
        $comment = static function () use ($post, $email): void {
            $id = wp_insert_comment([
                'comment_post_ID' => $post,
                'comment_content' => 'A guest comment ' . wp_generate_password(6, false),
                'comment_type' => 'comment',
                'comment_author' => 'Guest',
                'comment_author_email' => $email,
                'comment_approved' => 1,
            ]);
            do_action('comment_post', $id, 1, []);
        };
        $comment();
        Queue::flush();
        $this->assertCount(1, CrumbsServer::deviceEvents($device), 'the first comment is in Crumbs');
        $comment();
        $this->assertCount(1, Queue::pending(), 'the second is queued');

        $erasers = apply_filters('wp_privacy_personal_data_erasers', []);
        $erased = call_user_func($erasers['crumbs']['callback'], strtolower($email), 1);
        wp_delete_post($post, true);
        $this->assertTrue($erased['done']);
        $this->assertTrue($erased['items_removed']);
        $this->assertFalse($erased['items_retained']);
        $this->assertSame([], Queue::pending(), 'no queued call of the commenter is left to send');
        $this->assertSame([], CrumbsServer::deviceEvents($device));
        $this->assertStringContainsString('1 event of the person', $erased['messages'][0] ?? '');
    }

    /**
     * Events of the person's devices that are on no lead are exported too. With Identify users
     * off, a subscriber's registration and login go to their wp-user device, and a comment they
     * left as a guest to the commenter device of their email; neither device is on a lead, so the
     * exporter (which asked for the lead only) exported nothing, while the eraser erased them.
     */
    public function testExportIncludesThePersonsDevicesWithoutALead(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => false, 'exclude_roles' => []]);
        update_option(Options::SECRET, CrumbsServer::secret());
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
        $user = $this->makeUser('subscriber', 'unidentified');
        do_action('wp_login', $user->user_login, $user);
        $post = wp_insert_post(['post_title' => 'Export post', 'post_status' => 'publish']);
        $comment = wp_insert_comment([
            'comment_post_ID' => $post,
            'comment_content' => 'Left while logged out',
            'comment_type' => 'comment',
            'comment_author' => 'Me',
            'comment_author_email' => $user->user_email,
            'comment_approved' => 1,
        ]);
        do_action('comment_post', $comment, 1, []);
        Queue::flush();
        $this->assertSame([], Queue::pending());
        $this->assertNull(CrumbsServer::lead($user->user_email));

        $exporters = apply_filters('wp_privacy_personal_data_exporters', []);
        $codes = [];
        $devices = [];
        for ($page = 1; $page < 10; $page++) {
            $export = call_user_func($exporters['crumbs']['callback'], $user->user_email, $page);
            $this->assertIsArray($export);
            foreach ($export['data'] as $item) {
                $values = array_column($item['data'], 'value', 'name');
                if (isset($values['Event'])) {
                    $codes[$item['item_id']] = $values['Event'];
                } elseif (isset($values['Device'])) {
                    $devices[] = $values['Device'];
                }
            }
            if ($export['done']) {
                break;
            }
        }
        wp_delete_post($post, true);
        $this->assertEqualsCanonicalizing(['user_registered', 'user_logged_in', 'comment_posted'], array_values($codes));
        $this->assertEqualsCanonicalizing([
            \Crumbs\WordPress\ServerEvents::userDeviceId((int) $user->ID),
            \Crumbs\WordPress\ServerEvents::emailDeviceId('commenter', $user->user_email),
        ], $devices);

        // Another address gets none of it.
        $other = call_user_func($exporters['crumbs']['callback'], 'nobody-' . wp_generate_password(6, false) . '@example.org', 1);
        $this->assertSame(['data' => [], 'done' => true], $other);
    }

    /**
     * WordPress takes addresses Crumbs refuses (".ann@…", "ann.@…", "a..b@…"). For such a user,
     * leadByEmail and eraseLead answered BAD_USER_INPUT, so the export failed and the eraser
     * stopped with items retained on every run, before it erased the user's wp-user device and
     * its events. Crumbs holds no lead with such an address: both go on with the devices.
     */
    public function testAnAddressCrumbsRefusesStillErasesThePersonsDevices(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => false, 'exclude_roles' => []]);
        update_option(Options::SECRET, CrumbsServer::secret());
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
        $email = '.dot' . strtolower(wp_generate_password(8, false, false)) . '@example.org';
        $id = wp_insert_user(['user_login' => 'dot' . wp_generate_password(8, false, false), 'user_email' => $email, 'user_pass' => wp_generate_password(16), 'role' => 'subscriber']);
        $this->assertIsInt($id);
        $this->assertSame($email, get_userdata($id)->user_email, 'WordPress keeps the address');
        $device = \Crumbs\WordPress\ServerEvents::userDeviceId($id);
        Queue::flush();
        $this->assertSame(['user_registered'], array_column(CrumbsServer::deviceEvents($device), 'code'));

        $export = \Crumbs\WordPress\Privacy::export($email, 1);
        $this->assertIsArray($export, is_wp_error($export) ? $export->get_error_message() : '');
        $this->assertTrue($export['done']);
        $this->assertContains('user_registered', array_merge(...array_map(static fn ($i) => array_column($i['data'], 'value'), $export['data'])));

        $erased = \Crumbs\WordPress\Privacy::erase($email, 1);
        $this->assertFalse($erased['items_retained'], implode(' ', $erased['messages']));
        $this->assertTrue($erased['items_removed']);
        $this->assertTrue($erased['done']);
        $this->assertSame([], CrumbsServer::deviceEvents($device));
        require_once ABSPATH . 'wp-admin/includes/user.php';
        wp_delete_user($id);
    }

    /**
     * The account is deleted, then the person asks for their data or its erasure (or the owner
     * runs both in that order). The user's wp-user device is derived from the user id, which the
     * tools looked up by email: with the account gone they found no device, so the export left
     * out and the eraser kept the events of that device (on no lead while Identify users is off).
     */
    public function testADeletedUsersDeviceIsStillExportedAndErased(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => false, 'exclude_roles' => []]);
        update_option(Options::SECRET, CrumbsServer::secret());
        $user = $this->makeUser('subscriber', 'deleted');
        $email = $user->user_email;
        $device = \Crumbs\WordPress\ServerEvents::userDeviceId((int) $user->ID);
        do_action('wp_login', $user->user_login, $user);
        Queue::flush();
        $this->assertCount(2, CrumbsServer::deviceEvents($device));
        require_once ABSPATH . 'wp-admin/includes/user.php';
        wp_delete_user($user->ID);
        $this->assertFalse(get_user_by('email', $email));

        $export = \Crumbs\WordPress\Privacy::export($email, 1);
        $this->assertIsArray($export);
        $values = array_merge(...array_map(static fn ($i) => array_column($i['data'], 'value'), $export['data'] ?: [['data' => []]]));
        $this->assertContains($device, $values, 'the deleted user\'s device is exported');
        $this->assertContains('user_logged_in', $values);

        $erased = \Crumbs\WordPress\Privacy::erase($email, 1);
        $this->assertTrue($erased['items_removed']);
        $this->assertFalse($erased['items_retained']);
        $this->assertSame([], CrumbsServer::deviceEvents($device), 'the deleted user\'s device is erased');
        $this->assertStringContainsString('2 events of the person', $erased['messages'][0] ?? '');
        $this->assertFalse(get_option(\Crumbs\WordPress\Privacy::DELETED_USER . wp_hash(strtolower($email))), 'nothing is kept once erased');
    }

    /**
     * The site moves to another address (http to https, a new domain). Device ids include the
     * home URL, so the user's events after the move go to a new wp-user device; the tools derived
     * the person's devices from the current address only, so the device from before the move, and
     * its events, were neither exported nor erased.
     */
    public function testDevicesMadeBeforeTheSiteMovedAreExportedAndErased(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => false, 'exclude_roles' => []]);
        update_option(Options::SECRET, CrumbsServer::secret());
        $user = $this->makeUser('subscriber', 'moved');
        Queue::flush();
        $before = \Crumbs\WordPress\ServerEvents::userDeviceId((int) $user->ID);
        $moved = static fn (string $url, string $path): string => 'https://moved.example.org/' . ltrim($path, '/');
        add_filter('home_url', $moved, 10, 2);
        try {
            do_action('wp_login', $user->user_login, $user);
            Queue::flush();
            $after = \Crumbs\WordPress\ServerEvents::userDeviceId((int) $user->ID);
            $this->assertNotSame($before, $after, 'a new address makes new devices');
            $this->assertSame(['user_registered'], array_column(CrumbsServer::deviceEvents($before), 'code'));
            $this->assertSame(['user_logged_in'], array_column(CrumbsServer::deviceEvents($after), 'code'));

            $export = \Crumbs\WordPress\Privacy::export($user->user_email, 1);
            $this->assertIsArray($export);
            $values = array_merge(...array_map(static fn ($i) => array_column($i['data'], 'value'), $export['data'] ?: [['data' => []]]));
            $this->assertContains($before, $values);
            $this->assertContains('user_registered', $values);

            $erased = \Crumbs\WordPress\Privacy::erase($user->user_email, 1);
            $this->assertFalse($erased['items_retained']);
            $this->assertSame([], CrumbsServer::deviceEvents($before), 'the device from before the move is erased');
            $this->assertSame([], CrumbsServer::deviceEvents($after));

            // A site that answers under both addresses does not rewrite the list on each request.
            $writes = 0;
            $count = static function () use (&$writes): void {
                $writes++;
            };
            add_action('update_option_' . Options::HOME_URLS, $count);
            for ($i = 0; $i < 3; $i++) {
                remove_filter('home_url', $moved, 10);
                $this->assertSame($before, \Crumbs\WordPress\ServerEvents::userDeviceId((int) $user->ID));
                add_filter('home_url', $moved, 10, 2);
                $this->assertSame($after, \Crumbs\WordPress\ServerEvents::userDeviceId((int) $user->ID));
            }
            remove_action('update_option_' . Options::HOME_URLS, $count);
            $this->assertSame(0, $writes);
        } finally {
            remove_filter('home_url', $moved, 10);
            delete_option(Options::HOME_URLS);
        }
    }

    /**
     * The eraser removes the queued calls that name the email, and only those: it matched any
     * payload containing the address, so erasing ann@… also dropped the queued identify of
     * joann@…, which then never reached Crumbs.
     */
    public function testEraseForgetsOnlyTheQueuedCallsOfThatEmail(): void
    {
        $this->setSettings(['server_url' => 'http://127.0.0.1:9', 'app_id' => 'app_x']);
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
        $tag = wp_generate_password(6, false, false);
        Queue::push('identify', ['deviceId' => 'd-ann', 'email' => 'Ann.' . $tag . '@example.co'], 'wp:test:ann:' . $tag);
        Queue::push('identify', ['deviceId' => 'd-joann', 'email' => 'joann.' . $tag . '@example.com'], 'wp:test:joann:' . $tag);
        Queue::push('identify', ['deviceId' => 'd-jo', 'email' => 'jo.ann.' . $tag . '@example.co'], 'wp:test:jo:' . $tag);

        $result = \Crumbs\WordPress\Privacy::erase('ann.' . $tag . '@example.co');
        $this->assertTrue($result['items_removed']);
        $left = array_map(static fn ($row) => json_decode((string) $row['payload'], true)['deviceId'], Queue::pending());
        $this->assertSame(['d-joann', 'd-jo'], $left);
        $wpdb->query('DELETE FROM ' . Queue::table());
    }

    /**
     * A later page whose position between pages is gone (an object cache evicted the transient)
     * is an error: it answered done with no data, so WordPress delivered the pages so far as the
     * complete export.
     */
    public function testAnExportPageWithoutItsPositionIsAnError(): void
    {
        $this->setSettings(['server_url' => 'http://127.0.0.1:9', 'app_id' => 'app_x']);
        $email = 'lost-' . wp_generate_password(6, false, false) . '@example.org';
        $result = \Crumbs\WordPress\Privacy::export($email, 2);
        $this->assertInstanceOf(\WP_Error::class, $result);
        $this->assertSame('crumbs_export_lost', $result->get_error_code());
    }
}
