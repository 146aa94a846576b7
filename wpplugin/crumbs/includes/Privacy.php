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
     * @return array{data: list<array<string, mixed>>, done: bool}|\WP_Error
     */
    public static function export(string $email, int $page = 1): array|\WP_Error
    {
        if (!Options::isConfigured()) {
            return ['data' => [], 'done' => true];
        }
        // WordPress asks for page 1, 2, ... until done; each page is one page of the timeline,
        // continued from the cursor the previous page left.
        $cursorKey = 'crumbs_export_' . md5(strtolower($email) . '|' . $page);
        $after = null;
        if ($page > 1) {
            $after = get_transient($cursorKey);
            if (!is_string($after) || $after === '') {
                return ['data' => [], 'done' => true];
            }
            delete_transient($cursorKey);
        }
        try {
            $lead = Client::fromOptions()->leadByEmail($email, $after);
        } catch (ClientError $e) {
            return new \WP_Error('crumbs_export_failed', sprintf(
                /* translators: %s: error message */
                __('Crumbs could not export the visitor events: %s', 'crumbs'),
                $e->getMessage()
            ));
        }
        if ($lead === null) {
            return ['data' => [], 'done' => true];
        }
        $group = ['group_id' => 'crumbs', 'group_label' => __('Crumbs visitor events', 'crumbs')];
        $data = [];
        if ($page === 1) {
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
        foreach ((array) ($lead['timeline']['edges'] ?? []) as $edge) {
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
        $info = (array) ($lead['timeline']['pageInfo'] ?? []);
        $next = (string) ($info['endCursor'] ?? '');
        if (!empty($info['hasNextPage']) && $next !== '') {
            set_transient('crumbs_export_' . md5(strtolower($email) . '|' . ($page + 1)), $next, HOUR_IN_SECONDS);
            return ['data' => $data, 'done' => false];
        }
        return ['data' => $data, 'done' => true];
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
     * @return array{items_removed: bool, items_retained: bool, messages: list<string>, done: bool}
     */
    public static function erase(string $email, int $page = 1): array
    {
        $result = ['items_removed' => false, 'items_retained' => false, 'messages' => [], 'done' => true];
        // The devices this site made for the person: queued calls of theirs carry only the device
        // id, and a queued identify may not have tied them to the lead yet.
        $devices = [ServerEvents::emailDeviceId('customer', $email)];
        $user = get_user_by('email', $email);
        if ($user instanceof \WP_User) {
            $devices[] = ServerEvents::userDeviceId((int) $user->ID);
        }
        $forgotten = Queue::forgetEmail($email) + Queue::forgetDevices($devices);
        $result['items_removed'] = $forgotten > 0;
        if (!Options::isConfigured()) {
            return $result;
        }
        try {
            $client = Client::fromOptions();
            $erased = $client->eraseLead($email);
            foreach ($devices as $deviceId) {
                $gone = $client->eraseDevice($deviceId);
                if ($gone['erased']) {
                    $result['items_removed'] = true;
                    $erased['deletedEvents'] += $gone['deletedEvents'];
                }
            }
        } catch (ClientError $e) {
            $result['items_retained'] = true;
            $result['messages'][] = sprintf(
                /* translators: %s: error message */
                __('Crumbs could not erase the visitor events: %s', 'crumbs'),
                $e->getMessage()
            );
            return $result;
        }
        if ($erased['erased']) {
            $result['items_removed'] = true;
            $result['messages'][] = sprintf(
                /* translators: %d: number of events */
                _n('Crumbs erased the lead and %d event.', 'Crumbs erased the lead and %d events.', $erased['deletedEvents'], 'crumbs'),
                $erased['deletedEvents']
            );
        } elseif ($erased['deletedEvents'] > 0) {
            $result['messages'][] = sprintf(
                /* translators: %d: number of events */
                _n('Crumbs erased %d event of the person\'s devices.', 'Crumbs erased %d events of the person\'s devices.', $erased['deletedEvents'], 'crumbs'),
                $erased['deletedEvents']
            );
        }
        return $result;
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
