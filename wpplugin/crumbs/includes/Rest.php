<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * REST routes for the editor and the settings page. They call Crumbs from the WordPress server,
 * so the secret key never reaches the browser.
 */
final class Rest
{
    public const NAMESPACE = 'crumbs/v1';

    public function hook(): void
    {
        add_action('rest_api_init', [$this, 'register']);
    }

    public function register(): void
    {
        register_rest_route(self::NAMESPACE, '/definitions', [
            'methods' => \WP_REST_Server::READABLE,
            'callback' => [$this, 'definitions'],
            'permission_callback' => static fn (): bool => current_user_can('edit_posts'),
        ]);
        register_rest_route(self::NAMESPACE, '/test-connection', [
            'methods' => \WP_REST_Server::CREATABLE,
            'callback' => [$this, 'testConnection'],
            'permission_callback' => static fn (): bool => current_user_can('manage_options'),
            'args' => [
                'server_url' => ['type' => 'string', 'required' => false],
                'app_id' => ['type' => 'string', 'required' => false],
                'secret_key' => ['type' => 'string', 'required' => false],
            ],
        ]);
    }

    /**
     * The app's enabled event definitions, for the block sidebar.
     *
     * @return \WP_REST_Response|\WP_Error
     */
    public function definitions(\WP_REST_Request $request)
    {
        try {
            return rest_ensure_response(['definitions' => Client::fromOptions()->enabledDefinitions()]);
        } catch (ClientError $e) {
            // Editors read this in the block sidebar: what to do, not the server's wording, nor the
            // transport's (a raw cURL error), which only those who may change the settings can act on.
            $message = match (true) {
                $e->errorCode === 'NETWORK' && current_user_can('manage_options') => $e->getMessage() . ' ' . __('Meanwhile, choose "Other code…" and type the code.', 'crumbs'),
                $e->errorCode === 'NETWORK' => __('The event list could not be loaded: WordPress could not reach the Crumbs server. An administrator can find out why with Test connection in Settings → Crumbs. Meanwhile, choose "Other code…" and type the code.', 'crumbs'),
                $e->errorCode === 'UNAUTHENTICATED' && Options::secret() === '' => __('The event list needs the app secret key, which an administrator saves in Settings → Crumbs. Meanwhile, choose "Other code…" and type the code.', 'crumbs'),
                $e->errorCode === 'UNAUTHENTICATED' => __('Crumbs did not accept the app id and secret key saved in Settings → Crumbs (the key may have been rotated), so the event list cannot be loaded. Meanwhile, choose "Other code…" and type the code.', 'crumbs'),
                default => $e->getMessage(),
            };
            return new \WP_Error('crumbs_' . strtolower($e->errorCode), $message, ['status' => 502]);
        }
    }

    /**
     * Checks the server, the app id and the secret key. Values typed into the settings form are
     * tested as they are. An empty secret field means the saved key, but only for the saved
     * server URL: the saved key is never sent to a URL that was merely typed into the form (by
     * mistake, or by someone who may open this page but should not learn the key).
     */
    public function testConnection(\WP_REST_Request $request): \WP_REST_Response
    {
        $url = (string) $request->get_param('server_url');
        $url = $url === '' ? Options::serverUrl() : Options::sanitizeServerUrl($url);
        $appId = trim((string) $request->get_param('app_id'));
        $appId = $appId === '' ? Options::appId() : $appId;
        $secret = trim((string) $request->get_param('secret_key'));
        if ($secret === '') {
            if ($url !== Options::serverUrl() && Options::secret() !== '') {
                return rest_ensure_response([
                    'ok' => false,
                    'appName' => '',
                    'keyValid' => false,
                    'keyNeeded' => true,
                    'message' => __('This server URL is not the saved one: enter the secret key again to test it there. The saved key is sent only to the saved server.', 'crumbs'),
                ]);
            }
            $secret = Options::secret();
        }

        // A typed URL is checked as saving it would be; the saved one as it was saved.
        $anyAddress = $url === Options::serverUrl() ? Options::serverUrlTrusted() : ServerAddress::mayUseAnyAddress();
        $client = new Client($url, $appId, $secret, 10.0, $anyAddress);
        $result = self::check($client, $secret !== '');
        if ($result['ok']) {
            $library = $client->immutableLibraryUrl();
            $result['libraryUrl'] = $library;
            if ($library !== '' && $url === Options::serverUrl()) {
                update_option(Options::LIBRARY, ['server_url' => $url, 'url' => $library], false);
            }
        }
        return rest_ensure_response($result);
    }

    private static function checkFailure(ClientError $e): string
    {
        return match ($e->errorCode) {
            'NOT_FOUND' => __('The Crumbs server is reachable but does not know this app id.', 'crumbs'),
            'UNSAFE_URL' => $e->getMessage(),
            'UNAUTHENTICATED', 'FORBIDDEN' => sprintf(
                /* translators: %s: the server's explanation */
                __('The Crumbs server is reachable but did not accept this app id and secret key: %s', 'crumbs'),
                $e->getMessage()
            ),
            default => $e->forAdministrators(),
        };
    }

    /**
     * @return array{ok: bool, appName: string, keyValid: bool, message: string}
     */
    public static function check(Client $client, bool $hasKey = true): array
    {
        try {
            $result = $client->checkAppKey();
        } catch (ClientError $e) {
            $message = match (true) {
                // Crumbs checks an app id only with its key ("send the secret key as …").
                $e->errorCode === 'UNAUTHENTICATED' && !$hasKey => __('The Crumbs server is reachable. Enter the app secret key: Crumbs checks the app id with it, and server-side events, the event list and privacy requests need it.', 'crumbs'),
                default => self::checkFailure($e),
            };
            return ['ok' => false, 'appName' => '', 'keyValid' => false, 'message' => $message];
        }
        if (!$result['keyValid']) {
            return [
                'ok' => false,
                'appName' => $result['appName'],
                'keyValid' => false,
                'message' => sprintf(
                    /* translators: %s: app name */
                    __('Connected to app "%s", but the secret key is wrong: server-side events would be refused.', 'crumbs'),
                    $result['appName']
                ),
            ];
        }
        return [
            'ok' => true,
            'appName' => $result['appName'],
            'keyValid' => true,
            'message' => sprintf(
                /* translators: %s: app name */
                __('Connected to app "%s". The secret key is valid.', 'crumbs'),
                $result['appName']
            ),
        ];
    }
}
