<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Options;

final class RestTest extends TestCase
{
    private function get(string $route): \WP_REST_Response
    {
        return rest_do_request(new \WP_REST_Request('GET', $route));
    }

    /**
     * @param array<string, string> $body
     */
    private function post(string $route, array $body): \WP_REST_Response
    {
        $request = new \WP_REST_Request('POST', $route);
        $request->set_body_params($body);
        return rest_do_request($request);
    }

    public function testRoutesAreRegisteredWithPermissionChecks(): void
    {
        $routes = rest_get_server()->get_routes('crumbs/v1');
        $this->assertArrayHasKey('/crumbs/v1/definitions', $routes);
        $this->assertArrayHasKey('/crumbs/v1/test-connection', $routes);
        foreach (['/crumbs/v1/definitions', '/crumbs/v1/test-connection'] as $route) {
            foreach ($routes[$route] as $handler) {
                $this->assertIsCallable($handler['permission_callback'] ?? null, $route);
            }
        }
    }

    public function testDefinitionsNeedAnEditor(): void
    {
        $this->assertSame(401, $this->get('/crumbs/v1/definitions')->get_status(), 'anonymous');
        wp_set_current_user($this->makeUser('subscriber', 'sub')->ID);
        $this->assertSame(403, $this->get('/crumbs/v1/definitions')->get_status(), 'subscriber');
    }

    public function testTestConnectionNeedsManageOptions(): void
    {
        $this->assertSame(401, $this->post('/crumbs/v1/test-connection', [])->get_status());
        wp_set_current_user($this->makeUser('editor', 'ed')->ID);
        $this->assertSame(403, $this->post('/crumbs/v1/test-connection', [])->get_status());
    }

    public function testDefinitionsComeFromCrumbsWithoutTheSecret(): void
    {
        $this->requireCrumbs();
        wp_set_current_user($this->makeUser('editor', 'ed')->ID);
        $response = $this->get('/crumbs/v1/definitions');
        $this->assertSame(200, $response->get_status(), wp_json_encode($response->get_data()));
        $codes = array_column($response->get_data()['definitions'], 'code');
        foreach (['view', 'click', 'submit', 'pdf_download', 'trial_click'] as $code) {
            $this->assertContains($code, $codes);
        }
        $this->assertNotContains('disabled_code', $codes, 'only enabled definitions');
        $this->assertStringNotContainsString(Options::secret(), (string) wp_json_encode($response->get_data()));
    }

    public function testDefinitionsReportAnUnreachableServer(): void
    {
        $this->setSettings(['server_url' => 'http://127.0.0.1:9']);
        wp_set_current_user($this->makeUser('editor', 'ed')->ID);
        $response = $this->get('/crumbs/v1/definitions');
        $this->assertSame(502, $response->get_status());
        $this->assertSame('crumbs_network', $response->as_error()->get_error_code());
    }

    public function testTestConnectionChecksServerAppAndKey(): void
    {
        $this->requireCrumbs();
        wp_set_current_user($this->makeUser('administrator', 'adm')->ID);

        $ok = $this->post('/crumbs/v1/test-connection', [])->get_data();
        $this->assertTrue($ok['ok'], $ok['message']);
        $this->assertTrue($ok['keyValid']);
        $this->assertSame('crumbs-wp-test', $ok['appName']);

        // A wrong key, or an app id the key does not belong to, is refused without naming the app.
        $wrongKey = $this->post('/crumbs/v1/test-connection', ['secret_key' => 'sk_wrong_key_value'])->get_data();
        $this->assertFalse($wrongKey['ok']);
        $this->assertFalse($wrongKey['keyValid']);
        $this->assertStringContainsString('did not accept this app id and secret key', $wrongKey['message']);

        $unknownApp = $this->post('/crumbs/v1/test-connection', ['app_id' => 'app_doesnotexist'])->get_data();
        $this->assertFalse($unknownApp['ok']);
        $this->assertMatchesRegularExpression('/does not know this app id|did not accept this app id/', $unknownApp['message']);

        $down = $this->post('/crumbs/v1/test-connection', ['server_url' => 'http://127.0.0.1:9', 'secret_key' => 'sk_typed_for_this_url'])->get_data();
        $this->assertFalse($down['ok']);
        $this->assertStringContainsString('Could not reach', $down['message']);
    }

    /**
     * The saved key goes to the saved server only. A URL typed into the form gets no request
     * carrying it: the check asks for the key instead, and sends it once it is typed.
     */
    public function testTheSavedKeyNeverGoesToATypedUrl(): void
    {
        $this->setSettings(['server_url' => 'https://crumbs.saved.example', 'app_id' => 'app_saved']);
        update_option(Options::SECRET, 'sk_saved_secret_key_value');
        wp_set_current_user($this->makeUser('administrator', 'adm')->ID);
        $sent = [];
        $capture = static function ($preempt, array $args, string $url) use (&$sent) {
            $sent[] = ['url' => $url, 'auth' => (string) ($args['headers']['Authorization'] ?? '')];
            return new \WP_Error('http_request_failed', 'blocked by the test');
        };
        add_filter('pre_http_request', $capture, 10, 3);
        try {
            $typed = $this->post('/crumbs/v1/test-connection', ['server_url' => 'https://attacker.example/collect'])->get_data();
            $this->assertFalse($typed['ok']);
            $this->assertTrue($typed['keyNeeded']);
            $this->assertStringContainsString('enter the secret key again', $typed['message']);
            $this->assertSame([], $sent, 'no request at all for a typed URL without a typed key');

            // The same URL with a slash or spaces is the saved one: the saved key may go there.
            $this->post('/crumbs/v1/test-connection', ['server_url' => ' https://crumbs.saved.example/ ']);
            $this->assertCount(1, $sent);
            $this->assertSame('https://crumbs.saved.example/graphql', $sent[0]['url']);
            $this->assertSame('Bearer sk_saved_secret_key_value', $sent[0]['auth']);

            // A key typed into the form goes where the form says, never the saved one.
            $sent = [];
            $this->post('/crumbs/v1/test-connection', ['server_url' => 'https://other.example', 'secret_key' => 'sk_typed_key_value']);
            $this->assertSame([['url' => 'https://other.example/graphql', 'auth' => 'Bearer sk_typed_key_value']], $sent);
            foreach ($sent as $request) {
                $this->assertStringNotContainsString('sk_saved_secret_key_value', $request['auth']);
            }
        } finally {
            remove_filter('pre_http_request', $capture, 10);
        }
    }

    public function testTestConnectionLearnsTheImmutableLibraryUrl(): void
    {
        $this->requireCrumbs();
        delete_option(Options::LIBRARY);
        $admin = $this->makeUser('administrator', 'adm');
        wp_set_current_user($admin->ID);
        $ok = $this->post('/crumbs/v1/test-connection', [])->get_data();
        $this->assertTrue($ok['ok'], $ok['message']);
        $this->assertMatchesRegularExpression('#^' . preg_quote(Options::serverUrl(), '#') . '/crumbs\.[0-9a-f]{12}\.js$#', $ok['libraryUrl']);
        $this->assertSame($ok['libraryUrl'], Options::immutableLibraryUrl(), 'remembered for the saved server');
        $library = wp_remote_get($ok['libraryUrl']);
        $this->assertSame(200, wp_remote_retrieve_response_code($library));
        $this->assertStringContainsString('immutable', (string) wp_remote_retrieve_header($library, 'cache-control'));

        // The settings page prints it, and forgets it when the server URL changes.
        $settings = new \Crumbs\WordPress\Admin\Settings();
        ob_start();
        $settings->urlField();
        $this->assertStringContainsString('<code id="crumbs-library-url">' . esc_html($ok['libraryUrl']) . '</code>', (string) ob_get_clean());
        $this->setSettings(['server_url' => 'https://elsewhere.example']);
        $this->assertSame('', Options::immutableLibraryUrl());
    }
}
