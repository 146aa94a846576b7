<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Durable outbox for server-side events. Hooks only insert a row; delivery happens after the
 * response (shutdown) and from WP-Cron with backoff while the Crumbs server is unreachable,
 * through the JSON API, or at the end of a page load where WP-Cron does not run. Each event
 * carries a messageId, so a row sent twice is stored once by Crumbs.
 */
final class Queue
{
    public const CRON_HOOK = 'crumbs_flush_queue';
    public const DB_VERSION = '1';
    public const DB_VERSION_OPTION = 'crumbs_db_version';
    /** Rows per flush from WP-Cron; events among them go in one JSON API request. */
    public const BATCH = 100;
    /** How long a row that keeps failing for now (server down, rate limited) is retried. */
    public const MAX_AGE = 7 * DAY_IN_SECONDS;
    /**
     * How late the queue's WP-Cron event may be, on a site with DISABLE_WP_CRON, before the
     * plugin takes it that no system cron job runs WP-Cron and sends the due rows itself at the
     * end of a page load. A system cron every 15 minutes stays ahead of it.
     */
    public const CRON_LATE = 20 * MINUTE_IN_SECONDS;

    private static bool $flushOnShutdown = false;

    /** @var list<int> Ids of the rows this flush delivered. */
    private static array $delivered = [];

    /** The transport error of this flush's first request that could not reach the server. */
    private static ?ClientError $unreachable = null;

    /** The last failure of this flush that keeps a row for a retry. */
    private static ?ClientError $lastFailure = null;

    /** When this flush stops starting requests (microtime), or null for no limit. */
    private static ?float $until = null;

    public function hook(): void
    {
        add_action(self::CRON_HOOK, [self::class, 'runCron']);
        add_action('shutdown', [self::class, 'whenCronIsLate'], 101);
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
     * @param array<string, mixed> $input The event or identify input without appId.
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
     * and confirmed at once. Elsewhere the visitor is still waiting: each request waits at most a
     * second for its answer and none starts after the first second; rows not sent stay due, for
     * WP-Cron. (The first send used to go with blocking => false and be confirmed by WP-Cron a
     * minute later; WordPress's cURL transport waits for the answer up to the timeout all the
     * same, and on a site where WP-Cron does not run nothing was ever confirmed.)
     */
    public static function flushAfterResponse(): void
    {
        if (function_exists('fastcgi_finish_request') && !defined('WP_CLI')) {
            fastcgi_finish_request();
            self::flush(20, 3.0);
            return;
        }
        self::flush(20, 1.0, 1.0);
    }

    /**
     * Whether WP-Cron is not running here: DISABLE_WP_CRON is set and the queue's event is more
     * than CRON_LATE overdue. Where WP-Cron is on, a page load that finds an event due starts it
     * (at init), so an event late on a site without visitors is no sign of WP-Cron not running.
     * Read from the autoloaded cron option, without a query.
     */
    public static function cronIsLate(): bool
    {
        return self::isLate(wp_next_scheduled(self::CRON_HOOK));
    }

    private static function isLate(int|false $next): bool
    {
        return $next !== false && defined('DISABLE_WP_CRON') && DISABLE_WP_CRON && $next < time() - self::CRON_LATE;
    }

    /**
     * Runs at the end of every page load: where WP-Cron does not run (see cronIsLate), it does
     * the queue's overdue WP-Cron work as flushAfterResponse does. The late event is replaced
     * first, so that page loads running at the same time do not all send; a page load that
     * queued an event has flushed (and replaced it) already.
     */
    public static function whenCronIsLate(): void
    {
        if (wp_doing_cron() || !self::cronIsLate()) {
            return;
        }
        self::scheduleNext();
        self::flushAfterResponse();
    }

    public static function runCron(): void
    {
        Delivery::cronRan();
        self::flush(self::BATCH, 10.0);
    }

    /**
     * Sends due rows through the JSON API: consecutive events in one request, each identify on
     * its own. Delivered rows and permanently refused ones are removed; the rest are retried
     * later with exponential backoff. Once the server cannot be reached, the rows left fail with
     * that error without a request each: a server that is down or hangs costs one timeout per
     * flush, not one per row. With $budget (seconds), no request starts after it has passed and
     * the rows left stay as they are. Whatever stays queued has a WP-Cron event due by the time
     * it is (see scheduleNext).
     *
     * @return array{sent: int, failed: int, dropped: int}
     */
    public static function flush(int $limit = self::BATCH, float $timeout = 10.0, ?float $budget = null): array
    {
        global $wpdb;
        $stats = ['sent' => 0, 'failed' => 0, 'dropped' => 0];
        self::$unreachable = null;
        self::$lastFailure = null;
        self::$until = $budget === null ? null : microtime(true) + $budget;
        $table = self::table();
        $rows = $wpdb->get_results($wpdb->prepare(
            "SELECT * FROM {$table} WHERE next_attempt_at <= %s ORDER BY id LIMIT %d",
            gmdate('Y-m-d H:i:s'),
            $limit
        ), ARRAY_A);
        if (is_array($rows) && $rows !== []) {
            $client = Client::fromOptions($timeout);
            $events = [];
            foreach ($rows as $row) {
                if ($row['kind'] !== 'identify') {
                    $events[] = $row;
                    continue;
                }
                self::sendEvents($client, $events, $stats);
                $events = [];
                if (self::outOfTime()) {
                    continue;
                }
                if (self::$unreachable !== null) {
                    self::settle($row, self::$unreachable, $stats);
                    continue;
                }
                try {
                    $client->identify(self::input($row));
                    self::settle($row, null, $stats);
                } catch (ClientError $e) {
                    self::noteUnreachable($e);
                    // An identify's refusal of its own input (its email) is final; anything else
                    // refused the request, not the identify.
                    $own = ($e->errorCode === 'BAD_USER_INPUT' && $e->field !== 'app_id') || $e->errorCode === 'PAYLOAD_TOO_LARGE';
                    self::settle($row, $own ? $e : self::held($e), $stats);
                }
            }
            self::sendEvents($client, $events, $stats);
            Delivery::afterFlush($stats, self::$lastFailure);
            if (self::$delivered !== []) {
                $wpdb->query('DELETE FROM ' . $table . ' WHERE id IN (' . implode(',', self::$delivered) . ')');
                self::$delivered = [];
            }
        }
        self::scheduleNext();
        return $stats;
    }

    /**
     * @param list<array<string, mixed>> $rows
     * @param array{sent: int, failed: int, dropped: int} $stats
     */
    private static function sendEvents(Client $client, array $rows, array &$stats): void
    {
        if ($rows === [] || self::outOfTime()) {
            return;
        }
        try {
            if (self::$unreachable !== null) {
                throw self::$unreachable;
            }
            $outcomes = $client->events(array_map([self::class, 'input'], $rows));
        } catch (ClientError $e) {
            self::noteUnreachable($e);
            // The request failed as a whole: nothing was said about the events themselves.
            $outcomes = array_fill(0, count($rows), self::held($e));
        }
        foreach ($rows as $i => $row) {
            self::settle($row, $outcomes[$i] ?? null, $stats);
        }
    }

    /**
     * A failure of a whole request as a row's outcome: retried like an unreachable server. A
     * refused key (UNAUTHENTICATED), an unknown app (NOT_FOUND), a server URL that redirects or
     * answers no Crumbs JSON: these say the settings are wrong, not the events, which wait until
     * the site owner fixes them (Settings → Crumbs says so) instead of being dropped.
     */
    private static function held(ClientError $error): ClientError
    {
        return $error->retryable ? $error : new ClientError($error->getMessage(), $error->errorCode, true, $error->field, $error->detail);
    }

    private static function noteUnreachable(ClientError $error): void
    {
        if ($error->errorCode === 'NETWORK') {
            self::$unreachable = $error;
        }
    }

    private static function outOfTime(): bool
    {
        return self::$until !== null && microtime(true) >= self::$until;
    }

    /**
     * The queued input of a row, with properties and fields as JSON objects.
     *
     * @param array<string, mixed> $row
     * @return array<string, mixed>
     */
    private static function input(array $row): array
    {
        $input = json_decode((string) $row['payload'], true);
        return Client::jsonInput(is_array($input) ? $input : []);
    }

    /**
     * Records a row's outcome: stored (removed), failed for now (retried with backoff until
     * stored, for up to MAX_AGE after it was queued), or refused for good (removed, and reported
     * through crumbs_event_dropped).
     *
     * @param array<string, mixed> $row
     * @param array{sent: int, failed: int, dropped: int} $stats
     */
    private static function settle(array $row, ?ClientError $error, array &$stats): void
    {
        global $wpdb;
        if ($error === null) {
            // Removed together at the end of the flush (one DELETE).
            self::$delivered[] = (int) $row['id'];
            $stats['sent']++;
            return;
        }
        $queued = strtotime((string) $row['created_at'] . ' UTC');
        if ($error->retryable && ($queued === false || $queued > time() - self::MAX_AGE)) {
            self::retryLater($row, $error->errorCode . ': ' . $error->getMessage() . ($error->detail !== '' ? ' (' . $error->detail . ')' : ''));
            self::$lastFailure = $error;
            $stats['failed']++;
            return;
        }
        $wpdb->delete(self::table(), ['id' => (int) $row['id']], ['%d']);
        $stats['dropped']++;
        Delivery::dropped($row, $error, $error->retryable);
        do_action('crumbs_event_dropped', $row, $error);
    }

    /**
     * @param array<string, mixed> $row
     */
    private static function retryLater(array $row, string $error): void
    {
        global $wpdb;
        $attempts = (int) $row['attempts'] + 1;
        $delay = min(60 * (2 ** min($attempts - 1, 10)), 6 * HOUR_IN_SECONDS);
        $wpdb->update(
            self::table(),
            ['attempts' => $attempts, 'next_attempt_at' => gmdate('Y-m-d H:i:s', time() + $delay), 'last_error' => $error],
            ['id' => (int) $row['id']],
            ['%d', '%s', '%s'],
            ['%d']
        );
    }

    /**
     * Makes sure WP-Cron runs by the time the earliest queued row is due. Runs after every flush,
     * the cron's own included, so no row is stranded: an existing event that comes earlier is
     * kept (and schedules the next one when it has run); one that comes more than 30 s later is
     * moved up; one that WP-Cron is not running (see cronIsLate) is replaced (and Settings →
     * Crumbs says so).
     */
    public static function scheduleNext(): void
    {
        global $wpdb;
        $due = $wpdb->get_var('SELECT MIN(next_attempt_at) FROM ' . self::table());
        if ($due === null) {
            // Nothing queued: no WP-Cron event is needed.
            wp_clear_scheduled_hook(self::CRON_HOOK);
            return;
        }
        $at = max(time(), (int) strtotime($due . ' UTC'));
        $next = wp_next_scheduled(self::CRON_HOOK);
        if ($next !== false && self::isLate($next)) {
            Delivery::noteCronLate($next);
        } elseif ($next !== false && $next <= $at + 30) {
            return;
        }
        if ($next !== false) {
            wp_unschedule_event($next, self::CRON_HOOK);
        }
        wp_schedule_single_event($at, self::CRON_HOOK);
    }

    /**
     * Makes every queued row due now and WP-Cron run for them: the settings that made them wait
     * (the server URL, the app id, the secret key) have just changed, so they need not wait out
     * their backoff (up to 6 hours) once the fix is saved.
     */
    public static function retryNow(): void
    {
        global $wpdb;
        $now = gmdate('Y-m-d H:i:s');
        $table = self::table();
        $wpdb->query($wpdb->prepare("UPDATE {$table} SET next_attempt_at = %s WHERE next_attempt_at > %s", $now, $now));
        self::scheduleNext();
    }

    public static function count(): int
    {
        global $wpdb;
        return (int) $wpdb->get_var('SELECT COUNT(*) FROM ' . self::table());
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
     * Removes queued calls that mention this email (personal-data erasure): a JSON string that is
     * the email, in any letter case (the table's collation), not one that merely contains it
     * (erasing ann@example.co must not drop joann@example.com's calls).
     */
    public static function forgetEmail(string $email): int
    {
        global $wpdb;
        $like = '%' . $wpdb->esc_like((string) wp_json_encode($email)) . '%';
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
