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
        if (!Options::isConfigured() || $page > 1) {
            return ['data' => [], 'done' => true];
        }
        try {
            $lead = Client::fromOptions()->leadByEmail($email);
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
        $devices = array_map(static fn ($d): string => (string) ($d['id'] ?? ''), (array) ($lead['devices'] ?? []));
        $data = [$group + [
            'item_id' => 'crumbs-lead',
            'data' => [
                ['name' => __('Email', 'crumbs'), 'value' => (string) ($lead['email'] ?? '')],
                ['name' => __('Name', 'crumbs'), 'value' => (string) ($lead['name'] ?? '')],
                ['name' => __('Fields', 'crumbs'), 'value' => (string) wp_json_encode($lead['fields'] ?? new \stdClass())],
                ['name' => __('Devices', 'crumbs'), 'value' => implode(', ', $devices)],
            ],
        ]];
        foreach ((array) ($lead['timeline']['edges'] ?? []) as $i => $edge) {
            $node = (array) ($edge['node'] ?? []);
            $data[] = $group + [
                'item_id' => 'crumbs-event-' . $i,
                'data' => [
                    ['name' => __('Event', 'crumbs'), 'value' => (string) ($node['code'] ?? '')],
                    ['name' => __('Time', 'crumbs'), 'value' => (string) ($node['occurredAt'] ?? '')],
                    ['name' => __('Page', 'crumbs'), 'value' => (string) ($node['url'] ?? '')],
                    ['name' => __('Properties', 'crumbs'), 'value' => (string) wp_json_encode($node['properties'] ?? new \stdClass())],
                ],
            ];
        }
        return ['data' => $data, 'done' => true];
    }

    /**
     * @return array{items_removed: bool, items_retained: bool, messages: list<string>, done: bool}
     */
    public static function erase(string $email, int $page = 1): array
    {
        $result = ['items_removed' => false, 'items_retained' => false, 'messages' => [], 'done' => true];
        $result['items_removed'] = Queue::forgetEmail($email) > 0;
        if (!Options::isConfigured()) {
            return $result;
        }
        try {
            $erased = Client::fromOptions()->eraseLead($email);
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
        }
        return $result;
    }

    public function policyText(): void
    {
        if (!function_exists('wp_add_privacy_policy_content')) {
            return;
        }
        wp_add_privacy_policy_content('Crumbs', wp_kses_post(wpautop(__(
            'This site records visitor events (pages viewed, buttons clicked, forms submitted) with Crumbs, on a server the site owner runs. A random device identifier is kept in your browser. When you log in or register, your events may be linked to your email address. You can ask for an export or erasure of this data.',
            'crumbs'
        ))));
    }
}
