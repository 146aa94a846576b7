<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * What the site owner needs to know about the delivery of server-side events: why queued events
 * are waiting (the last failure of a flush, until a flush delivers again), and the last event
 * Crumbs refused for good or the queue gave up on. Settings → Crumbs shows it, and the dashboard
 * of those who may change the settings shows that events are waiting. One option, not autoloaded,
 * written only when it changes.
 */
final class Delivery
{
    public const OPTION = 'crumbs_delivery';

    public function hook(): void
    {
        // The settings that made events wait have changed: send them now, not after their backoff.
        add_action('update_option_' . Options::SETTINGS, [self::class, 'settingsChanged']);
        add_action('update_option_' . Options::SECRET, [self::class, 'settingsChanged']);
        add_action('admin_notices', [self::class, 'dashboardNotice']);
    }

    /**
     * cron_late: when the queue's WP-Cron event was due, as found by the page load that sent its
     * rows instead (see Queue::whenCronIsLate), until WP-Cron runs it again.
     *
     * @return array{problem: array{code: string, message: string, at: int}|null, dropped: array{code: string, message: string, kind: string, event: string, expired: bool, at: int}|null, cron_late: int|null}
     */
    public static function status(): array
    {
        $saved = get_option(self::OPTION, []);
        $saved = is_array($saved) ? $saved : [];
        return [
            'problem' => is_array($saved['problem'] ?? null) ? $saved['problem'] : null,
            'dropped' => is_array($saved['dropped'] ?? null) ? $saved['dropped'] : null,
            'cron_late' => is_int($saved['cron_late'] ?? null) ? $saved['cron_late'] : null,
        ];
    }

    /**
     * @param array{problem: mixed, dropped: mixed, cron_late: mixed} $status
     */
    private static function save(array $status): void
    {
        if ($status !== self::status()) {
            update_option(self::OPTION, $status, false);
        }
    }

    /**
     * After a flush that waited for its answers: its last failure that keeps rows queued, or,
     * when it delivered without one, nothing wrong any more.
     *
     * @param array{sent: int, failed: int, dropped: int} $stats
     */
    public static function afterFlush(array $stats, ?ClientError $failure): void
    {
        $status = self::status();
        if ($failure !== null) {
            $status['problem'] = ['code' => $failure->errorCode, 'message' => $failure->forAdministrators(), 'at' => time()];
        } elseif ($stats['sent'] > 0) {
            $status['problem'] = null;
        }
        self::save($status);
    }

    /**
     * A queued row removed without being stored: refused for good, or given up after Queue::MAX_AGE.
     *
     * @param array<string, mixed> $row
     */
    public static function dropped(array $row, ClientError $error, bool $expired): void
    {
        $input = json_decode((string) ($row['payload'] ?? ''), true);
        $status = self::status();
        $status['dropped'] = [
            'code' => $error->errorCode,
            'message' => $error->forAdministrators(),
            'kind' => (string) ($row['kind'] ?? ''),
            'event' => is_array($input) ? (string) ($input['code'] ?? '') : '',
            'expired' => $expired,
            'at' => time(),
        ];
        self::save($status);
    }

    public static function settingsChanged(): void
    {
        self::save(['problem' => null, 'dropped' => null] + self::status());
        Queue::retryNow();
    }

    /**
     * The queue's WP-Cron event, due at $due, had not run CRON_LATE later: WP-Cron does not run
     * here. Keeps the earliest such time until WP-Cron runs again.
     */
    public static function noteCronLate(int $due): void
    {
        $status = self::status();
        if ($status['cron_late'] === null) {
            $status['cron_late'] = $due;
            self::save($status);
        }
    }

    /**
     * WP-Cron runs the queue's event: it works here (again).
     */
    public static function cronRan(): void
    {
        $status = self::status();
        $status['cron_late'] = null;
        self::save($status);
    }

    /**
     * The notices of Settings → Crumbs, escaped; '' when all is well.
     */
    public static function notices(): string
    {
        $status = self::status();
        $html = '';
        $problem = $status['problem'];
        if ($problem !== null && Queue::count() > 0) {
            $waiting = Queue::count();
            $html .= '<div class="notice notice-error inline" id="crumbs-delivery-problem"><p><strong>'
                . esc_html__('Server-side events are not reaching Crumbs.', 'crumbs') . '</strong> '
                . esc_html(self::advice((string) $problem['code'])) . '</p><p>'
                . esc_html(sprintf(
                    /* translators: 1: error code, 2: the server's or the network's message, 3: how long ago, e.g. "5 mins" */
                    __('Last answer: %1$s: %2$s (%3$s ago).', 'crumbs'),
                    (string) $problem['code'],
                    (string) $problem['message'],
                    human_time_diff((int) $problem['at'])
                )) . ' '
                . esc_html(sprintf(
                    /* translators: %d: number of queued server-side events */
                    _n(
                        '%d server-side event is waiting in WordPress. It is sent once Crumbs takes it, and kept for up to 7 days after it was queued.',
                        '%d server-side events are waiting in WordPress. They are sent once Crumbs takes them, each kept for up to 7 days after it was queued.',
                        $waiting,
                        'crumbs'
                    ),
                    $waiting
                )) . '</p></div>';
        }
        if ($status['cron_late'] !== null || Queue::cronIsLate()) {
            $html .= '<div class="notice notice-warning inline" id="crumbs-cron-late"><p><strong>'
                . esc_html__('WP-Cron does not run on this site.', 'crumbs') . '</strong> '
                . esc_html__('DISABLE_WP_CRON is set in wp-config.php, and no system cron job ran wp-cron.php within 20 minutes of a retry of server-side events being due.', 'crumbs')
                . ' '
                . esc_html__('Server-side events are sent when they happen and confirmed at once; those that could not be sent then are retried at the end of a page load instead, about every 20 minutes while the site has visitors.', 'crumbs')
                . '</p><p>'
                . esc_html(sprintf(
                    /* translators: %s: the wp-cron.php URL */
                    __('To retry them on time, run WP-Cron from a system cron job every 5 minutes (for example: curl -s %s) or with WP-CLI (wp cron event run --due-now).', 'crumbs'),
                    site_url('wp-cron.php')
                ))
                . '</p></div>';
        }
        $dropped = $status['dropped'];
        if ($dropped !== null && (int) $dropped['at'] > time() - Queue::MAX_AGE) {
            $what = $dropped['kind'] === 'identify'
                ? __('an identify', 'crumbs')
                /* translators: %s: event code */
                : sprintf(__('an event "%s"', 'crumbs'), (string) $dropped['event']);
            $html .= '<div class="notice notice-warning inline" id="crumbs-delivery-dropped"><p>'
                . esc_html(sprintf(
                    $dropped['expired']
                        /* translators: 1: "an event "code"" or "an identify", 2: how long ago, 3: error code, 4: message */
                        ? __('Crumbs did not take %1$s for 7 days, so WordPress gave up on it %2$s ago. Last answer: %3$s: %4$s', 'crumbs')
                        /* translators: 1: "an event "code"" or "an identify", 2: how long ago, 3: error code, 4: message */
                        : __('Crumbs refused %1$s for good %2$s ago, and it was not kept: %3$s: %4$s', 'crumbs'),
                    $what,
                    human_time_diff((int) $dropped['at']),
                    (string) $dropped['code'],
                    (string) $dropped['message']
                )) . ' '
                . esc_html(in_array($dropped['code'], ['UNKNOWN_EVENT_CODE', 'EVENT_DISABLED'], true)
                    ? __('Define and enable that code in Crumbs, or change it under Server-side events below.', 'crumbs')
                    : '')
                . '</p></div>';
        }
        return $html;
    }

    /**
     * What the site owner can do about a failure that keeps events queued.
     */
    private static function advice(string $code): string
    {
        return match (true) {
            $code === 'UNAUTHENTICATED' => __('Crumbs did not accept the app secret key: paste the app\'s current secret key below (a rotated key replaces the old one).', 'crumbs'),
            $code === 'NOT_FOUND' => __('Crumbs does not know this app id, or the server URL is not the Crumbs server\'s address: check both below.', 'crumbs'),
            $code === 'UNSAFE_URL' => __('Ask a network administrator to save the server URL, or use a public address.', 'crumbs'),
            $code === 'NOT_CONFIGURED' => __('Set the server URL and the app id below.', 'crumbs'),
            $code === 'NETWORK' => __('The Crumbs server could not be reached; WordPress keeps trying.', 'crumbs'),
            $code === 'HTTP_200' || str_starts_with($code, 'HTTP_3') || str_starts_with($code, 'HTTP_4') => __('The server URL does not answer as a Crumbs server: check it below.', 'crumbs'),
            default => __('WordPress keeps trying.', 'crumbs'),
        };
    }

    /**
     * On the dashboard of those who may change the settings: events are waiting, see Settings → Crumbs.
     */
    public static function dashboardNotice(): void
    {
        $screen = function_exists('get_current_screen') ? get_current_screen() : null;
        if ($screen === null || !in_array($screen->id, ['dashboard', 'plugins'], true) || !current_user_can('manage_options')) {
            return;
        }
        if (self::status()['problem'] === null || Queue::count() === 0) {
            return;
        }
        echo '<div class="notice notice-error"><p>'
            . esc_html__('Crumbs: server-side events are not reaching the Crumbs server and are waiting in WordPress.', 'crumbs')
            . ' <a href="' . esc_url(admin_url('options-general.php?page=crumbs')) . '">'
            . esc_html__('See Settings → Crumbs', 'crumbs') . '</a></p></div>';
    }
}
