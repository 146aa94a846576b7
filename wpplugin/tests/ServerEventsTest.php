<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Client;
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

    public function testShutdownSendsWithoutWaitingAndCronConfirms(): void
    {
        $this->setSettings(['identify_users' => false]);
        $user = $this->makeUser('subscriber', 'nonblocking');
        Queue::flushAfterResponse();
        [$row] = Queue::pending();
        $this->assertSame('0', (string) $row['attempts'], 'a send without an answer is not a failure');
        $this->assertIsInt(wp_next_scheduled(Queue::CRON_HOOK));

        global $wpdb;
        $wpdb->query('UPDATE ' . Queue::table() . " SET next_attempt_at = '2000-01-01 00:00:00'");
        do_action(Queue::CRON_HOOK);
        $this->assertSame([], Queue::pending());
        $this->assertSame(['user_registered'], self::codes(CrumbsServer::deviceEvents(ServerEvents::userDeviceId($user->ID))));
    }
}
