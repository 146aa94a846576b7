<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Client;
use Crumbs\WordPress\Options;
use Crumbs\WordPress\Queue;

/**
 * How long delivering a backlog of queued server-side events takes against the real Crumbs
 * server: as the plugin did before it used the JSON API (per row, a GraphQL `trigger` request,
 * then a DELETE of the row), and Queue::flush() now (one JSON API request for all of them, one
 * DELETE). Prints the figures and their ratio; asserts only that every event arrived, never a
 * duration.
 */
final class FlushBenchTest extends TestCase
{
    private const EVENTS = 100;

    protected function setUp(): void
    {
        parent::setUp();
        $this->requireCrumbs();
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
        wp_clear_scheduled_hook(Queue::CRON_HOOK);
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId()]);
        update_option(Options::SECRET, CrumbsServer::secret());
    }

    /** @return list<array<string, mixed>> */
    private static function backlog(string $device): array
    {
        $out = [];
        for ($i = 0; $i < self::EVENTS; $i++) {
            $out[] = [
                'deviceId' => $device,
                'code' => 'user_logged_in',
                'properties' => (object) ['n' => $i],
                'messageId' => 'wp:bench:' . $device . ':' . $i,
                'source' => 'wordpress',
                'occurredAt' => gmdate('Y-m-d\TH:i:s\Z'),
            ];
        }
        return $out;
    }

    public function testBacklogDeliveryGraphQLPerRowVersusOneJsonApiRequest(): void
    {
        $client = Client::fromOptions();
        $rounds = [];
        for ($round = 0; $round < 3; $round++) {
            global $wpdb;
            $device = 'bench-gql-' . $round . '-' . wp_generate_password(6, false, false);
            foreach (self::backlog($device) as $input) {
                Queue::push('trigger', $input, (string) $input['messageId']);
            }
            $start = microtime(true);
            foreach (Queue::pending() as $row) {
                $input = json_decode((string) $row['payload'], true);
                $input['properties'] = (object) $input['properties'];
                $client->graphql(
                    'mutation CrumbsTrigger($input: TriggerInput!) { trigger(input: $input) { accepted duplicate } }',
                    ['input' => ['appId' => $client->appId()] + $input]
                );
                $wpdb->delete(Queue::table(), ['id' => (int) $row['id']], ['%d']);
            }
            $graphql = microtime(true) - $start;
            $this->assertCount(self::EVENTS, CrumbsServer::deviceEvents($device));

            $device = 'bench-json-' . $round . '-' . wp_generate_password(6, false, false);
            foreach (self::backlog($device) as $input) {
                Queue::push('trigger', $input, (string) $input['messageId']);
            }
            $start = microtime(true);
            $stats = Queue::flush();
            $json = microtime(true) - $start;
            $this->assertSame(['sent' => self::EVENTS, 'failed' => 0, 'dropped' => 0], $stats);
            $this->assertCount(self::EVENTS, CrumbsServer::deviceEvents($device));
            $rounds[] = [$graphql, $json];
        }
        usort($rounds, static fn ($a, $b) => $a[1] <=> $b[1]);
        [$graphql, $json] = $rounds[1];
        fwrite(STDERR, sprintf(
            "\nflush of %d queued events (median of 3): GraphQL trigger per row %.1f ms, Queue::flush (one JSON API request) %.1f ms, %.1fx faster\n",
            self::EVENTS,
            $graphql * 1000,
            $json * 1000,
            $graphql / max($json, 1e-6)
        ));
    }
}
