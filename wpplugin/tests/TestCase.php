<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Options;

/**
 * Base test: saves the plugin's options before each test and restores them after, and logs out.
 */
abstract class TestCase extends \PHPUnit\Framework\TestCase
{
    /** @var array<string, mixed> */
    private array $savedSettings = [];
    private string $savedSecret = '';

    protected function setUp(): void
    {
        parent::setUp();
        $this->savedSettings = (array) get_option(Options::SETTINGS, []);
        $this->savedSecret = (string) get_option(Options::SECRET, '');
        wp_set_current_user(0);
        global $wp_settings_errors;
        $wp_settings_errors = [];
    }

    protected function tearDown(): void
    {
        update_option(Options::SETTINGS, $this->savedSettings);
        update_option(Options::SECRET, $this->savedSecret);
        wp_set_current_user(0);
        parent::tearDown();
    }

    /**
     * @param array<string, mixed> $changes
     */
    protected function setSettings(array $changes): void
    {
        // Bypass the sanitize callback so tests can set up any state directly.
        update_option(Options::SETTINGS, array_merge(Options::all(), $changes));
    }

    protected function requireCrumbs(): void
    {
        if (!CrumbsServer::available()) {
            $this->markTestSkipped('no Crumbs server (CRUMBS_URL, CRUMBS_APP_ID, CRUMBS_SECRET)');
        }
    }

    protected function makeUser(string $role, string $prefix = 'user'): \WP_User
    {
        $login = $prefix . '_' . wp_generate_password(8, false, false);
        $id = wp_insert_user([
            'user_login' => strtolower($login),
            'user_email' => strtolower($login) . '@example.org',
            'user_pass' => wp_generate_password(16),
            'display_name' => 'Test ' . $login,
            'role' => $role,
        ]);
        $this->assertIsInt($id, is_wp_error($id) ? $id->get_error_message() : '');
        return get_userdata($id);
    }
}

/**
 * Thrown instead of exiting when code under test calls wp_die().
 */
final class WpDieException extends \RuntimeException
{
}
