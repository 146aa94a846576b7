<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * The plugin's settings: one array option, plus the app secret key in an option of its own
 * that is never autoloaded and never printed into a page.
 */
final class Options
{
    public const SETTINGS = 'crumbs_settings';
    public const SECRET = 'crumbs_secret_key';
    public const SITE_ID = 'crumbs_site_id';
    /** The library's immutable URL, as the saved server named it at the last Test connection. */
    public const LIBRARY = 'crumbs_library';
    /** The home URLs device ids were made with (see homeUrls()). */
    public const HOME_URLS = 'crumbs_home_urls';

    /** Event codes are lowercase letters, digits, `_`, `-` and `.`, at most 64 characters. */
    public const CODE_PATTERN = '/^[a-z0-9_.\-]{1,64}$/';

    /**
     * @return array<string, mixed>
     */
    public static function defaults(): array
    {
        return [
            'server_url' => '',
            'app_id' => '',
            'auto_capture' => true,
            'identify_users' => false,
            'exclude_roles' => ['administrator'],
            'require_consent' => false,
            'event_user_registered' => 'user_registered',
            'event_user_logged_in' => 'user_logged_in',
            'event_comment_posted' => 'comment_posted',
            'event_order_completed' => 'order_completed',
        ];
    }

    /**
     * @return array<string, mixed>
     */
    public static function all(): array
    {
        $saved = get_option(self::SETTINGS, []);
        return array_merge(self::defaults(), is_array($saved) ? $saved : []);
    }

    public static function get(string $key): mixed
    {
        return self::all()[$key] ?? null;
    }

    public static function serverUrl(): string
    {
        return untrailingslashit((string) self::get('server_url'));
    }

    /**
     * Whether the saved server URL may name any address: it was saved by a super admin or by
     * code (see ServerAddress). Settings saved before this was kept count as such on a single
     * site, not on a network.
     */
    public static function serverUrlTrusted(): bool
    {
        $saved = get_option(self::SETTINGS, []);
        $trusted = is_array($saved) ? ($saved['server_url_trusted'] ?? null) : null;
        return is_bool($trusted) ? $trusted : !is_multisite();
    }

    public static function appId(): string
    {
        return (string) self::get('app_id');
    }

    public static function secret(): string
    {
        return (string) get_option(self::SECRET, '');
    }

    /**
     * A random id for this WordPress install, made once. Server-side device ids and messageIds
     * include it, so a reinstalled site at the same URL never collides with its predecessor.
     */
    public static function siteId(): string
    {
        $id = (string) get_option(self::SITE_ID, '');
        if ($id === '') {
            $id = str_replace('-', '', wp_generate_uuid4());
            add_option(self::SITE_ID, $id);
            $id = (string) get_option(self::SITE_ID, $id);
        }
        return $id;
    }

    /**
     * The addresses the plugin has made device ids with (see SiteAddress), the current one among
     * them. The privacy tools look for a person's devices under each address kept here, so the
     * ones made before the site was at its current address are exported and erased too (a copy
     * of the site, or a move not confirmed yet, makes devices of its own; versions before
     * SiteAddress made new ones on every change of address, http to https included). Written
     * only when an address is new, so a site that answers under two addresses does not rewrite
     * it on every request. The devices of user ids are looked for only at ownHomeUrls().
     *
     * @return non-empty-list<string>
     */
    public static function homeUrls(): array
    {
        $current = SiteAddress::deviceHome();
        $saved = get_option(self::HOME_URLS, []);
        $saved = is_array($saved) ? array_values(array_filter($saved, 'is_string')) : [];
        $missing = array_values(array_diff(array_unique([SiteAddress::keptHome(), $current]), $saved, ['']));
        if ($missing !== []) {
            $saved = [...$saved, ...$missing];
            // Autoloaded: every server-side event reads it.
            update_option(self::HOME_URLS, $saved, true);
        }
        return $saved;
    }

    /**
     * homeUrls() without those a copy of the site copied from the original (see
     * SiteAddress::copiedHomes()): where the devices of the site's own user ids were made. A
     * device made from an email is the same person's at every address; one made from a user id
     * at the original's address is the original's user with that id, who may be someone else.
     *
     * @return non-empty-list<string>
     */
    public static function ownHomeUrls(): array
    {
        $own = array_values(array_diff(self::homeUrls(), SiteAddress::copiedHomes()));
        return $own !== [] ? $own : [SiteAddress::deviceHome()];
    }

    /**
     * The address device ids are made with now (SiteAddress::deviceHome()), kept among homeUrls().
     */
    public static function homeUrl(): string
    {
        self::homeUrls();
        return SiteAddress::deviceHome();
    }

    /**
     * The immutable URL of the library (`…/crumbs.<version>.js`) learned from the saved server at
     * the last successful Test connection, or '' when unknown or learned from another server.
     */
    public static function immutableLibraryUrl(): string
    {
        $saved = get_option(self::LIBRARY, []);
        if (!is_array($saved) || ($saved['server_url'] ?? '') !== self::serverUrl() || self::serverUrl() === '') {
            return '';
        }
        return (string) ($saved['url'] ?? '');
    }

    public static function isConfigured(): bool
    {
        return self::serverUrl() !== '' && self::appId() !== '';
    }

    /**
     * Sanitize callback of the settings option (Settings API).
     *
     * @param mixed $input
     * @return array<string, mixed>
     */
    public static function sanitize($input): array
    {
        $old = self::all();
        // options.php has already unslashed the submitted values.
        $input = is_array($input) ? $input : [];
        $clean = [];

        $url = trim((string) ($input['server_url'] ?? ''));
        $cleanUrl = self::sanitizeServerUrl($url);
        if ($url !== '' && $cleanUrl === '') {
            self::error('server_url', __('The Crumbs server URL must be an http:// or https:// address.', 'crumbs'));
            $cleanUrl = (string) $old['server_url'];
        }
        // Saved by a super admin, the URL may name any address; changed by another user, only a
        // public one, and its requests go to the address checked (see ServerAddress).
        $trusted = ServerAddress::mayUseAnyAddress() || Options::serverUrlTrusted();
        if (!ServerAddress::mayUseAnyAddress() && $cleanUrl !== (string) $old['server_url']) {
            if ($cleanUrl !== '' && ServerAddress::publicAddress($cleanUrl) === '') {
                self::error('server_url', __('The Crumbs server URL names a private or local address (or does not resolve). Only a network administrator may point Crumbs there.', 'crumbs'));
                $cleanUrl = (string) $old['server_url'];
            } else {
                $trusted = false;
            }
        }
        $clean['server_url'] = $cleanUrl;
        $clean['server_url_trusted'] = $trusted;

        $appId = trim(sanitize_text_field((string) ($input['app_id'] ?? '')));
        if ($appId !== '' && !preg_match('/^[A-Za-z0-9_.:\-]{1,128}$/', $appId)) {
            self::error('app_id', __('The app id may contain only letters, digits, "_", "-", "." and ":".', 'crumbs'));
            $appId = (string) $old['app_id'];
        }
        $clean['app_id'] = $appId;

        foreach (['auto_capture', 'identify_users', 'require_consent'] as $flag) {
            $clean[$flag] = !empty($input[$flag]);
        }

        $roles = is_array($input['exclude_roles'] ?? null) ? $input['exclude_roles'] : [];
        $known = array_keys(wp_roles()->get_names());
        $clean['exclude_roles'] = array_values(array_intersect(array_map('strval', $roles), $known));

        foreach (['event_user_registered', 'event_user_logged_in', 'event_comment_posted', 'event_order_completed'] as $key) {
            $code = strtolower(trim(sanitize_text_field((string) ($input[$key] ?? ''))));
            if ($code !== '' && !preg_match(self::CODE_PATTERN, $code)) {
                self::error($key, sprintf(
                    /* translators: %s: the rejected event code */
                    __('"%s" is not a valid event code: use lowercase letters, digits, "_", "-" and ".", at most 64 characters.', 'crumbs'),
                    $code
                ));
                $code = (string) $old[$key];
            }
            $clean[$key] = $code;
        }

        return $clean;
    }

    /**
     * Sanitize callback of the secret key option. An empty submission keeps the saved key, because
     * the settings form never shows it.
     *
     * @param mixed $input
     */
    public static function sanitizeSecret($input): string
    {
        $key = trim(is_scalar($input) ? (string) $input : '');
        if ($key === '') {
            return self::secret();
        }
        if (!preg_match('/^[\x21-\x7e]{8,256}$/', $key)) {
            self::error('secret_key', __('The secret key looks wrong: paste it exactly as Crumbs showed it.', 'crumbs'));
            return self::secret();
        }
        return $key;
    }

    /**
     * Returns a clean http(s) URL without trailing slash, or '' when the input is not one.
     */
    public static function sanitizeServerUrl(string $url): string
    {
        $url = esc_url_raw(trim($url), ['http', 'https']);
        if ($url === '' || !self::isHttpUrl($url)) {
            return '';
        }
        return untrailingslashit($url);
    }

    private static function isHttpUrl(string $url): bool
    {
        $parts = wp_parse_url($url);
        return is_array($parts)
            && in_array($parts['scheme'] ?? '', ['http', 'https'], true)
            && ($parts['host'] ?? '') !== '';
    }

    private static function error(string $field, string $message): void
    {
        if (function_exists('add_settings_error')) {
            add_settings_error(self::SETTINGS, 'crumbs_' . $field, $message);
        }
    }
}
