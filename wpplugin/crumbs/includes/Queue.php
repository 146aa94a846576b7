<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Durable outbox for server-side events. Hooks only insert a row; delivery happens after the
 * response (shutdown) and from WP-Cron with backoff while the Crumbs server is unreachable.
 * Each trigger carries a messageId, so a row sent twice is stored once by Crumbs.
 */
final class Queue
{
    public const CRON_HOOK = 'crumbs_flush_queue';
    public const DB_VERSION = '1';
    public const DB_VERSION_OPTION = 'crumbs_db_version';
    public const MAX_ATTEMPTS = 12;

    private static bool $flushOnShutdown = false;

    public function hook(): void
    {
        add_action(self::CRON_HOOK, [self::class, 'runCron']);
    }

    public static function table(): string
    {
        global $wpdb;
        return $wpdb->prefix . 'crumbs_queue';
    }

    public static function install(): void
    {
        global $wpdb;
        require_once ABSPATH . 'wp-admin/includes/upgrade.php';
        $table = self::table();
        $charset = $wpdb->get_charset_collate();
        dbDelta("CREATE TABLE {$table} (
  id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  message_id varchar(128) NOT NULL,
  kind varchar(16) NOT NULL,
  payload longtext NOT NULL,
  attempts int(11) NOT NULL DEFAULT 0,
  next_attempt_at datetime NOT NULL,
  last_error text NULL,
  created_at datetime NOT NULL,
  PRIMARY KEY  (id),
  UNIQUE KEY message_id (message_id),
  KEY next_attempt_at (next_attempt_at)
) {$charset};");
        // Autoloaded: maybeUpgrade() reads it on every request.
        update_option(self::DB_VERSION_OPTION, self::DB_VERSION, true);
    }

    public static function maybeUpgrade(): void
    {
        if (get_option(self::DB_VERSION_OPTION) !== self::DB_VERSION) {
            self::install();
        }
    }

    /**
     * Adds one call to the outbox; a messageId already queued is ignored.
     *
     * @param 'trigger'|'identify' $kind
     * @param array<string, mixed> $input The GraphQL input without appId.
     */
    public static function push(string $kind, array $input, string $messageId): void
    {
        global $wpdb;
        $now = gmdate('Y-m-d H:i:s');
        // INSERT IGNORE keeps the unique messageId from queueing the same event twice.
        $wpdb->query($wpdb->prepare(
            'INSERT IGNORE INTO ' . self::table()
            . ' (message_id, kind, payload, attempts, next_attempt_at, created_at) VALUES (%s, %s, %s, 0, %s, %s)',
            $messageId,
            $kind,
            (string) wp_json_encode($input),
            $now,
            $now
        ));
        if (!self::$flushOnShutdown) {
            self::$flushOnShutdown = true;
            add_action('shutdown', [self::class, 'flushAfterResponse'], 100);
        }
    }

    /**
     * Runs at shutdown. Under PHP-FPM the visitor already has the response, so the rows are sent
     * and confirmed at once. Elsewhere the first attempt is sent with blocking => false and a
     * one-second cap (WordPress's cURL transport still waits for the answer up to the timeout),
     * and WP-Cron resends it a minute later to confirm; the messageId makes that a duplicate.
     */
    public static function flushAfterResponse(): void
    {
        if (function_exists('fastcgi_finish_request') && !defined('WP_CLI')) {
            fastcgi_finish_request();
            self::flush(20, 3.0);
            return;
        }
        self::flush(20, 1.0, false);
    }

    public static function runCron(): void
    {
        self::flush(100, 10.0);
    }

    /**
     * Sends due rows. Delivered rows and permanently refused ones are removed; the rest are
     * retried later with exponential backoff.
     *
     * @return array{sent: int, failed: int, dropped: int}
     */
    public static function flush(int $limit = 100, float $timeout = 10.0, bool $blocking = true): array
    {
        global $wpdb;
        $stats = ['sent' => 0, 'failed' => 0, 'dropped' => 0];
        $table = self::table();
        $rows = $wpdb->get_results($wpdb->prepare(
            "SELECT * FROM {$table} WHERE next_attempt_at <= %s ORDER BY id LIMIT %d",
            gmdate('Y-m-d H:i:s'),
            $limit
        ), ARRAY_A);
        if (!is_array($rows) || $rows === []) {
            return $stats;
        }
        $client = Client::fromOptions($timeout);
        foreach ($rows as $row) {
            $input = json_decode((string) $row['payload'], true);
            $input = is_array($input) ? $input : [];
            foreach (['properties', 'fields'] as $map) {
                // JSON objects decode to PHP arrays; an empty one must go back out as {}, not [].
                if (isset($input[$map])) {
                    $input[$map] = (object) $input[$map];
                }
            }
            try {
                self::send($client, (string) $row['kind'], $input, $blocking);
                if (!$blocking) {
                    // Not confirmed: keep the row and let WP-Cron resend it; messageId dedupes.
                    self::retryLater($row, __('Sent without waiting for an answer; confirming.', 'crumbs'), false);
                    continue;
                }
                $wpdb->delete($table, ['id' => (int) $row['id']], ['%d']);
                $stats['sent']++;
            } catch (ClientError $e) {
                if ($e->retryable && (int) $row['attempts'] + 1 < self::MAX_ATTEMPTS) {
                    self::retryLater($row, $e->errorCode . ': ' . $e->getMessage(), true);
                    $stats['failed']++;
                    continue;
                }
                $wpdb->delete($table, ['id' => (int) $row['id']], ['%d']);
                $stats['dropped']++;
                do_action('crumbs_event_dropped', $row, $e);
            }
        }
        return $stats;
    }

    /**
     * @param array<string, mixed> $input
     */
    private static function send(Client $client, string $kind, array $input, bool $blocking): void
    {
        $mutation = $kind === 'identify'
            ? 'mutation CrumbsIdentify($input: IdentifyInput!) { identify(input: $input) { moved } }'
            : 'mutation CrumbsTrigger($input: TriggerInput!) { trigger(input: $input) { accepted duplicate } }';
        $client->graphql($mutation, ['input' => ['appId' => $client->appId()] + $input], $blocking);
    }

    /**
     * @param array<string, mixed> $row
     */
    private static function retryLater(array $row, string $error, bool $countAttempt): void
    {
        global $wpdb;
        $attempts = (int) $row['attempts'] + ($countAttempt ? 1 : 0);
        $delay = $countAttempt ? min(60 * (2 ** max(0, $attempts - 1)), 6 * HOUR_IN_SECONDS) : MINUTE_IN_SECONDS;
        $at = time() + $delay;
        $wpdb->update(
            self::table(),
            ['attempts' => $attempts, 'next_attempt_at' => gmdate('Y-m-d H:i:s', $at), 'last_error' => $error],
            ['id' => (int) $row['id']],
            ['%d', '%s', '%s'],
            ['%d']
        );
        self::scheduleAt($at);
    }

    private static function scheduleAt(int $at): void
    {
        $next = wp_next_scheduled(self::CRON_HOOK);
        if ($next === false || $next > $at + 30) {
            if ($next !== false) {
                wp_unschedule_event($next, self::CRON_HOOK);
            }
            wp_schedule_single_event($at, self::CRON_HOOK);
        }
    }

    /**
     * @return list<array<string, mixed>>
     */
    public static function pending(): array
    {
        global $wpdb;
        $rows = $wpdb->get_results('SELECT * FROM ' . self::table() . ' ORDER BY id', ARRAY_A);
        return is_array($rows) ? $rows : [];
    }

    /**
     * Removes queued calls that mention this email (personal-data erasure).
     */
    public static function forgetEmail(string $email): int
    {
        global $wpdb;
        $like = '%' . $wpdb->esc_like(substr((string) wp_json_encode($email), 1, -1)) . '%';
        return (int) $wpdb->query($wpdb->prepare('DELETE FROM ' . self::table() . ' WHERE payload LIKE %s', $like));
    }

    /**
     * Removes every queued call of these devices (personal-data erasure): a trigger queued for a
     * user's device carries only its device id, and resending it after the erasure would store
     * it again.
     *
     * @param list<string> $deviceIds
     */
    public static function forgetDevices(array $deviceIds): int
    {
        global $wpdb;
        $removed = 0;
        foreach (array_unique($deviceIds) as $deviceId) {
            $like = '%' . $wpdb->esc_like('"deviceId":' . (string) wp_json_encode($deviceId)) . '%';
            $removed += (int) $wpdb->query($wpdb->prepare('DELETE FROM ' . self::table() . ' WHERE payload LIKE %s', $like));
        }
        return $removed;
    }
}
