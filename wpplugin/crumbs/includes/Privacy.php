<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * WordPress personal-data exporter and eraser (Tools → Export/Erase Personal Data), answered by
 * the Crumbs server's leadByEmail and eraseLead.
 */
final class Privacy
{
    public function hook(): void
    {
        add_filter('wp_privacy_personal_data_exporters', [$this, 'registerExporter']);
        add_filter('wp_privacy_personal_data_erasers', [$this, 'registerEraser']);
        add_action('admin_init', [$this, 'policyText']);
        add_action('delete_user', [self::class, 'userDeleted'], 10, 3);
        add_action('wpmu_delete_user', [self::class, 'networkUserDeleted'], 10, 2);
    }

    /** Prefix of the options that remember deleted users' ids, by a keyed hash of their email. */
    public const DELETED_USER = 'crumbs_deleted_user_';

    /**
     * Remembers a deleted user's id under a keyed hash of their email: the user's wp-user device
     * is derived from the id, which the privacy tools can no longer look up by email once the
     * account is gone (an erasure request is often run after the account was deleted). Without
     * Identify users that device is on no lead, so its events would stay out of reach.
     *
     * @param mixed $reassign
     * @param mixed $user
     */
    public static function userDeleted(int $userId, $reassign = null, $user = null): void
    {
        $user = $user instanceof \WP_User ? $user : get_userdata($userId);
        if (!$user instanceof \WP_User || (string) $user->user_email === '' || !Options::isConfigured()) {
            return;
        }
        $key = self::deletedUserKey((string) $user->user_email);
        $ids = array_map('intval', (array) get_option($key, []));
        if (!in_array($userId, $ids, true)) {
            $ids[] = $userId;
            update_option($key, $ids, false);
        }
    }

    /**
     * A user deleted from the network: remembered on each of their sites, whose device ids differ.
     *
     * @param mixed $user
     */
    public static function networkUserDeleted(int $userId, $user = null): void
    {
        foreach (get_blogs_of_user($userId) as $blog) {
            switch_to_blog((int) $blog->userblog_id);
            self::userDeleted($userId, null, $user);
            restore_current_blog();
        }
    }

    private static function deletedUserKey(string $email): string
    {
        return self::DELETED_USER . wp_hash(strtolower($email));
    }

    /**
     * @param array<string, mixed> $exporters
     * @return array<string, mixed>
     */
    public function registerExporter(array $exporters): array
    {
        $exporters['crumbs'] = [
            'exporter_friendly_name' => __('Crumbs visitor events', 'crumbs'),
            'callback' => [self::class, 'export'],
        ];
        return $exporters;
    }

    /**
     * @param array<string, mixed> $erasers
     * @return array<string, mixed>
     */
    public function registerEraser(array $erasers): array
    {
        $erasers['crumbs'] = [
            'eraser_friendly_name' => __('Crumbs visitor events', 'crumbs'),
            'callback' => [self::class, 'erase'],
        ];
        return $erasers;
    }

    /**
     * The devices this site made for the person (see ServerEvents): their events are the
     * person's whether or not an identify has tied the device to their lead (a guest commenter's
     * device never is, nor any device while Identify users is off).
     *
     * @return list<string>
     */
    private static function personDevices(string $email): array
    {
        $user = get_user_by('email', $email);
        $ids = array_map('intval', (array) get_option(self::deletedUserKey($email), []));
        if ($user instanceof \WP_User) {
            $ids[] = (int) $user->ID;
        }
        $devices = [];
        // Those made at every address the site has had (see Options::homeUrls()); those of user
        // ids only at its own, not at those of the site it is a copy of (Options::ownHomeUrls()).
        $own = Options::ownHomeUrls();
        foreach (Options::homeUrls() as $home) {
            $devices[] = ServerEvents::emailDeviceId('customer', $email, $home);
            $devices[] = ServerEvents::emailDeviceId('commenter', $email, $home);
            if (!in_array($home, $own, true)) {
                continue;
            }
            foreach (array_unique($ids) as $id) {
                $devices[] = ServerEvents::userDeviceId($id, $home);
            }
        }
        return $devices;
    }

    /**
     * Exports the lead with its timeline, then the events of the person's devices that are not
     * on that lead (personDevices).
     *
     * @return array{data: list<array<string, mixed>>, done: bool}|\WP_Error
     */
    public static function export(string $email, int $page = 1): array|\WP_Error
    {
        if (!Options::isConfigured()) {
            return ['data' => [], 'done' => true];
        }
        // WordPress asks for page 1, 2, ... until done. Each page goes on from where the previous
        // one left (which source, and the cursor in its timeline), and ends when a source has more
        // events than one request brings (EXPORT_PAGE) or when every source is exported.
        $sources = array_merge([null], self::personDevices($email));
        $position = ['source' => 0, 'after' => null];
        if ($page > 1) {
            $cursorKey = self::exportKey($email, $page);
            $position = get_transient($cursorKey);
            if (!is_array($position) || !is_int($position['source'] ?? null) || !array_key_exists($position['source'], $sources)) {
                // WordPress asks for this page only after the previous one answered not done and
                // left it: the transient was lost (an object cache evicted it, or it expired).
                // Answering done would hand over a partial export as if it were complete.
                return new \WP_Error('crumbs_export_lost', __('Crumbs lost track of this export between two pages. Run the export again.', 'crumbs'));
            }
            delete_transient($cursorKey);
        }
        $group = ['group_id' => 'crumbs', 'group_label' => __('Crumbs visitor events', 'crumbs')];
        $data = [];
        $client = Client::fromOptions();
        for ($source = (int) $position['source']; $source < count($sources); $source++) {
            $after = $source === (int) $position['source'] ? $position['after'] : null;
            $after = is_string($after) && $after !== '' ? $after : null;
            try {
                $found = $sources[$source] === null
                    ? self::exportLead($client, $email, $after, $group)
                    : self::exportDevice($client, $sources[$source], $email, $after, $group);
            } catch (ClientError $e) {
                return new \WP_Error('crumbs_export_failed', sprintf(
                    /* translators: %s: error message */
                    __('Crumbs could not export the visitor events: %s', 'crumbs'),
                    self::failure($e)
                ));
            }
            array_push($data, ...$found['data']);
            if ($found['next'] !== '') {
                set_transient(self::exportKey($email, $page + 1), ['source' => $source, 'after' => $found['next']], HOUR_IN_SECONDS);
                return ['data' => $data, 'done' => false];
            }
        }
        return ['data' => $data, 'done' => true];
    }

    private static function exportKey(string $email, int $page): string
    {
        return 'crumbs_export_' . md5(strtolower($email) . '|' . $page);
    }

    /**
     * The lead (on its first page) and a page of its timeline; no data when there is no lead.
     *
     * @param array<string, string> $group
     * @return array{data: list<array<string, mixed>>, next: string}
     * @throws ClientError
     */
    private static function exportLead(Client $client, string $email, ?string $after, array $group): array
    {
        $lead = $client->leadByEmail($email, $after);
        if ($lead === null) {
            return ['data' => [], 'next' => ''];
        }
        $data = [];
        if ($after === null) {
            $devices = array_map(static fn ($d): string => (string) ($d['id'] ?? ''), (array) ($lead['devices'] ?? []));
            $data[] = $group + [
                'item_id' => 'crumbs-lead',
                'data' => [
                    ['name' => __('Email', 'crumbs'), 'value' => (string) ($lead['email'] ?? '')],
                    ['name' => __('Name', 'crumbs'), 'value' => (string) ($lead['name'] ?? '')],
                    ['name' => __('Fields', 'crumbs'), 'value' => self::jsonObject($lead['fields'] ?? null)],
                    ['name' => __('Devices', 'crumbs'), 'value' => implode(', ', $devices)],
                    // The story Crumbs tells of the person's visits (for emails written from it).
                    ['name' => __('Activity summary', 'crumbs'), 'value' => (string) ($lead['narrative'] ?? '')],
                ],
            ];
        }
        return self::exportTimeline((array) ($lead['timeline'] ?? []), $data, $group);
    }

    /**
     * A page of the timeline of one of the person's devices, unless Crumbs does not know it or
     * it is on the person's lead (whose timeline has its events).
     *
     * @param array<string, string> $group
     * @return array{data: list<array<string, mixed>>, next: string}
     * @throws ClientError
     */
    private static function exportDevice(Client $client, string $deviceId, string $email, ?string $after, array $group): array
    {
        $device = $client->deviceTimeline($deviceId, $after);
        if ($device === null || ($device['leadEmail'] !== '' && strtolower($device['leadEmail']) === strtolower($email))) {
            return ['data' => [], 'next' => ''];
        }
        $data = [];
        if ($after === null) {
            $data[] = $group + [
                'item_id' => 'crumbs-device-' . $deviceId,
                'data' => [['name' => __('Device', 'crumbs'), 'value' => $deviceId]],
            ];
        }
        return self::exportTimeline($device['timeline'], $data, $group);
    }

    /**
     * Appends a timeline page's events to $data; next is the cursor of the next page, or ''.
     *
     * @param array<string, mixed> $timeline
     * @param list<array<string, mixed>> $data
     * @param array<string, string> $group
     * @return array{data: list<array<string, mixed>>, next: string}
     */
    private static function exportTimeline(array $timeline, array $data, array $group): array
    {
        foreach ((array) ($timeline['edges'] ?? []) as $edge) {
            $node = (array) ($edge['node'] ?? []);
            $data[] = $group + [
                'item_id' => 'crumbs-event-' . (string) ($node['id'] ?? ''),
                'data' => [
                    ['name' => __('Event', 'crumbs'), 'value' => (string) ($node['code'] ?? '')],
                    ['name' => __('Time', 'crumbs'), 'value' => (string) ($node['occurredAt'] ?? '')],
                    ['name' => __('Page', 'crumbs'), 'value' => (string) ($node['url'] ?? '')],
                    ['name' => __('Properties', 'crumbs'), 'value' => self::jsonObject($node['properties'] ?? null)],
                ],
            ];
        }
        $info = (array) ($timeline['pageInfo'] ?? []);
        $next = (string) ($info['endCursor'] ?? '');
        return ['data' => $data, 'next' => !empty($info['hasNextPage']) ? $next : ''];
    }

    /**
     * JSON of a map as an object: an empty map is {} (PHP decodes {} to an empty array).
     */
    private static function jsonObject(mixed $value): string
    {
        if (!is_array($value) || $value === []) {
            $value = new \stdClass();
        }
        return (string) wp_json_encode($value);
    }

    /**
     * Most pages of one erasure request. A page follows a running erasure for up to PAGE_SECONDS,
     * so an erasure gets at least a quarter of an hour before the eraser stops following it.
     */
    public const ERASE_PAGES = 90;

    /** Seconds one eraser page follows running erasures, or starts new ones, before it answers. */
    public const PAGE_SECONDS = 10;

    /** Pages in a row on which Crumbs may be unavailable before the eraser gives up. */
    public const ERASE_RETRIES = 5;

    /** Seconds a page that found Crumbs unavailable waits before the next page tries again, when Crumbs named no Retry-After. */
    public const RETRY_SECONDS = 2;

    /** Seconds between two looks at a running erasure. */
    private const POLL_SECONDS = 1;

    /**
     * Erases the person's queued calls, then their lead and the devices this site made for them,
     * with their events. An erasure the server has not finished when it answers goes on there:
     * the eraser answers done false, and the next pages follow that same erasure (asking to erase
     * again once it has ended would start a new one that finds nothing) until it is done, then
     * report its complete counts. Crumbs unavailable for now (a 503, no connection) is tried
     * again on the next pages, keeping the counts of what is erased so far; should it stay so,
     * the last page reports those counts with items retained.
     *
     * @return array{items_removed: bool, items_retained: bool, messages: list<string>, done: bool}
     */
    public static function erase(string $email, int $page = 1): array
    {
        $result = ['items_removed' => false, 'items_retained' => false, 'messages' => [], 'done' => true];
        // This request's erasures between its pages: their ids and counts, never the email.
        $key = self::ERASE_STATE . wp_hash(strtolower($email));
        if ($page === 1) {
            self::forgetStaleErasures();
        }
        $state = $page > 1 ? get_option($key) : false;
        $lost = $page > 1 && (!is_array($state) || (int) ($state['expires'] ?? 0) < time());
        if (!is_array($state) || $lost) {
            $state = ['removed' => false, 'erasures' => []];
        }
        // The devices this site made for the person: queued calls of theirs carry only the device
        // id, and a queued identify may not have tied them to the lead yet.
        $devices = self::personDevices($email);
        $forgotten = Queue::forgetEmail($email) + Queue::forgetDevices($devices);
        $state['removed'] = $state['removed'] || $forgotten > 0;
        $result['items_removed'] = $state['removed'];
        if (!Options::isConfigured()) {
            delete_option($key);
            return $result;
        }
        // The lead first, then each device (by a hash of its id: the state keeps no device id).
        $steps = ['lead' => null];
        foreach ($devices as $deviceId) {
            $steps['device-' . wp_hash($deviceId)] = $deviceId;
        }
        [$erasures, $error] = self::eraseUntil(Client::fromOptions(), $email, $steps, $state['erasures'], microtime(true) + self::PAGE_SECONDS);
        $state['erasures'] = $erasures;
        $retries = (int) ($state['retries'] ?? 0);
        if ($error !== null && self::transient($error) && $retries < self::ERASE_RETRIES && $page < self::ERASE_PAGES) {
            // Crumbs is unavailable for now (a 503, a rate limit, no connection): keep what is
            // erased so far and try the failed step again on the next page. An erasure that failed
            // part way stays pending in Crumbs, and asking again joins it with its counts so far.
            $state['retries'] = $retries + 1;
            $state['expires'] = time() + HOUR_IN_SECONDS;
            update_option($key, $state, false);
            // As long as Crumbs asked (Retry-After, 5 s for a store fault), within a page's time.
            sleep($error->retryAfter > 0 ? min($error->retryAfter, self::PAGE_SECONDS) : self::RETRY_SECONDS);
            $result['done'] = false;
            return $result;
        }
        if ($error === null) {
            $state['retries'] = 0;
        }
        $running = false;
        foreach (array_keys($steps) as $step) {
            $running = $running || !($erasures[$step]['done'] ?? false);
        }
        if ($error === null && $running && $page < self::ERASE_PAGES) {
            $state['expires'] = time() + HOUR_IN_SECONDS;
            // An option, not a transient: an object cache may evict a transient between two pages,
            // and erasing again after the erasure ended would find nothing to count.
            update_option($key, $state, false);
            $result['done'] = false;
            return $result;
        }
        delete_option($key);
        if ($lost) {
            $result['messages'][] = __('Crumbs lost track of this erasure between its pages (more than an hour passed), so the counts here may leave out what it erased before; Crumbs\' audit log has the receipt of each erasure.', 'crumbs');
        }
        if (!$running) {
            // Their devices are erased: nothing is left to find by the deleted accounts' ids.
            delete_option(self::deletedUserKey($email));
        }

        // Every step's counts, those of erasures still running or cut short included.
        $leadErased = (bool) ($erasures['lead']['erased'] ?? false);
        $events = (int) ($erasures['lead']['deletedEvents'] ?? 0);
        foreach ($erasures as $step => $gone) {
            if ($step !== 'lead' && $gone['erased']) {
                $result['items_removed'] = true;
                $events += $gone['deletedEvents'];
            }
        }
        if ($error !== null) {
            $result['items_removed'] = $result['items_removed'] || $leadErased || $events > 0;
            $result['items_retained'] = true;
            if ($leadErased || $events > 0) {
                $result['messages'][] = $leadErased
                    ? sprintf(
                        /* translators: %d: number of events */
                        _n('Crumbs erased the lead and %d event before the failure below; the rest is still in Crumbs.', 'Crumbs erased the lead and %d events before the failure below; the rest is still in Crumbs.', $events, 'crumbs'),
                        $events
                    )
                    : sprintf(
                        /* translators: %d: number of events */
                        _n('Crumbs erased %d event of the person\'s devices before the failure below; the rest is still in Crumbs.', 'Crumbs erased %d events of the person\'s devices before the failure below; the rest is still in Crumbs.', $events, 'crumbs'),
                        $events
                    );
            }
            $result['messages'][] = sprintf(
                /* translators: %s: error message */
                __('Crumbs could not erase the visitor events: %s', 'crumbs'),
                self::failure($error)
            );
            return $result;
        }
        if ($running) {
            // The last page: the erasure goes on in Crumbs, which writes its receipt when done.
            $result['items_removed'] = $result['items_removed'] || $leadErased || $events > 0;
            $result['items_retained'] = true;
            $result['messages'][] = sprintf(
                /* translators: %d: number of events erased so far */
                _n(
                    'Crumbs is still erasing the visitor events (%d event erased so far) and goes on by itself. Run this erasure request again later to see it finished.',
                    'Crumbs is still erasing the visitor events (%d events erased so far) and goes on by itself. Run this erasure request again later to see it finished.',
                    $events,
                    'crumbs'
                ),
                $events
            );
            return $result;
        }
        if ($leadErased) {
            $result['items_removed'] = true;
            $result['messages'][] = sprintf(
                /* translators: %d: number of events */
                _n('Crumbs erased the lead and %d event.', 'Crumbs erased the lead and %d events.', $events, 'crumbs'),
                $events
            );
        } elseif ($events > 0) {
            $result['messages'][] = sprintf(
                /* translators: %d: number of events */
                _n('Crumbs erased %d event of the person\'s devices.', 'Crumbs erased %d events of the person\'s devices.', $events, 'crumbs'),
                $events
            );
        }
        return $result;
    }

    /**
     * Whether a failure is Crumbs being unavailable for now, worth trying again in a moment: not
     * a refused key or a refused request, which another try cannot change.
     */
    private static function transient(ClientError $e): bool
    {
        return $e->retryable && !in_array($e->errorCode, ['UNAUTHENTICATED', 'FORBIDDEN'], true);
    }

    /**
     * Why a privacy request failed, in words the site owner can act on: Crumbs' own answer to a
     * missing or refused key ("send the secret key as Authorization: Bearer <key>") names neither
     * the setting nor where it is. Escaped: WordPress's privacy tools insert the eraser's messages
     * and the exporter's error as HTML, and Crumbs' answer or the transport's report (which may
     * quote what the other end sent, such as a certificate's subject) is no markup of ours.
     */
    private static function failure(ClientError $e): string
    {
        return esc_html(self::failureText($e));
    }

    private static function failureText(ClientError $e): string
    {
        return match (true) {
            $e->errorCode === 'UNAUTHENTICATED' && Options::secret() === '' => __('the app secret key is not saved in Settings → Crumbs; save it and run the request again.', 'crumbs'),
            $e->errorCode === 'UNAUTHENTICATED' => __('Crumbs did not accept the app id and secret key saved in Settings → Crumbs (the key may have been rotated); save the current key and run the request again.', 'crumbs'),
            default => $e->forAdministrators(),
        };
    }

    /** Prefix of the options that keep an erasure request's state between its pages. */
    public const ERASE_STATE = 'crumbs_erase_';

    /**
     * Removes the state of erasure requests left unfinished (their page was never asked for).
     */
    private static function forgetStaleErasures(): void
    {
        global $wpdb;
        $names = $wpdb->get_col($wpdb->prepare(
            "SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE %s",
            $wpdb->esc_like(self::ERASE_STATE) . '%'
        ));
        foreach ((array) $names as $name) {
            $state = get_option((string) $name);
            if (!is_array($state) || (int) ($state['expires'] ?? 0) < time()) {
                delete_option((string) $name);
            }
        }
    }

    /**
     * Takes the steps' erasures one by one from where the earlier pages left them: it follows a
     * running one until it is done or until $until, and starts the next only before $until. It
     * stops at the first one not done (one that answers not done was waited for by the server),
     * and at the first failure, which it returns with the erasures so far.
     *
     * @param array<string, string|null> $steps Device ids by step name; null for the lead.
     * @param array<string, array{erased: bool, deletedEvents: int, done: bool, erasureId: string}> $erasures
     * @return array{0: array<string, array{erased: bool, deletedEvents: int, done: bool, erasureId: string}>, 1: ClientError|null}
     */
    private static function eraseUntil(Client $client, string $email, array $steps, array $erasures, float $until): array
    {
        foreach ($steps as $step => $deviceId) {
            $erasure = $erasures[$step] ?? null;
            if ($erasure !== null && $erasure['done']) {
                continue;
            }
            try {
                if ($erasure !== null && $erasure['erasureId'] !== '') {
                    $erasure = self::follow($client, $erasure['erasureId'], $until);
                } elseif (microtime(true) < $until) {
                    $erasure = $deviceId === null ? $client->eraseLead($email) : $client->eraseDevice($deviceId);
                } else {
                    return [$erasures, null]; // the next page starts it
                }
            } catch (ClientError $e) {
                return [$erasures, $e];
            }
            $erasures[$step] = $erasure;
            if (!$erasure['done']) {
                return [$erasures, null];
            }
        }
        return [$erasures, null];
    }

    /**
     * The running erasure's counts once it is done, or as they stand at $until.
     *
     * @return array{erased: bool, deletedEvents: int, done: bool, erasureId: string}
     * @throws ClientError
     */
    private static function follow(Client $client, string $erasureId, float $until): array
    {
        while (true) {
            $erasure = $client->followErasure($erasureId);
            if ($erasure['done'] || microtime(true) + self::POLL_SECONDS > $until) {
                return $erasure;
            }
            sleep(self::POLL_SECONDS);
        }
    }

    public function policyText(): void
    {
        if (!function_exists('wp_add_privacy_policy_content')) {
            return;
        }
        wp_add_privacy_policy_content('Crumbs', wp_kses_post(wpautop(__(
            'This site records visitor events (pages viewed, buttons clicked, forms submitted) with Crumbs, on a server the site owner runs. A random device identifier is kept in your browser. When you log in or register, your events may be linked to your email address; when you log out, or someone else logs in on the same browser, your browser gets a new identifier, so that whoever uses it next is not linked to you. To tell the people who log in on a browser apart, the browser also keeps a coded form of the account it was last linked to, from which neither the account nor your email address can be read. You can ask for an export or erasure of this data.',
            'crumbs'
        ))));
    }
}
