<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Loads the Crumbs browser library (served by the Crumbs server at /crumbs.js) on the front end:
 * async, so that the page never waits for it, configured through data attributes, with no secret
 * in the page.
 */
final class Frontend
{
    public const CONSENT_HANDLE = 'crumbs-consent';

    /** Queues calls made before the library has loaded; the library replays them. */
    public const STUB = 'window.crumbs=window.crumbs||function(){(window.crumbs.q=window.crumbs.q||[]).push(arguments)};';

    public function hook(): void
    {
        add_action('wp_head', [$this, 'printLibrary'], 5);
        add_action('wp_enqueue_scripts', [$this, 'enqueueConsentBridge']);
        add_filter('wp_consent_api_registered_' . plugin_basename(PLUGIN_FILE), '__return_true');
    }

    /**
     * Why the library should not load for this request, or '' when it should.
     */
    public static function skipReason(): string
    {
        if (!Options::isConfigured()) {
            return 'not configured';
        }
        if (is_admin() || is_feed() || is_robots() || is_trackback()) {
            return 'not a front-end page';
        }
        if (is_user_logged_in()) {
            $excluded = (array) Options::get('exclude_roles');
            $roles = (array) wp_get_current_user()->roles;
            if (array_intersect($excluded, $roles) !== []) {
                return 'excluded role';
            }
        }
        return (string) apply_filters('crumbs_skip_tracking', '');
    }

    /**
     * The script tag's attributes, in the data-* names of the Crumbs library (jsclient/index.d.ts).
     *
     * @return array<string, string|bool>
     */
    public static function scriptAttributes(): array
    {
        $attrs = [
            'src' => Options::serverUrl() . '/crumbs.js',
            // Not defer: the browser holds DOMContentLoaded for a deferred script, so a Crumbs
            // server that does not answer held the site's own ready handlers.
            'async' => true,
            'id' => 'crumbs-js',
            'data-app-id' => Options::appId(),
        ];
        if (!Options::get('auto_capture')) {
            $attrs['data-auto-view'] = 'false';
            $attrs['data-auto-click'] = 'false';
            $attrs['data-auto-submit'] = 'false';
        }
        if (Options::get('require_consent')) {
            $attrs['data-require-consent'] = 'true';
        }
        return (array) apply_filters('crumbs_script_attributes', $attrs);
    }

    /**
     * The identify call for a logged-in user, queued for the library through its `crumbs` stub,
     * or '' when users are not identified. It holds only the visitor's own email and name.
     */
    public static function identifyScript(): string
    {
        if (!Options::get('identify_users') || !is_user_logged_in()) {
            return '';
        }
        $user = wp_get_current_user();
        if ($user->user_email === '') {
            return '';
        }
        $flags = JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_UNESCAPED_UNICODE;
        return self::STUB . 'crumbs("identify",' . wp_json_encode($user->user_email, $flags) . ','
            . wp_json_encode(['name' => ServerEvents::leadName($user->display_name)], $flags) . ');';
    }

    public function printLibrary(): void
    {
        if (self::skipReason() !== '') {
            return;
        }
        $attrs = self::scriptAttributes();
        $identify = self::identifyScript();
        // Before the library starts: after a logout, or when this page identifies another user than
        // the one the browser's device was identified as, this page is a new device (see NewDevice).
        wp_print_inline_script_tag(
            NewDevice::script($attrs, $identify !== '' ? get_current_user_id() : 0),
            ['id' => 'crumbs-new-device']
        );
        if ($identify !== '') {
            wp_print_inline_script_tag($identify, ['id' => 'crumbs-identify']);
        }
        // wp_print_script_tag escapes every attribute value.
        wp_print_script_tag($attrs);
    }

    /**
     * With "require consent" on and the WP Consent API active, a small bridge passes the
     * visitor's statistics consent to the library.
     */
    public function enqueueConsentBridge(): void
    {
        if (!Options::get('require_consent') || !function_exists('wp_has_consent') || self::skipReason() !== '') {
            return;
        }
        wp_enqueue_script(
            self::CONSENT_HANDLE,
            plugins_url('assets/consent.js', PLUGIN_FILE),
            [],
            VERSION,
            true
        );
        $category = (string) apply_filters('crumbs_consent_category', 'statistics');
        wp_add_inline_script(self::CONSENT_HANDLE, 'window.crumbsConsentCategory=' . wp_json_encode($category) . ';', 'before');
    }
}
