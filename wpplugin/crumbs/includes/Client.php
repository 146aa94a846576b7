<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Talks to the Crumbs server with wp_remote_post: events and identifies through the JSON API
 * (/api/v1/apps/{appId}/…, no GraphQL parsing on the server), everything else through GraphQL.
 * Server-to-server calls carry the app secret key as a Bearer token; it never leaves the
 * WordPress server.
 */
final class Client
{
    public function __construct(
        private string $serverUrl,
        private string $appId,
        private string $secret,
        private float $timeout = 10.0,
        private bool $anyAddress = true
    ) {
        $this->serverUrl = untrailingslashit($serverUrl);
    }

    public static function fromOptions(float $timeout = 10.0): self
    {
        return new self(Options::serverUrl(), Options::appId(), Options::secret(), $timeout, Options::serverUrlTrusted());
    }

    /**
     * Sends a request to the server, to a public address only unless the server URL may name
     * any (see ServerAddress).
     *
     * @param array<string, mixed> $args
     * @return array<string, mixed>|\WP_Error
     * @throws ClientError When the URL names a private or local address it may not.
     */
    private function request(string $method, string $url, array $args)
    {
        $send = static fn () => $method === 'HEAD' ? wp_remote_head($url, $args) : wp_remote_post($url, $args);
        if ($this->anyAddress) {
            return $send();
        }
        $ip = ServerAddress::publicAddress($url);
        if ($ip === '') {
            throw ServerAddress::refusal();
        }
        return ServerAddress::pinned($url, $ip, $send);
    }

    public function appId(): string
    {
        return $this->appId;
    }

    /** JSON API field names for the GraphQL (camelCase) names queued rows of earlier versions hold. */
    private const SNAKE = ['deviceId' => 'device_id', 'messageId' => 'message_id', 'occurredAt' => 'occurred_at'];

    /**
     * An event or identify input as the JSON API takes it: snake_case names, no appId, and
     * properties / fields as JSON objects even when empty.
     *
     * @param array<string, mixed> $input
     * @return array<string, mixed>
     */
    public static function jsonInput(array $input): array
    {
        $out = [];
        foreach ($input as $name => $value) {
            if ($name === 'appId') {
                continue;
            }
            if ($name === 'properties' || $name === 'fields') {
                $value = (object) (array) $value;
            }
            $out[self::SNAKE[$name] ?? $name] = $value;
        }
        return $out;
    }

    /**
     * POSTs a body to this app's JSON API (`events` or `identify`) and returns the decoded answer.
     *
     * @param array<string, mixed>|object $body
     * @return array<string, mixed>
     * @throws ClientError When the server cannot be reached or refuses the request as a whole.
     */
    public function api(string $path, $body): array
    {
        if ($this->serverUrl === '' || $this->appId === '') {
            throw new ClientError(__('Crumbs is not configured: set the server URL and app id.', 'crumbs'), 'NOT_CONFIGURED');
        }
        $response = $this->request('POST', $this->serverUrl . '/api/v1/apps/' . rawurlencode($this->appId) . '/' . $path, [
            'headers' => $this->headers(),
            'body' => wp_json_encode($body),
            'timeout' => $this->timeout,
            'redirection' => 0,
            'user-agent' => 'crumbs-wordpress/' . VERSION . '; ' . home_url('/'),
        ]);
        $this->checkTransport($response);
        $status = (int) wp_remote_retrieve_response_code($response);
        $answer = json_decode((string) wp_remote_retrieve_body($response), true);
        if (!is_array($answer)) {
            throw self::httpError($status);
        }
        // A refusal of the whole request, or of a single item sent on its own.
        if ($status !== 200 && is_array($answer['error'] ?? null)) {
            throw self::refusal($answer['error'], $status);
        }
        if ($status !== 200) {
            throw self::httpError($status);
        }
        return $answer;
    }

    /**
     * Sends events in one request (at most 500) and returns one outcome per event, in order:
     * null when stored (or already stored: a duplicate), else the refusal.
     *
     * @param list<array<string, mixed>> $inputs Event inputs (camelCase or snake_case), without appId.
     * @return list<ClientError|null>
     * @throws ClientError When the request fails as a whole.
     */
    public function events(array $inputs): array
    {
        $answer = $this->api('events', ['events' => array_map([self::class, 'jsonInput'], $inputs)]);
        $out = [];
        foreach ($inputs as $i => $_) {
            $result = $answer['results'][$i] ?? null;
            $out[] = !is_array($result) ? self::httpError(200)
                : (is_array($result['error'] ?? null) ? self::refusal($result['error'], 200) : null);
        }
        return $out;
    }

    /** @return array<string, string> */
    private function headers(): array
    {
        $headers = ['Content-Type' => 'application/json', 'Accept' => 'application/json'];
        if ($this->secret !== '') {
            $headers['Authorization'] = 'Bearer ' . $this->secret;
        }
        return $headers;
    }

    /**
     * @param array<string, mixed>|\WP_Error $response
     * @throws ClientError NETWORK when the request did not reach the server or got no answer.
     */
    private function checkTransport($response): void
    {
        if (is_wp_error($response)) {
            throw $this->unreachable($response);
        }
    }

    /**
     * A transport failure in words an administrator or editor can act on: what failed, where,
     * and what to check, by the cause cURL names. The transport's own message goes to `detail`
     * (with any credentials in the URL masked), since it may name internals and is not actionable
     * for most readers.
     */
    private function unreachable(\WP_Error $response): ClientError
    {
        $detail = (string) preg_replace('#(//)[^/@\s]*@#', '$1***@', $response->get_error_message());
        if ($this->secret !== '') {
            $detail = str_replace($this->secret, '***', $detail);
        }
        $parts = wp_parse_url($this->serverUrl);
        $where = is_array($parts) ? (string) ($parts['host'] ?? '') . (isset($parts['port']) ? ':' . (int) $parts['port'] : '') : '';
        $curl = preg_match('/cURL error (\d+)/', $detail, $m) ? (int) $m[1] : 0;
        $message = match (true) {
            $response->get_error_code() === 'http_request_not_executed' || str_contains($detail, 'blocked requests through HTTP') => sprintf(
                /* translators: %s: the Crumbs server's host */
                __('WordPress blocks its requests to other hosts on this site (WP_HTTP_BLOCK_EXTERNAL in wp-config.php), so it cannot reach the Crumbs server. Add %s to WP_ACCESSIBLE_HOSTS there.', 'crumbs'),
                (string) ($parts['host'] ?? '')
            ),
            $curl === 6 || stripos($detail, 'resolve host') !== false => sprintf(
                /* translators: %s: the Crumbs server's host (and port) */
                __('WordPress could not reach the Crumbs server at %s: that name does not resolve. Check the server URL in Settings → Crumbs.', 'crumbs'),
                $where
            ),
            $curl === 7 || stripos($detail, 'refused') !== false => sprintf(
                /* translators: %s: the Crumbs server's host (and port) */
                __('WordPress could not reach the Crumbs server at %s: nothing answers at that address and port. Check that the Crumbs server is running and that the server URL in Settings → Crumbs, with its port, is right.', 'crumbs'),
                $where
            ),
            $curl === 28 || stripos($detail, 'timed out') !== false => sprintf(
                /* translators: %s: the Crumbs server's host (and port) */
                __('The Crumbs server at %s did not answer in time. Check that it is running and that this web server may connect to it (a firewall or proxy may be in the way).', 'crumbs'),
                $where
            ),
            in_array($curl, [35, 51, 53, 54, 58, 59, 60, 77, 80, 82, 83, 90, 91], true) || stripos($detail, 'SSL') !== false || stripos($detail, 'certificate') !== false => sprintf(
                /* translators: %s: the Crumbs server's host (and port) */
                __('WordPress could not make a secure (HTTPS) connection to the Crumbs server at %s: its certificate was not accepted. Check the server\'s certificate, and that the server URL names the host the certificate is for.', 'crumbs'),
                $where
            ),
            default => sprintf(
                /* translators: %s: the Crumbs server's host (and port) */
                __('WordPress could not reach the Crumbs server at %s. Check the server URL in Settings → Crumbs, and that the Crumbs server is running and reachable from this web server.', 'crumbs'),
                $where
            ),
        };
        return new ClientError($message, 'NETWORK', true, null, $detail);
    }

    private static function httpError(int $status): ClientError
    {
        return new ClientError(
            sprintf(
                /* translators: %d: HTTP status code */
                __('The Crumbs server answered HTTP %d without a readable response.', 'crumbs'),
                $status
            ),
            'HTTP_' . $status,
            $status >= 500 || $status === 429 || $status === 0
        );
    }

    /**
     * @param array<string, mixed> $error {"code", "message", "field"}
     */
    private static function refusal(array $error, int $status): ClientError
    {
        $code = (string) ($error['code'] ?? 'ERROR');
        return new ClientError(
            (string) ($error['message'] ?? __('Unknown error', 'crumbs')),
            $code,
            in_array($code, ClientError::RETRYABLE, true) || $status >= 500,
            isset($error['field']) ? (string) $error['field'] : null
        );
    }

    /**
     * Sends one GraphQL operation and returns its `data`.
     *
     * @param array<string, mixed> $variables
     * @param float|null $timeout Seconds to wait for the answer; the client's own timeout by default.
     * @return array<string, mixed>
     * @throws ClientError When the server cannot be reached or answers with errors.
     */
    public function graphql(string $query, array $variables = [], bool $blocking = true, ?float $timeout = null): array
    {
        if ($this->serverUrl === '' || $this->appId === '') {
            throw new ClientError(__('Crumbs is not configured: set the server URL and app id.', 'crumbs'), 'NOT_CONFIGURED');
        }
        $response = $this->request('POST', $this->serverUrl . '/graphql', [
            'headers' => $this->headers(),
            'body' => wp_json_encode(['query' => $query, 'variables' => (object) $variables]),
            'timeout' => $timeout ?? $this->timeout,
            'blocking' => $blocking,
            'redirection' => 0,
            'user-agent' => 'crumbs-wordpress/' . VERSION . '; ' . home_url('/'),
        ]);
        $this->checkTransport($response);
        if (!$blocking) {
            return [];
        }
        $status = (int) wp_remote_retrieve_response_code($response);
        $body = json_decode((string) wp_remote_retrieve_body($response), true);
        $retryAfter = max(0, (int) wp_remote_retrieve_header($response, 'retry-after'));
        if (!is_array($body)) {
            throw new ClientError(
                sprintf(
                    /* translators: %d: HTTP status code */
                    __('The Crumbs server answered HTTP %d without a GraphQL response.', 'crumbs'),
                    $status
                ),
                'HTTP_' . $status,
                $status >= 500 || $status === 429 || $status === 0,
                null,
                '',
                $retryAfter
            );
        }
        if (!empty($body['errors']) && is_array($body['errors'])) {
            $first = is_array($body['errors'][0] ?? null) ? $body['errors'][0] : [];
            $code = (string) ($first['extensions']['code'] ?? 'ERROR');
            throw new ClientError(
                (string) ($first['message'] ?? __('Unknown error', 'crumbs')),
                $code,
                in_array($code, ClientError::RETRYABLE, true) || $status >= 500,
                isset($first['extensions']['field']) ? (string) $first['extensions']['field'] : null,
                '',
                $retryAfter
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
        try {
            $response = $this->request('HEAD', $this->serverUrl . '/crumbs.js', [
                'timeout' => min($this->timeout, 5.0),
                'redirection' => 0,
                'user-agent' => 'crumbs-wordpress/' . VERSION . '; ' . home_url('/'),
            ]);
        } catch (ClientError $e) {
            return '';
        }
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
     * Sends one event through the JSON API.
     *
     * @param array<string, mixed> $input An event (camelCase or snake_case) without appId.
     * @return array{accepted: bool, duplicate: bool}
     * @throws ClientError When it is refused.
     */
    public function trigger(array $input): array
    {
        $answer = $this->api('events', self::jsonInput($input));
        return [
            'accepted' => (bool) ($answer['accepted'] ?? false),
            'duplicate' => (bool) ($answer['duplicate'] ?? false),
        ];
    }

    /**
     * Attaches a device to the lead with an email through the JSON API.
     *
     * @param array<string, mixed> $input {deviceId, email, name, fields} (or snake_case) without appId.
     * @throws ClientError When it is refused.
     */
    public function identify(array $input): void
    {
        $this->api('identify', self::jsonInput($input));
    }

    /**
     * The lead with this email and its timeline, or null.
     *
     * @return array<string, mixed>|null
     */
    public function leadByEmail(string $email, ?string $after = null): ?array
    {
        try {
            $data = $this->graphql(
                'query CrumbsLeadByEmail($appId: ID!, $email: String!, $after: String) { leadByEmail(appId: $appId, email: $email) {'
                . ' email name fields devices { id } narrative'
                . ' timeline(first: ' . self::EXPORT_PAGE . ', after: $after) { edges { node { id code occurredAt url properties } } pageInfo { hasNextPage endCursor } } } }',
                ['appId' => $this->appId, 'email' => $email, 'after' => $after]
            );
        } catch (ClientError $e) {
            if (self::refusesEmail($e)) {
                return null;
            }
            throw $e;
        }
        return is_array($data['leadByEmail'] ?? null) ? $data['leadByEmail'] : null;
    }

    /**
     * Whether Crumbs refused an email as no address at all. WordPress takes some it refuses
     * (".ann@example.org", "ann.@…", "a..b@…"): Crumbs holds no lead with such an email, yet
     * the devices the plugin made from it, or for that user, may hold events.
     */
    private static function refusesEmail(ClientError $e): bool
    {
        return $e->errorCode === 'BAD_USER_INPUT' && $e->field === 'email';
    }

    /**
     * One device with a page of its timeline and the email of its lead ('' for none), or null
     * when Crumbs does not know the device.
     *
     * @return array{leadEmail: string, timeline: array<string, mixed>}|null
     * @throws ClientError
     */
    public function deviceTimeline(string $deviceId, ?string $after = null): ?array
    {
        try {
            $data = $this->graphql(
                'query CrumbsDeviceTimeline($appId: ID!, $deviceId: ID!, $after: String) { device(appId: $appId, deviceId: $deviceId) {'
                . ' lead { email }'
                . ' timeline(first: ' . self::EXPORT_PAGE . ', after: $after) { edges { node { id code occurredAt url properties } } pageInfo { hasNextPage endCursor } } } }',
                ['appId' => $this->appId, 'deviceId' => $deviceId, 'after' => $after]
            );
        } catch (ClientError $e) {
            if ($e->errorCode === 'NOT_FOUND') {
                return null;
            }
            throw $e;
        }
        $device = $data['device'] ?? null;
        if (!is_array($device)) {
            return null;
        }
        return [
            'leadEmail' => (string) ($device['lead']['email'] ?? ''),
            'timeline' => is_array($device['timeline'] ?? null) ? $device['timeline'] : [],
        ];
    }

    /** Events per page of the personal-data exporter. */
    public const EXPORT_PAGE = 200;

    /**
     * Seconds an erasure mutation may take to answer: the server answers within CRUMBS_ERASE_WAIT
     * (20 s by default, at most 45 s), with done false when the erasure goes on without the caller.
     */
    public const ERASE_TIMEOUT = 50.0;

    /** The fields of an erasure's answer that the eraser reads. */
    private const ERASURE_FIELDS = '{ erased deletedEvents done erasureId }';

    /**
     * Erases one device and its events (events a queued identify never tied to the lead).
     *
     * @return array{erased: bool, deletedEvents: int, done: bool, erasureId: string}
     */
    public function eraseDevice(string $deviceId): array
    {
        $data = $this->graphql(
            'mutation CrumbsEraseDevice($appId: ID!, $deviceId: ID!) { eraseDevice(appId: $appId, deviceId: $deviceId) ' . self::ERASURE_FIELDS . ' }',
            ['appId' => $this->appId, 'deviceId' => $deviceId],
            true,
            max($this->timeout, self::ERASE_TIMEOUT)
        );
        return self::erasure($data['eraseDevice'] ?? null);
    }

    /**
     * Erases the lead with this email, its devices and their events.
     *
     * @return array{erased: bool, deletedEvents: int, done: bool, erasureId: string}
     */
    public function eraseLead(string $email): array
    {
        try {
            return $this->eraseLeadOnce($email);
        } catch (ClientError $e) {
            if (self::refusesEmail($e)) {
                // No lead can have it; nothing to erase (see refusesEmail).
                return ['erased' => false, 'deletedEvents' => 0, 'done' => true, 'erasureId' => ''];
            }
            throw $e;
        }
    }

    /**
     * @return array{erased: bool, deletedEvents: int, done: bool, erasureId: string}
     */
    private function eraseLeadOnce(string $email): array
    {
        $data = $this->graphql(
            'mutation CrumbsEraseLead($appId: ID!, $email: String!) { eraseLead(appId: $appId, email: $email) ' . self::ERASURE_FIELDS . ' }',
            ['appId' => $this->appId, 'email' => $email],
            true,
            max($this->timeout, self::ERASE_TIMEOUT)
        );
        return self::erasure($data['eraseLead'] ?? null);
    }

    /**
     * How far an erasure that eraseLead or eraseDevice answered not done has gone: its counts so
     * far, final once done.
     *
     * @return array{erased: bool, deletedEvents: int, done: bool, erasureId: string}
     */
    public function followErasure(string $erasureId): array
    {
        $data = $this->graphql(
            'query CrumbsErasure($appId: ID!, $id: ID!) { erasure(appId: $appId, id: $id) ' . self::ERASURE_FIELDS . ' }',
            ['appId' => $this->appId, 'id' => $erasureId]
        );
        return self::erasure($data['erasure'] ?? null);
    }

    /**
     * @return array{erased: bool, deletedEvents: int, done: bool, erasureId: string}
     */
    private static function erasure(mixed $answer): array
    {
        $answer = is_array($answer) ? $answer : [];
        return [
            'erased' => (bool) ($answer['erased'] ?? false),
            'deletedEvents' => (int) ($answer['deletedEvents'] ?? 0),
            // Without an answer there is no erasure to follow.
            'done' => (bool) ($answer['done'] ?? true),
            'erasureId' => (string) ($answer['erasureId'] ?? ''),
        ];
    }
}
