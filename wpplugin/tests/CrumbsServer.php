<?php

namespace Crumbs\WordPress\Tests;

/**
 * Asks the real Crumbs server (started by wordpress_test.go) what it recorded.
 */
final class CrumbsServer
{
    public static function url(): string
    {
        return (string) getenv('CRUMBS_URL');
    }

    public static function appId(): string
    {
        return (string) getenv('CRUMBS_APP_ID');
    }

    public static function secret(): string
    {
        return (string) getenv('CRUMBS_SECRET');
    }

    public static function available(): bool
    {
        return self::url() !== '' && self::appId() !== '' && self::secret() !== '';
    }

    /**
     * @param array<string, mixed> $variables
     * @return array<string, mixed> The whole JSON answer (data and errors).
     */
    public static function graphql(string $query, array $variables = []): array
    {
        $response = wp_remote_post(self::url() . '/graphql', [
            // Checks read like a dashboard: with a signed-in user's token when there is one.
            'headers' => ['Content-Type' => 'application/json', 'Authorization' => 'Bearer ' . (getenv('CRUMBS_ADMIN_TOKEN') ?: self::secret())],
            'body' => wp_json_encode(['query' => $query, 'variables' => (object) $variables]),
            'timeout' => 10,
        ]);
        if (is_wp_error($response)) {
            throw new \RuntimeException('Crumbs unreachable: ' . $response->get_error_message());
        }
        $body = json_decode(wp_remote_retrieve_body($response), true);
        if (!is_array($body)) {
            throw new \RuntimeException('Crumbs answered: ' . wp_remote_retrieve_body($response));
        }
        return $body;
    }

    /**
     * Events of one device, newest first: code, source, properties, url.
     *
     * @return list<array<string, mixed>>
     */
    public static function deviceEvents(string $deviceId): array
    {
        $body = self::graphql(
            'query($a: ID!, $d: ID!) { device(appId: $a, deviceId: $d) { timeline(first: 100) { edges { node { code source url properties } } } } }',
            ['a' => self::appId(), 'd' => $deviceId]
        );
        $edges = $body['data']['device']['timeline']['edges'] ?? [];
        return array_map(static fn ($e) => $e['node'], is_array($edges) ? $edges : []);
    }

    /**
     * @return array<string, mixed>|null
     */
    public static function lead(string $email): ?array
    {
        $body = self::graphql(
            'query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) { email name fields devices { id } timeline(first: 100) { edges { node { code source properties } } } } }',
            ['a' => self::appId(), 'e' => $email]
        );
        return $body['data']['leadByEmail'] ?? null;
    }
}
