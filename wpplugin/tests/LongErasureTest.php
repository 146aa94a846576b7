<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Client;
use Crumbs\WordPress\Options;
use Crumbs\WordPress\Privacy;
use Crumbs\WordPress\ServerEvents;

/**
 * Erasures that outlast the server's answer, against the second Crumbs server wordpress_test.go
 * starts: on MariaDB, answering erasures after 1 s (CRUMBS_ERASE_WAIT). A test keeps an erasure
 * running by holding the row lock of one of the lead's devices in that server's database: the
 * erasure takes the lead's devices in device id order, so it erases the first device's events,
 * then waits for the lock.
 */
final class LongErasureTest extends TestCase
{
    private ?\mysqli $lock = null;

    protected function setUp(): void
    {
        parent::setUp();
        if ((string) getenv('CRUMBS_SLOW_URL') === '' || (string) getenv('CRUMBS_SLOW_DB_NAME') === '') {
            $this->markTestSkipped('no slow-erasure Crumbs server (CRUMBS_SLOW_URL, CRUMBS_SLOW_DB_NAME)');
        }
        $this->setSettings(['server_url' => (string) getenv('CRUMBS_SLOW_URL'), 'app_id' => (string) getenv('CRUMBS_SLOW_APP_ID')]);
        update_option(Options::SECRET, (string) getenv('CRUMBS_SLOW_SECRET'));
    }

    protected function tearDown(): void
    {
        $this->unlock();
        parent::tearDown();
    }

    /**
     * A lead erasure still running when the server answers: the eraser answers done false with
     * no message, keeps only the erasure's id and counts (not the email) between pages, follows
     * that erasure (asking to erase the lead again once it had ended would find nothing), and on
     * the page where it is done reports all of it, with the events of the device a queued
     * identify never tied to the lead, erased after it.
     */
    public function testLongErasureIsFollowedUntilItIsDone(): void
    {
        [$email, $first, $second, $customer] = $this->seedLead(30, 30, 5);
        $this->assertSame([30, 30, 5], array_map([$this, 'eventCount'], [$first, $second, $customer]));
        $this->lockDevice($second);

        $page1 = Privacy::erase($email, 1);
        $this->assertFalse($page1['done'], 'the lead erasure waits for the lock');
        $this->assertSame([], $page1['messages'], 'no count before the erasure is done');
        $this->assertFalse($page1['items_retained']);
        $kept = (string) wp_json_encode(get_option('crumbs_erase_' . wp_hash($email)));
        $this->assertStringContainsString('erasureId', $kept);
        foreach ([$email, $first, $second, $customer] as $personal) {
            $this->assertStringNotContainsString($personal, $kept);
        }

        $page2 = Privacy::erase($email, 2);
        $this->assertFalse($page2['done'], 'still locked after following it for a page');
        $this->assertSame([], $page2['messages']);

        // The erasure ends in the server before the next page: erasing the lead again now would
        // find nothing, so only following the same erasure can report its counts.
        $this->unlock();
        $this->waitUntilErased($email);
        $last = Privacy::erase($email, 3);
        $this->assertTrue($last['done']);
        $this->assertSame(['Crumbs erased the lead and 65 events.'], $last['messages']);
        $this->assertTrue($last['items_removed']);
        $this->assertFalse($last['items_retained']);
        $this->assertFalse(get_option('crumbs_erase_' . wp_hash($email)), 'nothing kept once done');

        $this->assertNull($this->lead($email));
        foreach ([$first, $second, $customer] as $device) {
            $this->assertSame(0, $this->eventCount($device), $device);
        }
    }

    /**
     * An erasure that does not end within the eraser's pages: its last page ends the request,
     * says that Crumbs is still erasing (with the count so far) and to run the request again
     * later, and keeps nothing. The erasure goes on in the server and ends once the lock is gone.
     */
    public function testEraserStopsFollowingAfterItsLastPage(): void
    {
        [$email, , $second] = $this->seedLead(30, 10, 0);
        $this->lockDevice($second);

        $page1 = Privacy::erase($email, 1);
        $this->assertFalse($page1['done']);
        $last = Privacy::erase($email, Privacy::ERASE_PAGES);
        $this->assertTrue($last['done'], 'the last page ends the request');
        $this->assertTrue($last['items_retained']);
        $this->assertTrue($last['items_removed'], 'the first device\'s events are gone');
        $this->assertCount(1, $last['messages']);
        $this->assertStringContainsString('still erasing the visitor events (30 events erased so far)', $last['messages'][0]);
        $this->assertStringContainsString('Run this erasure request again later', $last['messages'][0]);
        $this->assertFalse(get_option('crumbs_erase_' . wp_hash($email)));

        $this->unlock();
        $this->waitUntilErased($email);
    }

    /**
     * The eraser kept the erasure between pages in a transient, which an object cache may evict:
     * the next page then asked to erase the lead again, which after the erasure had ended found
     * nothing, so the request ended reporting nothing erased. The state is an option now.
     */
    public function testAnErasureIsStillReportedWhenTheCacheLosesItsTransients(): void
    {
        [$email, , $second] = $this->seedLead(10, 10, 0);
        $this->lockDevice($second);
        $this->assertFalse(Privacy::erase($email, 1)['done']);
        $this->unlock();
        $this->waitUntilErased($email);
        // What an object cache evicting the plugin's transients leaves.
        delete_transient('crumbs_erase_' . wp_hash($email));
        wp_cache_flush();

        $last = Privacy::erase($email, 2);
        $this->assertTrue($last['done']);
        $this->assertSame(['Crumbs erased the lead and 20 events.'], $last['messages']);
        $this->assertTrue($last['items_removed']);
    }

    /**
     * Should the state be gone all the same (the next page came more than an hour later), the
     * request does not end as if nothing had been erased without saying so.
     */
    public function testALostErasureSaysSo(): void
    {
        [$email, , $second] = $this->seedLead(10, 10, 0);
        $this->lockDevice($second);
        $this->assertFalse(Privacy::erase($email, 1)['done']);
        $this->unlock();
        $this->waitUntilErased($email);
        update_option('crumbs_erase_' . wp_hash($email), ['expires' => time() - 1, 'removed' => false, 'erasures' => []], false);

        $last = Privacy::erase($email, 2);
        $this->assertTrue($last['done']);
        $this->assertStringContainsString('Crumbs lost track of this erasure between its pages', implode(' ', $last['messages']));
        $this->assertFalse(get_option('crumbs_erase_' . wp_hash($email)));
    }

    private function waitUntilErased(string $email): void
    {
        for ($tries = 0; $this->lead($email) !== null && $tries < 100; $tries++) {
            usleep(200000);
        }
        $this->assertNull($this->lead($email), 'the erasure ended in the server');
    }

    /**
     * A lead with two devices of $first and $second events, and a device this site made for the
     * email ($customer events) that no identify tied to the lead.
     *
     * @return array{string, string, string, string} The email and the three device ids.
     */
    private function seedLead(int $first, int $second, int $customer): array
    {
        $suffix = strtolower(wp_generate_password(10, false, false));
        $email = 'long-' . $suffix . '@example.org';
        $devices = ['long-a-' . $suffix => $first, 'long-b-' . $suffix => $second, ServerEvents::emailDeviceId('customer', $email) => $customer];
        $client = Client::fromOptions();
        $inputs = [];
        foreach ($devices as $device => $count) {
            if (str_starts_with($device, 'long-')) {
                $client->identify(['deviceId' => $device, 'email' => $email]);
            }
            for ($i = 0; $i < $count; $i++) {
                $inputs[] = ['deviceId' => $device, 'code' => 'user_logged_in', 'url' => 'https://example.org/p' . $i];
            }
        }
        $this->assertSame(array_fill(0, count($inputs), null), $client->events($inputs), 'every event stored');
        return [$email, ...array_keys($devices)];
    }

    /**
     * Holds the row lock of the device in the slow server's database until unlock().
     */
    private function lockDevice(string $deviceId): void
    {
        $this->lock = $this->slowDatabase();
        $app = $this->lock->execute_query('SELECT id FROM apps WHERE public_id = ?', [(string) getenv('CRUMBS_SLOW_APP_ID')])->fetch_row();
        $this->lock->begin_transaction();
        $locked = $this->lock->execute_query('SELECT device_id FROM devices WHERE app_id = ? AND device_id = ? FOR UPDATE', [$app[0], $deviceId]);
        $this->assertSame(1, $locked->num_rows, 'the device row is locked');
    }

    private function unlock(): void
    {
        if ($this->lock !== null) {
            $this->lock->rollback();
            $this->lock->close();
            $this->lock = null;
        }
    }

    /**
     * @return array<string, mixed>|null
     */
    private function lead(string $email): ?array
    {
        $data = Client::fromOptions()->graphql(
            'query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) { email } }',
            ['a' => (string) getenv('CRUMBS_SLOW_APP_ID'), 'e' => $email]
        );
        return is_array($data['leadByEmail'] ?? null) ? $data['leadByEmail'] : null;
    }

    /**
     * The device's events as stored in the slow server's database.
     */
    private function eventCount(string $deviceId): int
    {
        $db = $this->slowDatabase();
        $count = $db->execute_query(
            'SELECT COUNT(*) FROM events WHERE app_id = (SELECT id FROM apps WHERE public_id = ?) AND device_id = ?',
            [(string) getenv('CRUMBS_SLOW_APP_ID'), $deviceId]
        )->fetch_row();
        $db->close();
        return (int) $count[0];
    }

    private function slowDatabase(): \mysqli
    {
        [$host, $port] = array_pad(explode(':', DB_HOST, 2), 2, '3306');
        return new \mysqli($host, DB_USER, DB_PASSWORD, (string) getenv('CRUMBS_SLOW_DB_NAME'), (int) $port);
    }
}
