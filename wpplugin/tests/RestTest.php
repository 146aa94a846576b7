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

        $down = $this->post('/crumbs/v1/test-connection', ['server_url' => 'http://127.0.0.1:9'])->get_data();
        $this->assertFalse($down['ok']);
        $this->assertStringContainsString('Could not reach', $down['message']);
    }
}
