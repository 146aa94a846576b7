<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Talks to the Crumbs GraphQL API with wp_remote_post. Server-to-server calls carry the app
 * secret key as a Bearer token; it never leaves the WordPress server.
 */
final class Client
{
    public function __construct(
        private string $serverUrl,
        private string $appId,
        private string $secret,
        private float $timeout = 10.0
    ) {
        $this->serverUrl = untrailingslashit($serverUrl);
    }

    public static function fromOptions(float $timeout = 10.0): self
    {
        return new self(Options::serverUrl(), Options::appId(), Options::secret(), $timeout);
    }

    public function appId(): string
    {
        return $this->appId;
    }

    /**
     * Sends one GraphQL operation and returns its `data`.
     *
     * @param array<string, mixed> $variables
     * @return array<string, mixed>
     * @throws ClientError When the server cannot be reached or answers with errors.
     */
    public function graphql(string $query, array $variables = [], bool $blocking = true): array
    {
        if ($this->serverUrl === '' || $this->appId === '') {
            throw new ClientError(__('Crumbs is not configured: set the server URL and app id.', 'crumbs'), 'NOT_CONFIGURED');
        }
        $headers = ['Content-Type' => 'application/json', 'Accept' => 'application/json'];
        if ($this->secret !== '') {
            $headers['Authorization'] = 'Bearer ' . $this->secret;
        }
        $response = wp_remote_post($this->serverUrl . '/graphql', [
            'headers' => $headers,
            'body' => wp_json_encode(['query' => $query, 'variables' => (object) $variables]),
            'timeout' => $this->timeout,
            'blocking' => $blocking,
            'redirection' => 0,
            'user-agent' => 'crumbs-wordpress/' . VERSION . '; ' . home_url('/'),
        ]);
        if (is_wp_error($response)) {
            throw new ClientError(
                sprintf(
                    /* translators: %s: the transport error */
                    __('Could not reach the Crumbs server: %s', 'crumbs'),
                    $response->get_error_message()
                ),
                'NETWORK',
                true
            );
        }
        if (!$blocking) {
            return [];
        }
        $status = (int) wp_remote_retrieve_response_code($response);
        $body = json_decode((string) wp_remote_retrieve_body($response), true);
        if (!is_array($body)) {
            throw new ClientError(
                sprintf(
                    /* translators: %d: HTTP status code */
                    __('The Crumbs server answered HTTP %d without a GraphQL response.', 'crumbs'),
                    $status
                ),
                'HTTP_' . $status,
                $status >= 500 || $status === 429 || $status === 0
            );
        }
        if (!empty($body['errors']) && is_array($body['errors'])) {
            $first = is_array($body['errors'][0] ?? null) ? $body['errors'][0] : [];
            $code = (string) ($first['extensions']['code'] ?? 'ERROR');
            throw new ClientError(
                (string) ($first['message'] ?? __('Unknown error', 'crumbs')),
                $code,
                in_array($code, ClientError::RETRYABLE, true) || $status >= 500,
                isset($first['extensions']['field']) ? (string) $first['extensions']['field'] : null
            );
        }
        return is_array($body['data'] ?? null) ? $body['data'] : [];
    }

    /**
     * The immutable URL of the library's current version (`/crumbs.<version>.js`, cached for a
     * year), which the server names in a header of `/crumbs.js`; '' when it cannot be learned.
     */
    public function immutableLibraryUrl(): string
    {
        if ($this->serverUrl === '') {
            return '';
        }
        $response = wp_remote_head($this->serverUrl . '/crumbs.js', [
            'timeout' => min($this->timeout, 5.0),
            'redirection' => 0,
            'user-agent' => 'crumbs-wordpress/' . VERSION . '; ' . home_url('/'),
        ]);
        if (is_wp_error($response) || (int) wp_remote_retrieve_response_code($response) !== 200) {
            return '';
        }
        $path = (string) wp_remote_retrieve_header($response, 'crumbs-immutable-path');
        return preg_match('#^/crumbs\.[0-9a-f]{6,64}\.js$#', $path) ? $this->serverUrl . $path : '';
    }

    /**
     * @return array{appId: string, appName: string, keyValid: bool}
     */
    public function checkAppKey(): array
    {
        $data = $this->graphql(
            'query CrumbsCheckAppKey($appId: ID!) { checkAppKey(appId: $appId) { appId appName keyValid } }',
            ['appId' => $this->appId]
        );
        $check = $data['checkAppKey'] ?? [];
        return [
            'appId' => (string) ($check['appId'] ?? ''),
            'appName' => (string) ($check['appName'] ?? ''),
            'keyValid' => (bool) ($check['keyValid'] ?? false),
        ];
    }

    /**
     * The app's enabled event definitions.
     *
     * @return list<array{code: string, name: string, color: string, description: string}>
     */
    public function enabledDefinitions(): array
    {
        $data = $this->graphql(
            'query CrumbsDefinitions($id: ID!) { app(id: $id) { eventDefinitions(enabled: true) { code name color description } } }',
            ['id' => $this->appId]
        );
        if (!isset($data['app']) || !is_array($data['app'])) {
            throw new ClientError(__('The Crumbs server does not know this app id.', 'crumbs'), 'NOT_FOUND');
        }
        $out = [];
        foreach ((array) ($data['app']['eventDefinitions'] ?? []) as $def) {
            $out[] = [
                'code' => (string) ($def['code'] ?? ''),
                'name' => (string) ($def['name'] ?? ''),
                'color' => (string) ($def['color'] ?? ''),
                'description' => (string) ($def['description'] ?? ''),
            ];
        }
        return $out;
    }

    /**
     * @param array<string, mixed> $input TriggerInput without appId.
     * @return array{accepted: bool, duplicate: bool}
     */
    public function trigger(array $input): array
    {
        $data = $this->graphql(
            'mutation CrumbsTrigger($input: TriggerInput!) { trigger(input: $input) { accepted duplicate } }',
            ['input' => ['appId' => $this->appId] + $input]
        );
        return [
            'accepted' => (bool) ($data['trigger']['accepted'] ?? false),
            'duplicate' => (bool) ($data['trigger']['duplicate'] ?? false),
        ];
    }

    /**
     * @param array<string, mixed> $input IdentifyInput without appId.
     */
    public function identify(array $input): void
    {
        $this->graphql(
            'mutation CrumbsIdentify($input: IdentifyInput!) { identify(input: $input) { moved } }',
            ['input' => ['appId' => $this->appId] + $input]
        );
    }

    /**
     * The lead with this email and its timeline, or null.
     *
     * @return array<string, mixed>|null
     */
    public function leadByEmail(string $email, ?string $after = null): ?array
    {
        $data = $this->graphql(
            'query CrumbsLeadByEmail($appId: ID!, $email: String!, $after: String) { leadByEmail(appId: $appId, email: $email) {'
            . ' email name fields devices { id } narrative'
            . ' timeline(first: ' . self::EXPORT_PAGE . ', after: $after) { edges { node { id code occurredAt url properties } } pageInfo { hasNextPage endCursor } } } }',
            ['appId' => $this->appId, 'email' => $email, 'after' => $after]
        );
        return is_array($data['leadByEmail'] ?? null) ? $data['leadByEmail'] : null;
    }

    /** Events per page of the personal-data exporter. */
    public const EXPORT_PAGE = 200;

    /**
     * Erases one device and its events (events a queued identify never tied to the lead).
     *
     * @return array{erased: bool, deletedEvents: int}
     */
    public function eraseDevice(string $deviceId): array
    {
        $data = $this->graphql(
            'mutation CrumbsEraseDevice($appId: ID!, $deviceId: ID!) { eraseDevice(appId: $appId, deviceId: $deviceId) { erased deletedEvents } }',
            ['appId' => $this->appId, 'deviceId' => $deviceId]
        );
        return [
            'erased' => (bool) ($data['eraseDevice']['erased'] ?? false),
            'deletedEvents' => (int) ($data['eraseDevice']['deletedEvents'] ?? 0),
        ];
    }

    /**
     * @return array{erased: bool, deletedEvents: int}
     */
    public function eraseLead(string $email): array
    {
        $data = $this->graphql(
            'mutation CrumbsEraseLead($appId: ID!, $email: String!) { eraseLead(appId: $appId, email: $email) { erased deletedEvents } }',
            ['appId' => $this->appId, 'email' => $email]
        );
        return [
            'erased' => (bool) ($data['eraseLead']['erased'] ?? false),
            'deletedEvents' => (int) ($data['eraseLead']['deletedEvents'] ?? 0),
        ];
    }
}
