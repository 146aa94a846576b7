<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Admin\Settings;
use Crumbs\WordPress\Frontend;
use Crumbs\WordPress\Options;

final class SettingsTest extends TestCase
{
    protected function tearDown(): void
    {
        $registered = get_registered_settings();
        foreach ([Options::SETTINGS, Options::SECRET] as $option) {
            if (isset($registered[$option])) {
                unregister_setting(Settings::GROUP, $option);
            }
        }
        parent::tearDown();
    }

    private function errorCodes(): array
    {
        return array_column(get_settings_errors(Options::SETTINGS), 'code');
    }

    public function testSanitizeCleansEveryField(): void
    {
        $clean = Options::sanitize([
            'server_url' => '  https://crumbs.example.com/  ',
            'app_id' => ' app_abc123 ',
            'auto_capture' => '1',
            'identify_users' => 'on',
            'exclude_roles' => ['administrator', 'no_such_role', 'editor'],
            'event_user_registered' => 'Signed_Up',
            'event_user_logged_in' => '',
            'unexpected' => 'dropped',
        ]);
        $this->assertSame('https://crumbs.example.com', $clean['server_url']);
        $this->assertSame('app_abc123', $clean['app_id']);
        $this->assertTrue($clean['auto_capture']);
        $this->assertTrue($clean['identify_users']);
        $this->assertFalse($clean['require_consent'], 'an unchecked box is false');
        $this->assertSame(['administrator', 'editor'], $clean['exclude_roles']);
        $this->assertSame('signed_up', $clean['event_user_registered']);
        $this->assertSame('', $clean['event_user_logged_in'], 'an empty code turns the event off');
        $this->assertArrayNotHasKey('unexpected', $clean);
        $this->assertSame([], $this->errorCodes());
    }

    public function testSanitizeRefusesBadValuesAndKeepsTheOldOnes(): void
    {
        $this->setSettings(['server_url' => 'https://old.example.com', 'app_id' => 'app_old', 'event_comment_posted' => 'comment_posted']);
        $clean = Options::sanitize([
            'server_url' => 'javascript:alert(1)',
            'app_id' => 'app"><script>alert(1)</script>',
            'event_comment_posted' => 'bad code"><script>',
        ]);
        $this->assertSame('https://old.example.com', $clean['server_url']);
        $this->assertSame('app_old', $clean['app_id']);
        $this->assertSame('comment_posted', $clean['event_comment_posted']);
        $this->assertEqualsCanonicalizing(
            ['crumbs_server_url', 'crumbs_app_id', 'crumbs_event_comment_posted'],
            $this->errorCodes()
        );
    }

    public function testSecretIsKeptWhenTheFieldIsLeftEmpty(): void
    {
        update_option(Options::SECRET, 'sk_saved_secret_value');
        $this->assertSame('sk_saved_secret_value', Options::sanitizeSecret(''));
        $this->assertSame('sk_saved_secret_value', Options::sanitizeSecret('has spaces in it'));
        $this->assertSame(['crumbs_secret_key'], $this->errorCodes());
        $this->assertSame('sk_new_secret_value', Options::sanitizeSecret(' sk_new_secret_value '));
        $this->assertSame('sk_with\\backslash', Options::sanitizeSecret('sk_with\\backslash'), 'options.php has unslashed already');
    }

    public function testRegisteredSettingsSanitizeOnSaveAndSecretIsNotAutoloaded(): void
    {
        (new Settings())->register();
        update_option(Options::SETTINGS, ['server_url' => 'http://127.0.0.1:9/', 'app_id' => 'app_x', 'exclude_roles' => ['nope']]);
        $saved = get_option(Options::SETTINGS);
        $this->assertSame('http://127.0.0.1:9', $saved['server_url']);
        $this->assertSame([], $saved['exclude_roles']);

        update_option(Options::SECRET, 'sk_first_secret');
        update_option(Options::SECRET, '');
        $this->assertSame('sk_first_secret', get_option(Options::SECRET), 'saving the form with an empty key keeps it');

        global $wpdb;
        $autoload = $wpdb->get_var($wpdb->prepare("SELECT autoload FROM {$wpdb->options} WHERE option_name = %s", Options::SECRET));
        $this->assertSame('no', $autoload, 'the secret key is not loaded on every request');
        $this->assertArrayNotHasKey(Options::SECRET, wp_load_alloptions());
    }

    public function testSettingsPageNeverPrintsTheSecret(): void
    {
        $admin = $this->makeUser('administrator', 'admin');
        wp_set_current_user($admin->ID);
        update_option(Options::SECRET, 'sk_top_secret_value_123');
        $this->setSettings(['server_url' => 'https://crumbs.example.com', 'app_id' => 'app_"quoted"']);
        $settings = new Settings();
        $settings->register();
        ob_start();
        $settings->render();
        $html = (string) ob_get_clean();

        $this->assertStringNotContainsString('sk_top_secret_value_123', $html);
        $this->assertStringContainsString('name="crumbs_secret_key" value=""', $html);
        $this->assertStringContainsString('value="app_&quot;quoted&quot;"', $html);
        $this->assertStringContainsString("name='option_page' value='crumbs'", $html, 'settings_fields() prints the option page');
        $this->assertMatchesRegularExpression('/name="_wpnonce" value="[0-9a-f]{10}"/', $html, 'the form carries a nonce');
        $this->assertStringContainsString('id="crumbs-test-connection"', $html);
        $this->assertStringContainsString('name="crumbs_settings[exclude_roles][]" value="administrator"', $html);
    }

    public function testSettingsPageIsForManageOptionsOnly(): void
    {
        $editor = $this->makeUser('editor', 'editor');
        wp_set_current_user($editor->ID);
        $this->assertFalse(current_user_can('manage_options'));
        $this->assertSame('manage_options', apply_filters('option_page_capability_' . Settings::GROUP, 'manage_options'));
        $this->expectException(WpDieException::class);
        add_filter('wp_die_handler', [self::class, 'dieHandler']);
        try {
            (new Settings())->render();
        } finally {
            remove_filter('wp_die_handler', [self::class, 'dieHandler']);
        }
    }

    public static function dieHandler(): callable
    {
        return static function ($message): void {
            throw new WpDieException(is_string($message) ? $message : 'wp_die');
        };
    }

    public function testFrontEndTagCarriesAppIdAndNoSecret(): void
    {
        update_option(Options::SECRET, 'sk_never_in_pages');
        $this->setSettings(['server_url' => 'https://crumbs.example.com', 'app_id' => 'app_front', 'auto_capture' => false, 'require_consent' => true]);
        ob_start();
        (new Frontend())->printLibrary();
        $html = (string) ob_get_clean();
        $this->assertStringContainsString('src="https://crumbs.example.com/crumbs.js"', $html);
        // async: the page's DOMContentLoaded never waits for the Crumbs server (defer made it wait).
        $this->assertStringContainsString(' async', $html);
        $this->assertStringNotContainsString('defer', $html);
        $this->assertStringContainsString('data-app-id="app_front"', $html);
        $this->assertStringContainsString('data-auto-view="false" data-auto-click="false" data-auto-submit="false"', $html);
        $this->assertStringContainsString('data-require-consent="true"', $html);
        $this->assertStringNotContainsString('sk_never_in_pages', $html);
        $this->assertStringNotContainsString('crumbs("identify"', $html, 'nobody is logged in');
    }

    public function testFrontEndSkipsExcludedRolesAndIdentifiesOthers(): void
    {
        $this->setSettings(['server_url' => 'https://crumbs.example.com', 'app_id' => 'app_front', 'identify_users' => true, 'exclude_roles' => ['administrator']]);
        $admin = $this->makeUser('administrator', 'admin');
        wp_set_current_user($admin->ID);
        $this->assertSame('excluded role', Frontend::skipReason());
        ob_start();
        (new Frontend())->printLibrary();
        $this->assertSame('', ob_get_clean());

        $author = $this->makeUser('author', 'author');
        // Stored as-is (e.g. by another plugin), bypassing the sanitizing of wp_update_user.
        global $wpdb;
        $wpdb->update($wpdb->users, ['display_name' => 'Ann </script><script>alert(1)</script>'], ['ID' => $author->ID]);
        clean_user_cache($author->ID);
        wp_set_current_user($author->ID);
        $this->assertSame('', Frontend::skipReason());
        ob_start();
        (new Frontend())->printLibrary();
        $html = (string) ob_get_clean();
        $this->assertStringContainsString('crumbs("identify","' . $author->user_email . '",{"name":"Ann \\u003C\\/script\\u003E', $html);
        $this->assertSame(3, substr_count($html, '</script>'), 'only the three tags close a script');
        $this->assertLessThan(strpos($html, 'id="crumbs-js"'), strpos($html, 'crumbs("identify"'), 'the stub call comes first');

        $this->setSettings(['identify_users' => false]);
        ob_start();
        (new Frontend())->printLibrary();
        $this->assertStringNotContainsString('identify', (string) ob_get_clean());
    }

    public function testConsentIntegration(): void
    {
        $this->assertTrue(
            apply_filters('wp_consent_api_registered_crumbs/crumbs.php', false),
            'the plugin declares itself to the WP Consent API'
        );
        $this->setSettings(['server_url' => 'https://crumbs.example.com', 'app_id' => 'app_front', 'require_consent' => true]);
        (new Frontend())->enqueueConsentBridge();
        $this->assertSame(
            function_exists('wp_has_consent'),
            wp_script_is(Frontend::CONSENT_HANDLE, 'enqueued'),
            'the consent bridge loads only when the WP Consent API is active'
        );
    }

    public function testNotConfiguredLoadsNothing(): void
    {
        $this->setSettings(['server_url' => '', 'app_id' => '']);
        $this->assertSame('not configured', Frontend::skipReason());
    }
}
