<?php

declare(strict_types=1);

namespace Crumbs\WordPress\Admin;

use Crumbs\WordPress\Delivery;
use Crumbs\WordPress\Options;

use const Crumbs\WordPress\PLUGIN_FILE;
use const Crumbs\WordPress\VERSION;

/**
 * Settings → Crumbs, built on the Settings API: options.php checks the capability and the nonce,
 * Options::sanitize() cleans the input. The secret key field is never filled in.
 */
final class Settings
{
    public const PAGE = 'crumbs';
    public const GROUP = 'crumbs';

    public function hook(): void
    {
        add_action('admin_init', [$this, 'register']);
        add_action('admin_menu', [$this, 'menu']);
        add_action('admin_enqueue_scripts', [$this, 'enqueue']);
        add_filter('plugin_action_links_' . plugin_basename(PLUGIN_FILE), [$this, 'actionLinks']);
    }

    public function menu(): void
    {
        add_options_page(
            __('Crumbs', 'crumbs'),
            __('Crumbs', 'crumbs'),
            'manage_options',
            self::PAGE,
            [$this, 'render']
        );
    }

    /**
     * @param array<int|string, string> $links
     * @return array<int|string, string>
     */
    public function actionLinks(array $links): array
    {
        $links[] = '<a href="' . esc_url(admin_url('options-general.php?page=' . self::PAGE)) . '">'
            . esc_html__('Settings', 'crumbs') . '</a>';
        return $links;
    }

    public function register(): void
    {
        register_setting(self::GROUP, Options::SETTINGS, [
            'type' => 'array',
            'sanitize_callback' => [Options::class, 'sanitize'],
            'default' => Options::defaults(),
            'show_in_rest' => false,
        ]);
        register_setting(self::GROUP, Options::SECRET, [
            'type' => 'string',
            'sanitize_callback' => [Options::class, 'sanitizeSecret'],
            'default' => '',
            'show_in_rest' => false,
        ]);

        add_settings_section('crumbs_connection', __('Connection', 'crumbs'), [$this, 'connectionIntro'], self::PAGE);
        $this->field('server_url', __('Crumbs server URL', 'crumbs'), 'crumbs_connection', [$this, 'urlField']);
        $this->field('app_id', __('App id', 'crumbs'), 'crumbs_connection', [$this, 'appIdField']);
        $this->field('secret_key', __('App secret key', 'crumbs'), 'crumbs_connection', [$this, 'secretField']);

        add_settings_section('crumbs_tracking', __('Tracking', 'crumbs'), '__return_null', self::PAGE);
        $this->field('auto_capture', __('Auto-capture', 'crumbs'), 'crumbs_tracking', fn () => $this->checkbox(
            'auto_capture',
            __('Record page views, clicks and form submits without any markup.', 'crumbs')
        ));
        $this->field('identify_users', __('Identify users', 'crumbs'), 'crumbs_tracking', fn () => $this->checkbox(
            'identify_users',
            __('Link logged-in WordPress users to their email address in Crumbs.', 'crumbs')
        ));
        $this->field('require_consent', __('Require consent', 'crumbs'), 'crumbs_tracking', fn () => $this->checkbox(
            'require_consent',
            function_exists('wp_has_consent')
                ? __('Track only visitors who gave statistics consent (WP Consent API detected).', 'crumbs')
                : __('Track only after consent. Install a consent plugin that supports the WP Consent API to collect it.', 'crumbs')
        ));
        $this->field('exclude_roles', __('Do not track', 'crumbs'), 'crumbs_tracking', [$this, 'rolesField']);

        add_settings_section('crumbs_server_events', __('Server-side events', 'crumbs'), [$this, 'serverEventsIntro'], self::PAGE);
        $events = [
            'event_user_registered' => __('User registered', 'crumbs'),
            'event_user_logged_in' => __('User logged in', 'crumbs'),
            'event_comment_posted' => __('Comment posted', 'crumbs'),
            'event_order_completed' => __('WooCommerce order completed', 'crumbs'),
        ];
        foreach ($events as $key => $label) {
            $this->field($key, $label, 'crumbs_server_events', fn () => $this->codeField($key));
        }
    }

    private function field(string $id, string $title, string $section, callable $render): void
    {
        add_settings_field('crumbs_' . $id, $title, $render, self::PAGE, $section, ['label_for' => 'crumbs_' . $id]);
    }

    public function enqueue(string $hook): void
    {
        if ($hook !== 'settings_page_' . self::PAGE) {
            return;
        }
        wp_enqueue_script(
            'crumbs-admin',
            plugins_url('assets/admin.js', PLUGIN_FILE),
            ['wp-api-fetch', 'wp-i18n'],
            VERSION,
            true
        );
        wp_set_script_translations('crumbs-admin', 'crumbs', dirname(PLUGIN_FILE) . '/languages');
    }

    public function render(): void
    {
        if (!current_user_can('manage_options')) {
            wp_die(esc_html__('You do not have permission to manage Crumbs.', 'crumbs'), '', ['response' => 403]);
        }
        echo '<div class="wrap"><h1>' . esc_html__('Crumbs', 'crumbs') . '</h1>';
        settings_errors(Options::SETTINGS);
        // Delivery escapes what it prints.
        echo Delivery::notices();
        echo '<form method="post" action="' . esc_url(admin_url('options.php')) . '" id="crumbs-settings">';
        settings_fields(self::GROUP);
        do_settings_sections(self::PAGE);
        echo '<p><button type="button" class="button" id="crumbs-test-connection">'
            . esc_html__('Test connection', 'crumbs') . '</button> '
            . '<span id="crumbs-test-result" role="status" aria-live="polite"></span></p>';
        submit_button();
        echo '</form>';
        echo '<h2>' . esc_html__('Using Crumbs', 'crumbs') . '</h2><p>'
            . esc_html__('Add [crumbs_event code="pdf_download"] to fire an event on page view, or wrap content in [crumbs_event code="trial_click" on="click"]...[/crumbs_event] to fire it on click. In the block editor, use the "Crumbs event trigger" block or the "Crumbs event" panel of Button, Image and other blocks.', 'crumbs')
            . '</p></div>';
    }

    public function connectionIntro(): void
    {
        echo '<p>' . esc_html__('Copy these from your Crumbs app. The secret key stays on this server: it is used for server-side events and is never shown in pages.', 'crumbs') . '</p>';
    }

    public function serverEventsIntro(): void
    {
        echo '<p>' . esc_html__('Event codes sent from WordPress itself (source "wordpress"). Define each code in Crumbs first; leave a field empty to turn that event off.', 'crumbs') . '</p>';
    }

    public function urlField(): void
    {
        printf(
            '<input type="url" class="regular-text code" id="crumbs_server_url" name="%s[server_url]" value="%s" placeholder="https://crumbs.example.com" />',
            esc_attr(Options::SETTINGS),
            esc_attr((string) Options::get('server_url'))
        );
        $library = Options::immutableLibraryUrl();
        echo '<p class="description" id="crumbs-library">'
            . esc_html__('Immutable URL of the current library version (cached for a year; for pages that pin it):', 'crumbs')
            . ' <code id="crumbs-library-url">'
            . esc_html($library !== '' ? $library : __('shown after Test connection', 'crumbs'))
            . '</code></p>';
    }

    public function appIdField(): void
    {
        printf(
            '<input type="text" class="regular-text code" id="crumbs_app_id" name="%s[app_id]" value="%s" autocomplete="off" />',
            esc_attr(Options::SETTINGS),
            esc_attr((string) Options::get('app_id'))
        );
    }

    public function secretField(): void
    {
        $saved = Options::secret() !== '';
        printf(
            '<input type="password" class="regular-text code" id="crumbs_secret_key" name="%s" value="" autocomplete="new-password" placeholder="%s" />',
            esc_attr(Options::SECRET),
            esc_attr($saved ? __('Saved — leave empty to keep it', 'crumbs') : '')
        );
        echo '<p class="description">' . esc_html__('Needed for server-side events, the block editor event list and personal-data export/erasure.', 'crumbs') . '</p>';
    }

    private function checkbox(string $key, string $label): void
    {
        printf(
            '<label><input type="checkbox" id="crumbs_%1$s" name="%2$s[%1$s]" value="1" %3$s /> %4$s</label>',
            esc_attr($key),
            esc_attr(Options::SETTINGS),
            checked((bool) Options::get($key), true, false),
            esc_html($label)
        );
    }

    public function rolesField(): void
    {
        $excluded = (array) Options::get('exclude_roles');
        echo '<fieldset id="crumbs_exclude_roles">';
        foreach (wp_roles()->get_names() as $role => $name) {
            printf(
                '<label><input type="checkbox" name="%1$s[exclude_roles][]" value="%2$s" %3$s /> %4$s</label><br />',
                esc_attr(Options::SETTINGS),
                esc_attr((string) $role),
                checked(in_array($role, $excluded, true), true, false),
                esc_html(translate_user_role((string) $name))
            );
        }
        echo '<p class="description">' . esc_html__('Logged-in users with these roles are not tracked.', 'crumbs') . '</p></fieldset>';
    }

    private function codeField(string $key): void
    {
        printf(
            '<input type="text" class="regular-text code" id="crumbs_%1$s" name="%2$s[%1$s]" value="%3$s" pattern="[a-z0-9_.\-]{0,64}" />',
            esc_attr($key),
            esc_attr(Options::SETTINGS),
            esc_attr((string) Options::get($key))
        );
    }
}
