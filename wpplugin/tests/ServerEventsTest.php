<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Client;
use Crumbs\WordPress\Delivery;
use Crumbs\WordPress\Options;
use Crumbs\WordPress\Queue;
use Crumbs\WordPress\ServerEvents;

final class ServerEventsTest extends TestCase
{
    protected function setUp(): void
    {
        parent::setUp();
        $this->requireCrumbs();
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
        wp_clear_scheduled_hook(Queue::CRON_HOOK);
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => true, 'exclude_roles' => ['administrator']]);
        update_option(Options::SECRET, CrumbsServer::secret());
    }

    /**
     * @param list<array<string, mixed>> $events
     * @return list<string>
     */
    private static function codes(array $events): array
    {
        return array_map(static fn ($e) => (string) $e['code'], $events);
    }

    public function testRegistrationAndLoginArriveInCrumbsAndIdentifyTheUser(): void
    {
        $user = $this->makeUser('subscriber', 'reg');
        $rows = Queue::pending();
        $this->assertSame(['identify', 'trigger'], array_column($rows, 'kind'), 'the hook only queues');

        do_action('wp_login', $user->user_login, $user);
        $stats = Queue::flush();
        $this->assertSame(['sent' => 3, 'failed' => 0, 'dropped' => 0], $stats);
        $this->assertSame([], Queue::pending());

        $device = ServerEvents::userDeviceId($user->ID);
        $events = CrumbsServer::deviceEvents($device);
        $this->assertEqualsCanonicalizing(['user_registered', 'user_logged_in'], self::codes($events));
        foreach ($events as $event) {
            $this->assertSame('wordpress', $event['source']);
        }

        $lead = CrumbsServer::lead($user->user_email);
        $this->assertNotNull($lead, 'the user is identified by email');
        $this->assertSame($user->display_name, $lead['name']);
        $this->assertSame([$device], array_column($lead['devices'], 'id'));
        $this->assertSame($user->ID, $lead['fields']['wordpress_user_id']);
    }

    public function testCommentPostedArrivesWithPostDetails(): void
    {
        $user = $this->makeUser('author', 'commenter');
        wp_set_current_user($user->ID);
        $post = wp_insert_post(['post_title' => 'Commented post', 'post_status' => 'publish', 'post_author' => $user->ID]);
        $commentId = wp_new_comment([
            'comment_post_ID' => $post,
            'comment_content' => 'Nice post, thanks for writing it.',
            'comment_type' => 'comment',
            'user_id' => $user->ID,
            'comment_author' => $user->display_name,
            'comment_author_email' => $user->user_email,
            'comment_author_url' => '',
        ], true);
        $this->assertIsInt($commentId);
        Queue::flush();

        $events = CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID));
        $comment = array_values(array_filter($events, static fn ($e) => $e['code'] === 'comment_posted'));
        $this->assertCount(1, $comment);
        $this->assertSame($commentId, $comment[0]['properties']['comment_id']);
        $this->assertSame($post, $comment[0]['properties']['post_id']);
        $this->assertSame('Commented post', $comment[0]['properties']['post_title']);
        $this->assertSame(get_permalink($post), $comment[0]['url']);
        wp_delete_post($post, true);
    }

    /**
     * WordPress takes titles of any length; Crumbs refuses an event whose property string is
     * over 2048 bytes, so a comment on a post with a longer title was dropped.
     */
    public function testACommentOnAPostWithAVeryLongTitleArrives(): void
    {
        $user = $this->makeUser('author', 'longtitle');
        $title = str_repeat('é', 1500);
        $post = wp_insert_post(['post_title' => $title, 'post_status' => 'publish', 'post_author' => $user->ID]);
        $commentId = wp_insert_comment(['comment_post_ID' => $post, 'comment_content' => 'Long read.', 'comment_type' => 'comment', 'user_id' => $user->ID, 'comment_approved' => 1]);
        do_action('comment_post', $commentId, 1, []);
        $stats = Queue::flush();
        wp_delete_post($post, true);
        $this->assertSame(0, $stats['dropped'], (string) wp_json_encode([$stats, Queue::pending()]));
        $events = array_values(array_filter(CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID)), static fn ($e) => $e['code'] === 'comment_posted'));
        $this->assertCount(1, $events, (string) wp_json_encode($stats));
        $this->assertSame(str_repeat('é', 1024), $events[0]['properties']['post_title']);
    }

    public function testGuestCommentGoesToAnAnonymousDevice(): void
    {
        $post = wp_insert_post(['post_title' => 'Guest post', 'post_status' => 'publish']);
        $email = 'guest_' . wp_generate_password(6, false, false) . '@example.org';
        $commentId = wp_new_comment([
            'comment_post_ID' => $post,
            'comment_content' => 'A question from a visitor without an account.',
            'comment_type' => 'comment',
            'user_id' => 0,
            'comment_author' => 'Guest',
            'comment_author_email' => $email,
            'comment_author_url' => '',
        ], true);
        $this->assertIsInt($commentId);
        $this->assertSame(['trigger'], array_column(Queue::pending(), 'kind'), 'guests are not identified');
        Queue::flush();

        $events = CrumbsServer::deviceEvents(ServerEvents::emailDeviceId('commenter', $email));
        $this->assertSame(['comment_posted'], self::codes($events));
        $this->assertSame($post, $events[0]['properties']['post_id']);
        $this->assertNull(CrumbsServer::lead($email));
        wp_delete_post($post, true);
    }

    public function testDeactivationClearsTheRetryCron(): void
    {
        wp_schedule_single_event(time() + 300, Queue::CRON_HOOK);
        \Crumbs\WordPress\Plugin::deactivate();
        $this->assertFalse(wp_next_scheduled(Queue::CRON_HOOK));
    }

    public function testExcludedRolesAndEmptyCodesSendNothing(): void
    {
        $admin = $this->makeUser('administrator', 'admin');
        do_action('wp_login', $admin->user_login, $admin);
        $this->assertSame([], Queue::pending(), 'administrators are excluded');

        $this->setSettings(['event_user_registered' => '', 'identify_users' => false]);
        $this->makeUser('subscriber', 'quiet');
        $this->assertSame([], Queue::pending(), 'an empty code turns the event off');
    }

    public function testServerDownIsRetriedFromWpCronAndDeduplicated(): void
    {
        $this->setSettings(['server_url' => 'http://127.0.0.1:9', 'identify_users' => false]);
        $user = $this->makeUser('subscriber', 'retry');
        $this->assertCount(1, Queue::pending());

        $stats = Queue::flush();
        $this->assertSame(['sent' => 0, 'failed' => 1, 'dropped' => 0], $stats);
        [$row] = Queue::pending();
        $this->assertSame('1', (string) $row['attempts']);
        $this->assertStringStartsWith('NETWORK', (string) $row['last_error']);
        $next = wp_next_scheduled(Queue::CRON_HOOK);
        $this->assertIsInt($next, 'a WP-Cron retry is scheduled');
        $this->assertGreaterThan(time(), $next);
        $this->assertSame(['sent' => 0, 'failed' => 0, 'dropped' => 0], Queue::flush(), 'not due yet');

        // The server is back and the retry is due: WP-Cron runs the hook.
        $this->setSettings(['server_url' => CrumbsServer::url()]);
        global $wpdb;
        $wpdb->query('UPDATE ' . Queue::table() . " SET next_attempt_at = '2000-01-01 00:00:00'");
        do_action(Queue::CRON_HOOK);
        $this->assertSame([], Queue::pending());

        $events = CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID));
        $this->assertSame(['user_registered'], self::codes($events));

        // The same messageId again (e.g. a retry whose answer was lost) is stored once.
        $input = json_decode((string) $row['payload'], true);
        $input['properties'] = (object) $input['properties'];
        $again = Client::fromOptions()->trigger($input);
        $this->assertTrue($again['accepted']);
        $this->assertTrue($again['duplicate']);
        $this->assertCount(1, CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID)));
    }

    /** Settings → Crumbs as an administrator sees it. */
    private function settingsPage(): string
    {
        $admin = $this->makeUser('administrator', 'owner');
        wp_set_current_user($admin->ID);
        ob_start();
        (new \Crumbs\WordPress\Admin\Settings())->render();
        $html = (string) ob_get_clean();
        wp_set_current_user(0);
        return $html;
    }

    /** The admin notices of the dashboard, as an administrator sees them. */
    private function dashboardNotices(): string
    {
        require_once ABSPATH . 'wp-admin/includes/class-wp-screen.php';
        require_once ABSPATH . 'wp-admin/includes/screen.php';
        $admin = $this->makeUser('administrator', 'owner');
        wp_set_current_user($admin->ID);
        set_current_screen('dashboard');
        ob_start();
        \Crumbs\WordPress\Delivery::dashboardNotice();
        $html = (string) ob_get_clean();
        // is_admin() reads the screen: later tests are on the front end again.
        unset($GLOBALS['current_screen']);
        wp_set_current_user(0);
        return $html;
    }

    /**
     * A rotated or mistyped key: Crumbs answers UNAUTHENTICATED. The events waited (retried with
     * backoff) but nothing told the site owner, and once the right key was saved they still
     * waited out their backoff, up to 6 hours. Now Settings → Crumbs says why events are waiting
     * and what to do, and saving the key makes them due at once.
     */
    public function testARefusedKeyHoldsEventsSaysSoAndTheSavedKeySendsThem(): void
    {
        $this->setSettings(['identify_users' => false]);
        update_option(Options::SECRET, 'sk_rotatedrotatedrotated1');
        $user = $this->makeUser('subscriber', 'rotated');
        $this->assertSame(['sent' => 0, 'failed' => 1, 'dropped' => 0], Queue::flush());
        [$row] = Queue::pending();
        $this->assertStringStartsWith('UNAUTHENTICATED', (string) $row['last_error']);

        $html = $this->settingsPage();
        $this->assertStringContainsString('id="crumbs-delivery-problem"', $html);
        $this->assertStringContainsString('Crumbs did not accept the app secret key', $html);
        $this->assertStringContainsString('1 server-side event is waiting', $html);
        $this->assertStringNotContainsString('sk_rotatedrotatedrotated1', $html);
        $this->assertStringContainsString('See Settings → Crumbs', $this->dashboardNotices(), 'the dashboard points there');

        update_option(Options::SECRET, CrumbsServer::secret());
        $this->assertSame(['sent' => 1, 'failed' => 0, 'dropped' => 0], Queue::flush(), 'due as soon as the key is saved');
        $this->assertSame(['user_registered'], self::codes(CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID))));
        $this->assertStringNotContainsString('crumbs-delivery', $this->settingsPage());
    }

    /**
     * An app id Crumbs does not know (a typo, a deleted app) answered NOT_FOUND, and a server URL
     * that is no Crumbs server's answered a plain 404: both were taken as a refusal of the events
     * themselves, so every queued event was dropped at its first send, and nothing told the site
     * owner. They are settings problems: the events wait, and the settings page says what to check.
     */
    public function testAnUnknownAppOrAWrongServerUrlHoldsEventsUntilFixed(): void
    {
        $this->setSettings(['identify_users' => false, 'app_id' => 'app_nosuchapp1']);
        $dropped = 0;
        $count = static function () use (&$dropped): void {
            $dropped++;
        };
        add_action('crumbs_event_dropped', $count);
        $user = $this->makeUser('subscriber', 'unknownapp');
        $first = Queue::flush();
        $html = $this->settingsPage();
        $this->setSettings(['app_id' => CrumbsServer::appId(), 'server_url' => CrumbsServer::url() . '/crumbs']);
        $second = Queue::flush();
        $wrongUrl = $this->settingsPage();
        $this->setSettings(['server_url' => CrumbsServer::url()]);
        $third = Queue::flush();
        remove_action('crumbs_event_dropped', $count);

        $this->assertSame(['sent' => 0, 'failed' => 1, 'dropped' => 0], $first, 'an unknown app keeps the event');
        $this->assertStringContainsString('Crumbs does not know this app id', $html);
        $this->assertSame(['sent' => 0, 'failed' => 1, 'dropped' => 0], $second, 'so does a server URL that is no Crumbs server');
        $this->assertStringContainsString('does not answer as a Crumbs server', $wrongUrl);
        $this->assertSame(['sent' => 1, 'failed' => 0, 'dropped' => 0], $third);
        $this->assertSame(0, $dropped);
        $this->assertSame(['user_registered'], self::codes(CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID))));
    }

    /**
     * An event Crumbs refuses for good is dropped, as before, but no longer only through an
     * action nobody listens to: the settings page names the code and what to do.
     */
    public function testAnEventRefusedForGoodIsShownOnTheSettingsPage(): void
    {
        $this->setSettings(['event_user_registered' => 'never_defined_code', 'identify_users' => false]);
        $this->makeUser('subscriber', 'undefined');
        $this->assertSame(1, Queue::flush()['dropped']);
        $html = $this->settingsPage();
        $this->assertStringContainsString('id="crumbs-delivery-dropped"', $html);
        $this->assertStringContainsString('Crumbs refused an event &quot;never_defined_code&quot; for good', $html);
        $this->assertStringContainsString('UNKNOWN_EVENT_CODE', $html);
        $this->assertStringContainsString('Define and enable that code in Crumbs', $html);
    }

    /**
     * WordPress keeps display names of up to 250 characters; Crumbs takes at most 200 and refused
     * the whole identify, so such a user was never put on a lead (server-side nor in the browser).
     */
    public function testALongDisplayNameStillIdentifiesTheUser(): void
    {
        $user = $this->makeUser('subscriber', 'longname');
        $long = str_repeat('Ä', 120) . str_repeat('b', 120);
        wp_update_user(['ID' => $user->ID, 'display_name' => $long]);
        $user = get_userdata($user->ID);
        $this->assertSame(240, mb_strlen($user->display_name), 'WordPress keeps it');
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
        do_action('wp_login', $user->user_login, $user);
        $this->assertSame(['sent' => 2, 'failed' => 0, 'dropped' => 0], Queue::flush());
        $lead = CrumbsServer::lead($user->user_email);
        $this->assertNotNull($lead, 'the user is on a lead');
        $this->assertSame(str_repeat('Ä', 120) . str_repeat('b', 80), $lead['name']);

        wp_set_current_user($user->ID);
        $script = \Crumbs\WordPress\Frontend::identifyScript();
        wp_set_current_user(0);
        $this->assertStringContainsString('"name":"' . str_repeat('Ä', 120) . str_repeat('b', 80) . '"', $script);
    }

    public function testTheQueueHoldsOneRowPerMessageId(): void
    {
        Queue::push('trigger', ['deviceId' => 'd', 'code' => 'view'], 'wp:test:same');
        Queue::push('trigger', ['deviceId' => 'd', 'code' => 'view'], 'wp:test:same');
        $this->assertCount(1, Queue::pending());
    }

    public function testRefusedEventsAreDroppedNotRetried(): void
    {
        $this->setSettings(['event_user_registered' => 'never_defined_code', 'identify_users' => false]);
        $dropped = [];
        $record = static function ($row, $error) use (&$dropped): void {
            $dropped[] = $error->errorCode;
        };
        add_action('crumbs_event_dropped', $record, 10, 2);
        $this->makeUser('subscriber', 'unknown');
        $stats = Queue::flush();
        remove_action('crumbs_event_dropped', $record, 10);
        $this->assertSame(1, $stats['dropped']);
        $this->assertSame(['UNKNOWN_EVENT_CODE'], $dropped);
        $this->assertSame([], Queue::pending());
    }

    /** What wp-cron.php does with the next due event: unschedule it, then run its hook. */
    private static function runNextCron(): void
    {
        $next = wp_next_scheduled(Queue::CRON_HOOK);
        self::assertIsInt($next, 'a WP-Cron event is scheduled');
        wp_unschedule_event($next, Queue::CRON_HOOK);
        do_action(Queue::CRON_HOOK);
    }

    public function testARetryIsNotStrandedWhenACronEventWasAlreadyDueSooner(): void
    {
        // The report: the row is due again in a minute, a WP-Cron event already existed within
        // 30 s so no new one was scheduled, and the row waited for some later server-side event.
        $this->setSettings(['identify_users' => false]);
        $user = $this->makeUser('subscriber', 'stranded');
        Queue::flush();
        $this->setSettings(['server_url' => 'http://127.0.0.1:9']);
        wp_schedule_single_event(time() + 10, Queue::CRON_HOOK); // another row's retry, due sooner
        do_action('wp_login', $user->user_login, $user);
        $this->assertFalse(function_exists('fastcgi_finish_request'), 'PHPUnit runs the non-FPM path');
        Queue::flushAfterResponse();
        [$row] = Queue::pending();
        $this->assertSame('1', (string) $row['attempts'], 'the server could not be reached');
        $due = (int) strtotime($row['next_attempt_at'] . ' UTC');
        $this->assertGreaterThan(time() + 30, $due);

        // WP-Cron runs the earlier event: the row is not due yet, and a new event is scheduled for it.
        self::runNextCron();
        $this->assertCount(1, Queue::pending());
        $next = wp_next_scheduled(Queue::CRON_HOOK);
        $this->assertIsInt($next, 'the row is not stranded: WP-Cron comes back for it');
        $this->assertLessThanOrEqual($due + 30, $next);

        // The server is back and its time comes: WP-Cron sends it.
        $this->setSettings(['server_url' => CrumbsServer::url()]);
        global $wpdb;
        $wpdb->query('UPDATE ' . Queue::table() . " SET next_attempt_at = '2000-01-01 00:00:00'");
        self::runNextCron();
        $this->assertSame([], Queue::pending());
        $this->assertFalse(wp_next_scheduled(Queue::CRON_HOOK), 'nothing left to do');
        $codes = self::codes(CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID)));
        $this->assertEqualsCanonicalizing(['user_registered', 'user_logged_in'], $codes);
    }

    public function testRowsFailingForNowAreRetriedUntilStoredWithinMaxAge(): void
    {
        $this->setSettings(['server_url' => 'http://127.0.0.1:9', 'identify_users' => false]);
        $this->makeUser('subscriber', 'patient');
        global $wpdb;
        // Many failed attempts already: still retried (backoff capped at 6 hours).
        $wpdb->query('UPDATE ' . Queue::table() . " SET attempts = 40, next_attempt_at = '2000-01-01 00:00:00'");
        $this->assertSame(['sent' => 0, 'failed' => 1, 'dropped' => 0], Queue::flush());
        [$row] = Queue::pending();
        $this->assertSame('41', (string) $row['attempts']);
        $this->assertLessThanOrEqual(time() + 6 * HOUR_IN_SECONDS, (int) strtotime($row['next_attempt_at'] . ' UTC'));
        $this->assertIsInt(wp_next_scheduled(Queue::CRON_HOOK));
        // Queued longer ago than MAX_AGE: given up, and reported.
        $wpdb->query('UPDATE ' . Queue::table() . " SET next_attempt_at = '2000-01-01 00:00:00', created_at = '"
            . gmdate('Y-m-d H:i:s', time() - Queue::MAX_AGE - 60) . "'");
        $this->assertSame(['sent' => 0, 'failed' => 0, 'dropped' => 1], Queue::flush());
        $this->assertSame([], Queue::pending());
    }

    public function testEventsGoInOneJsonApiRequest(): void
    {
        $this->setSettings(['identify_users' => false]);
        $requests = [];
        $record = static function ($response, $context, $class, $args, $url) use (&$requests): void {
            $requests[] = $url;
        };
        add_action('http_api_debug', $record, 10, 5);
        $users = [$this->makeUser('subscriber', 'one'), $this->makeUser('subscriber', 'two'), $this->makeUser('subscriber', 'three')];
        $stats = Queue::flush();
        remove_action('http_api_debug', $record, 10);
        $this->assertSame(['sent' => 3, 'failed' => 0, 'dropped' => 0], $stats);
        $this->assertSame([CrumbsServer::url() . '/api/v1/apps/' . CrumbsServer::appId() . '/events'], $requests);
        foreach ($users as $user) {
            $this->assertSame(['user_registered'], self::codes(CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID))));
        }
    }

    /**
     * Under non-FPM PHP the shutdown send went without waiting for the answer, and the row stayed
     * queued until WP-Cron resent it a minute later to confirm it. These tests run as such a
     * site does (DISABLE_WP_CRON, no system cron): nothing ever confirmed it, every later send
     * went out again unconfirmed, and the queue only grew. The send now waits for its answer
     * (cURL waited for it all the same) and the row is gone at once.
     */
    public function testTheShutdownSendIsConfirmedWithoutWPCron(): void
    {
        $this->assertTrue(defined('DISABLE_WP_CRON') && DISABLE_WP_CRON, 'the test site has no WP-Cron');
        $this->setSettings(['identify_users' => false]);
        $user = $this->makeUser('subscriber', 'nocron');
        Queue::flushAfterResponse();
        $this->assertSame([], Queue::pending(), 'confirmed by its own answer');
        $this->assertFalse(wp_next_scheduled(Queue::CRON_HOOK), 'nothing waits for WP-Cron');
        $this->assertSame(['user_registered'], self::codes(CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID))));
    }

    /**
     * A row that failed while WP-Cron does not run: its WP-Cron event never comes. Once that
     * event is CRON_LATE overdue, the end of a page load sends the row instead, and Settings →
     * Crumbs says that WP-Cron does not run and how to run it, until WP-Cron runs again.
     */
    public function testWithoutWPCronAPageLoadSendsTheOverdueRows(): void
    {
        $this->setSettings(['identify_users' => false, 'server_url' => 'http://127.0.0.1:9']);
        $user = $this->makeUser('subscriber', 'latecron');
        Queue::flushAfterResponse();
        $this->assertCount(1, Queue::pending(), 'Crumbs could not be reached');
        $this->setSettings(['server_url' => CrumbsServer::url()]);
        $this->assertSame(101, has_action('shutdown', [Queue::class, 'whenCronIsLate']), 'it runs at the end of every page load');

        // Not late yet: WP-Cron may still come, the page load leaves the row to it.
        Queue::whenCronIsLate();
        $this->assertCount(1, Queue::pending());
        $this->assertStringNotContainsString('crumbs-cron-late', Delivery::notices());

        // The event is long overdue: WP-Cron does not run here.
        $late = time() - Queue::CRON_LATE - 60;
        wp_clear_scheduled_hook(Queue::CRON_HOOK);
        wp_schedule_single_event($late, Queue::CRON_HOOK);
        global $wpdb;
        $wpdb->query('UPDATE ' . Queue::table() . " SET next_attempt_at = '2000-01-01 00:00:00'");
        $notice = Delivery::notices();
        $this->assertStringContainsString('id="crumbs-cron-late"', $notice);
        $this->assertStringContainsString('DISABLE_WP_CRON is set in wp-config.php', $notice);
        $this->assertStringContainsString(esc_html(site_url('wp-cron.php')), $notice);

        Queue::whenCronIsLate();
        $this->assertSame([], Queue::pending(), 'the page load sent it');
        $this->assertFalse(wp_next_scheduled(Queue::CRON_HOOK), 'nothing left to do');
        $this->assertEqualsCanonicalizing(['user_registered'], self::codes(CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID))));
        $this->assertSame($late, Delivery::status()['cron_late']);
        $this->assertStringContainsString('id="crumbs-cron-late"', Delivery::notices(), 'said until WP-Cron runs again');

        do_action(Queue::CRON_HOOK);
        $this->assertNull(Delivery::status()['cron_late']);
        $this->assertStringNotContainsString('crumbs-cron-late', Delivery::notices());
    }

    /**
     * A Crumbs server that takes connections and never answers (hung, or behind a dead proxy):
     * the kernel completes the handshake and nothing reads the request. Returns the listening
     * socket (the server lives as long as it does) and its URL.
     *
     * @return array{0: resource, 1: string}
     */
    private static function silentServer(): array
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
        self::assertIsResource($socket, $errstr);
        return [$socket, 'http://' . stream_socket_get_name($socket, false)];
    }

    /**
     * Runs $flush and returns the URLs it requested.
     *
     * @return list<string>
     */
    private static function requestsOf(callable $flush): array
    {
        $requests = [];
        $record = static function ($response, $context, $class, $args, $url) use (&$requests): void {
            $requests[] = $url;
        };
        add_action('http_api_debug', $record, 10, 5);
        try {
            $flush();
        } finally {
            remove_action('http_api_debug', $record, 10);
        }
        return $requests;
    }

    /**
     * Three users register while the Crumbs server hangs: six rows (an identify and a trigger
     * each), six requests. Under non-FPM PHP the visitor waits for the shutdown flush, and a send
     * without waiting saw no error, so each request took its whole second (six seconds on that
     * page). Now no request starts after the first second: one request, which fails, the rest
     * stay due for WP-Cron.
     */
    public function testAHungServerCostsTheShutdownFlushOneRequest(): void
    {
        [$socket, $url] = self::silentServer();
        $this->setSettings(['server_url' => $url]);
        for ($i = 0; $i < 3; $i++) {
            $this->makeUser('subscriber', 'hung');
        }
        $this->assertSame(['identify', 'trigger', 'identify', 'trigger', 'identify', 'trigger'], array_column(Queue::pending(), 'kind'));

        $requests = self::requestsOf([Queue::class, 'flushAfterResponse']);
        fclose($socket);
        $this->assertSame([$url . '/api/v1/apps/' . CrumbsServer::appId() . '/identify'], $requests);
        $rows = Queue::pending();
        $this->assertSame(['1', '0', '0', '0', '0', '0'], array_column($rows, 'attempts'));
        $this->assertStringStartsWith('NETWORK', (string) $rows[0]['last_error']);
        $due = array_filter($rows, static fn ($row) => strtotime($row['next_attempt_at'] . ' UTC') <= time());
        $this->assertCount(5, $due, 'the rows not sent are left as they were, due');
        $next = wp_next_scheduled(Queue::CRON_HOOK);
        $this->assertIsInt($next);
        $this->assertLessThanOrEqual(time() + 30, $next, 'WP-Cron comes for them now');
    }

    /**
     * The same rows from WP-Cron, which waits for answers: once the first request has timed out,
     * the other five fail with its error without a request of their own (one timeout per flush,
     * not one per row), and are retried with backoff like it.
     */
    public function testAHungServerCostsACronFlushOneTimeout(): void
    {
        [$socket, $url] = self::silentServer();
        $this->setSettings(['server_url' => $url]);
        for ($i = 0; $i < 3; $i++) {
            $this->makeUser('subscriber', 'hung');
        }
        $stats = [];
        $requests = self::requestsOf(static function () use (&$stats): void {
            $stats = Queue::flush(Queue::BATCH, 1.0);
        });
        fclose($socket);
        $this->assertCount(1, $requests, implode(' ', $requests));
        $this->assertSame(['sent' => 0, 'failed' => 6, 'dropped' => 0], $stats);
        foreach (Queue::pending() as $row) {
            $this->assertSame('1', (string) $row['attempts']);
            $this->assertStringStartsWith('NETWORK', (string) $row['last_error']);
            $this->assertGreaterThan(time(), strtotime($row['next_attempt_at'] . ' UTC'));
        }

        // The server is back: everything arrives.
        $this->setSettings(['server_url' => CrumbsServer::url()]);
        global $wpdb;
        $wpdb->query('UPDATE ' . Queue::table() . " SET next_attempt_at = '2000-01-01 00:00:00'");
        $this->assertSame(['sent' => 6, 'failed' => 0, 'dropped' => 0], Queue::flush());
    }
}
