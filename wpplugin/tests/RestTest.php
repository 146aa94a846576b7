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

    /**
     * The block sidebar showed editors the transport's own words: "Could not reach the Crumbs
     * server: cURL error 7: Failed to connect to 127.0.0.1 port 9 after 0 ms: Couldn't connect to
     * server". An editor is told what failed and who finds out why where; an administrator, who
     * can fix it, what to check, without the cURL wording.
     */
    public function testDefinitionsReportAnUnreachableServer(): void
    {
        $this->setSettings(['server_url' => 'http://127.0.0.1:9']);
        wp_set_current_user($this->makeUser('editor', 'ed')->ID);
        $response = $this->get('/crumbs/v1/definitions');
        $this->assertSame(502, $response->get_status());
        $this->assertSame('crumbs_network', $response->as_error()->get_error_code());
        $this->assertSame(
            'The event list could not be loaded: WordPress could not reach the Crumbs server. An administrator can find out why with Test connection in Settings → Crumbs. Meanwhile, choose "Other code…" and type the code.',
            $response->as_error()->get_error_message()
        );

        wp_set_current_user($this->makeUser('administrator', 'adm')->ID);
        $admin = $this->get('/crumbs/v1/definitions')->as_error()->get_error_message();
        $this->assertSame(
            'WordPress could not reach the Crumbs server at 127.0.0.1:9: nothing answers at that address and port. Check that the Crumbs server is running and that the server URL in Settings → Crumbs, with its port, is right. Meanwhile, choose "Other code…" and type the code.',
            $admin
        );
    }

    /**
     * Test connection tells the administrator what failed and what to check for each way a
     * request can fail before an answer, with the transport's report as details, and no
     * credentials from the URL nor the key.
     */
    public function testTestConnectionSaysWhatToCheckWhenTheServerCannotBeReached(): void
    {
        wp_set_current_user($this->makeUser('administrator', 'adm')->ID);
        $refused = $this->post('/crumbs/v1/test-connection', ['server_url' => 'http://127.0.0.1:9', 'secret_key' => 'sk_typed_for_this_url'])->get_data();
        $this->assertFalse($refused['ok']);
        $this->assertStringStartsWith('WordPress could not reach the Crumbs server at 127.0.0.1:9: nothing answers at that address and port. Check that the Crumbs server is running', $refused['message']);
        $this->assertStringContainsString(' Details: cURL error 7: ', $refused['message']);

        // WP_HTTP_BLOCK_EXTERNAL (the test site's own setting) stops requests to other hosts.
        $blocked = $this->post('/crumbs/v1/test-connection', ['server_url' => 'https://crumbs.example.org', 'secret_key' => 'sk_typed_for_this_url'])->get_data();
        $this->assertStringStartsWith('WordPress blocks its requests to other hosts on this site (WP_HTTP_BLOCK_EXTERNAL in wp-config.php), so it cannot reach the Crumbs server. Add crumbs.example.org to WP_ACCESSIBLE_HOSTS there.', $blocked['message']);

        $failures = [
            'cURL error 6: Could not resolve host: crumbs.example.org' => 'at crumbs.example.org:8443: that name does not resolve. Check the server URL in Settings → Crumbs.',
            'cURL error 28: Operation timed out after 10001 milliseconds with 0 bytes received' => 'The Crumbs server at crumbs.example.org:8443 did not answer in time.',
            'cURL error 60: SSL certificate problem: unable to get local issuer certificate' => 'its certificate was not accepted',
            // A transport that names the URL, credentials and all.
            'Connection reset by https://ann:pa55word@crumbs.example.org:8443/graphql with sk_typed_for_this_url' => 'WordPress could not reach the Crumbs server at crumbs.example.org:8443. Check the server URL',
        ];
        foreach ($failures as $transport => $expected) {
            $fail = static fn () => new \WP_Error('http_request_failed', $transport);
            add_filter('pre_http_request', $fail);
            try {
                $result = $this->post('/crumbs/v1/test-connection', ['server_url' => 'https://ann:pa55word@crumbs.example.org:8443', 'secret_key' => 'sk_typed_for_this_url'])->get_data();
            } finally {
                remove_filter('pre_http_request', $fail);
            }
            $this->assertFalse($result['ok']);
            $this->assertStringContainsString($expected, $result['message']);
            $this->assertStringContainsString('Details: ', $result['message']);
            $this->assertStringNotContainsString('pa55word', $result['message']);
            $this->assertStringNotContainsString('sk_typed_for_this_url', $result['message']);
        }
    }

    /**
     * The block sidebar shows the route's message to editors. Without a saved key, or with a
     * rotated one, it showed Crumbs' own wording ("send the secret key as Authorization: Bearer
     * <key>", "the secret key is not this app's current key"), which tells an editor nothing
     * they can act on; now it says who fixes it where, and how to go on meanwhile.
     */
    public function testDefinitionsSayWhatToDoWhenTheKeyIsMissingOrRefused(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId()]);
        wp_set_current_user($this->makeUser('editor', 'ed')->ID);
        update_option(Options::SECRET, '');
        $missing = $this->get('/crumbs/v1/definitions')->as_error();
        $this->assertSame('crumbs_unauthenticated', $missing->get_error_code());
        $this->assertStringContainsString('The event list needs the app secret key, which an administrator saves in Settings → Crumbs', $missing->get_error_message());
        update_option(Options::SECRET, 'sk_rotatedrotatedrotated1');
        $refused = $this->get('/crumbs/v1/definitions')->as_error()->get_error_message();
        $this->assertStringContainsString('Crumbs did not accept the app id and secret key saved in Settings → Crumbs', $refused);
        $this->assertStringNotContainsString('sk_rotated', $refused);
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

        // No key saved nor typed: Crumbs said 'send the secret key as Authorization: Bearer <key>',
        // shown after 'did not accept this app id and secret key', to an owner who gave none.
        update_option(Options::SECRET, '');
        $noKey = $this->post('/crumbs/v1/test-connection', [])->get_data();
        $this->assertFalse($noKey['ok']);
        $this->assertSame('The Crumbs server is reachable. Enter the app secret key: Crumbs checks the app id with it, and server-side events, the event list and privacy requests need it.', $noKey['message']);

        $down = $this->post('/crumbs/v1/test-connection', ['server_url' => 'http://127.0.0.1:9', 'secret_key' => 'sk_typed_for_this_url'])->get_data();
        $this->assertFalse($down['ok']);
        $this->assertStringContainsString('could not reach the Crumbs server at 127.0.0.1:9', $down['message']);
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

    /**
     * On a network, a site's administrator (manage_options, not a super admin) could save any
     * server URL and run Test connection against any typed one, so the network's server sent
     * requests to its private network (a metadata address, a cache's port on the same host) and
     * showed what answered. Such a user may now name public addresses only; requests to a URL
     * they saved go to the address checked; a super admin (every administrator of a single
     * site) may still name any.
     */
    public function testOnlyASuperAdminMayPointCrumbsAtAPrivateAddress(): void
    {
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId()]);
        add_role('crumbs_site_manager', 'Site manager', ['read' => true, 'manage_options' => true]);
        $sent = [];
        $capture = static function ($preempt, array $args, string $url) use (&$sent) {
            $sent[] = $url;
            return $preempt;
        };
        add_filter('pre_http_request', $capture, 10, 3);
        try {
            wp_set_current_user($this->makeUser('crumbs_site_manager', 'mgr')->ID);
            $this->assertFalse(is_super_admin());
            foreach (['http://127.0.0.1:6379', 'http://169.254.169.254/latest', 'http://10.0.0.5:8080', 'http://100.64.1.1', 'http://localhost:3306', 'http://[::1]:8080'] as $url) {
                $check = $this->post('/crumbs/v1/test-connection', ['server_url' => $url, 'app_id' => 'app_x', 'secret_key' => 'sk_typed_key_value'])->get_data();
                $this->assertFalse($check['ok'], $url);
                $this->assertStringContainsString('Only a network administrator may point Crumbs there', $check['message'], $url);

                $clean = Options::sanitize(['server_url' => $url, 'app_id' => CrumbsServer::appId()]);
                $this->assertSame(CrumbsServer::url(), $clean['server_url'], $url . ' is not saved');
            }
            $this->assertStringContainsString('Only a network administrator', (string) wp_json_encode(get_settings_errors(Options::SETTINGS)));
            $this->assertSame([], $sent, 'no request to a private address');

            // A public address is saved, marked: its requests go to the address that was checked.
            $public = Options::sanitize(['server_url' => 'http://93.184.216.34:8080', 'app_id' => CrumbsServer::appId()]);
            $this->assertSame('http://93.184.216.34:8080', $public['server_url']);
            $this->assertFalse($public['server_url_trusted']);

            // Saved so, a URL that names a private address now (its DNS answer changed) gets no request.
            update_option(Options::SETTINGS, ['server_url' => CrumbsServer::url(), 'server_url_trusted' => false] + Options::all());
            try {
                \Crumbs\WordPress\Client::fromOptions()->checkAppKey();
                $this->fail('a request to a private address');
            } catch (\Crumbs\WordPress\ClientError $e) {
                $this->assertSame('UNSAFE_URL', $e->errorCode);
            }
            $this->assertSame([], $sent);

            // A host a network administrator allows is reached, at the address checked.
            $allow = static fn (bool $allowed, string $host): bool => $allowed || $host === '127.0.0.1';
            add_filter('crumbs_server_host_allowed', $allow, 10, 2);
            $this->assertTrue(\Crumbs\WordPress\Client::fromOptions()->checkAppKey()['keyValid']);
            remove_filter('crumbs_server_host_allowed', $allow, 10);
            $this->assertSame([CrumbsServer::url() . '/graphql'], $sent);

            // A super admin (on a single site, every administrator) may name any address.
            wp_set_current_user($this->makeUser('administrator', 'adm')->ID);
            $any = Options::sanitize(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId()]);
            $this->assertSame(CrumbsServer::url(), $any['server_url']);
            $this->assertTrue($any['server_url_trusted']);
            update_option(Options::SETTINGS, $any);
            $this->assertTrue(\Crumbs\WordPress\Client::fromOptions()->checkAppKey()['keyValid']);
        } finally {
            remove_filter('pre_http_request', $capture, 10);
            remove_role('crumbs_site_manager');
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
