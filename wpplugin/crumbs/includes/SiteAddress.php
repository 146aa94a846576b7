<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * The address the site's server-side device ids are made with (see ServerEvents): kept from the
 * first time one was made, so that the site moving does not start new devices for all of its
 * users, commenters and customers.
 *
 * Device ids include an address so that a copy of the site (a staging clone, which copies the
 * site id and the users too) makes devices of its own: the copy's new user 57 is not the live
 * site's user 57. The address the ids were made with is kept, and used as long as the site's
 * address is the same site's: the same host and path, with or without `www.`, over http or https
 * (one host cannot serve two copies). Under another host or path it cannot tell a move from a
 * copy, so it makes new devices there, as a copy must, and asks the site's administrators which
 * it is (admin notice): "the site moved here" keeps the devices from before, "this is a copy" makes
 * the new address the copy's own.
 *
 * The option is stored base64-encoded: a migration's search-and-replace of the old address
 * (wp search-replace, migration plugins) would otherwise rewrite it, and the moved site would
 * start new devices without anyone being asked.
 */
final class SiteAddress
{
    public const OPTION = 'crumbs_device_home';
    public const ACTION = 'crumbs_site_address';

    public function hook(): void
    {
        add_action('admin_notices', [self::class, 'notice']);
        add_action('admin_post_' . self::ACTION, [self::class, 'answer']);
    }

    /**
     * The address device ids are made with now: the kept one while the site is at the same
     * address or one its administrators said it moved to, the current one otherwise.
     */
    public static function deviceHome(): string
    {
        $current = home_url('/');
        $saved = self::saved();
        if ($saved === null) {
            self::save(['home' => $current, 'moved' => [], 'copied' => []]);
            return $current;
        }
        return self::isSameSite($current, $saved) ? $saved['home'] : $current;
    }

    /**
     * The address kept for device ids, or '' before the first one was made.
     */
    public static function keptHome(): string
    {
        return self::saved()['home'] ?? '';
    }

    /**
     * The addresses a copy's administrators said were the original's when they answered that it
     * is a copy (those Options::homeUrls() held then): the devices of user ids made there are the
     * original's users', not the copy's (see Options::ownHomeUrls()).
     *
     * @return list<string>
     */
    public static function copiedHomes(): array
    {
        return self::saved()['copied'] ?? [];
    }

    /**
     * Whether the site is at an address whose devices it does not know to be its own: another
     * host or path than the kept one, not confirmed as a move.
     */
    public static function undecided(): bool
    {
        $saved = self::saved();
        return $saved !== null && !self::isSameSite(home_url('/'), $saved);
    }

    /**
     * An address as the same site would have it under another scheme or with or without `www.`:
     * host (lowercase, without `www.`), port and path, without a trailing slash.
     */
    public static function normalize(string $url): string
    {
        $parts = wp_parse_url($url);
        if (!is_array($parts)) {
            return strtolower(untrailingslashit($url));
        }
        $host = strtolower((string) ($parts['host'] ?? ''));
        if (str_starts_with($host, 'www.')) {
            $host = substr($host, 4);
        }
        $port = isset($parts['port']) && !in_array((int) $parts['port'], [80, 443], true) ? ':' . (int) $parts['port'] : '';
        return $host . $port . untrailingslashit((string) ($parts['path'] ?? ''));
    }

    /**
     * @param array{home: string, moved: list<string>, copied: list<string>} $saved
     */
    private static function isSameSite(string $url, array $saved): bool
    {
        $address = self::normalize($url);
        return $address === self::normalize($saved['home']) || in_array($address, $saved['moved'], true);
    }

    /**
     * @return array{home: string, moved: list<string>, copied: list<string>}|null
     */
    private static function saved(): ?array
    {
        $raw = get_option(self::OPTION, '');
        $decoded = is_string($raw) && $raw !== '' ? json_decode((string) base64_decode($raw, true), true) : null;
        if (!is_array($decoded) || !is_string($decoded['home'] ?? null) || $decoded['home'] === '') {
            return null;
        }
        $list = static fn (mixed $v): array => is_array($v) ? array_values(array_filter($v, 'is_string')) : [];
        return ['home' => $decoded['home'], 'moved' => $list($decoded['moved'] ?? null), 'copied' => $list($decoded['copied'] ?? null)];
    }

    /**
     * @param array{home: string, moved: list<string>, copied: list<string>} $saved
     */
    private static function save(array $saved): void
    {
        // Autoloaded: every server-side event reads it.
        update_option(self::OPTION, base64_encode((string) wp_json_encode($saved)), true);
    }

    /**
     * The administrators' answer: the site moved to its current address (it keeps its devices),
     * or it is a copy (its current address becomes its own, with devices of its own). A copy
     * notes the addresses it copied from the original (copiedHomes()): its users created after
     * the clone get the user ids the original gives its own new users (the copy's user 58 is not
     * the live site's), so its privacy tools must not take the original's user devices for theirs.
     */
    public static function decide(bool $moved): void
    {
        $saved = self::saved();
        if ($saved === null) {
            return;
        }
        if ($moved) {
            $saved['moved'] = array_values(array_unique([...$saved['moved'], self::normalize(home_url('/'))]));
            self::save($saved);
            return;
        }
        $copied = array_diff([...$saved['copied'], ...Options::homeUrls()], [home_url('/')]);
        self::save(['home' => home_url('/'), 'moved' => [], 'copied' => array_values(array_unique($copied))]);
    }

    /**
     * admin-post.php?action=crumbs_site_address: the notice's buttons.
     */
    public static function answer(): void
    {
        if (!current_user_can('manage_options')) {
            wp_die(esc_html__('You do not have permission to manage Crumbs.', 'crumbs'), '', ['response' => 403]);
        }
        check_admin_referer(self::ACTION);
        $choice = sanitize_key((string) wp_unslash($_POST['choice'] ?? ''));
        if ($choice === 'moved' || $choice === 'copy') {
            self::decide($choice === 'moved');
        }
        wp_safe_redirect(wp_get_referer() ?: admin_url('options-general.php?page=crumbs'));
        exit;
    }

    /**
     * On the Dashboard, Plugins and Settings → Crumbs screens of those who may change the
     * settings, while the site is at an address not known to be its own.
     */
    public static function notice(): void
    {
        $screen = function_exists('get_current_screen') ? get_current_screen() : null;
        if (
            $screen === null || !in_array($screen->id, ['dashboard', 'plugins', 'settings_page_crumbs'], true)
            || !current_user_can('manage_options') || !Options::isConfigured() || !self::undecided()
        ) {
            return;
        }
        echo self::noticeHtml();
    }

    /**
     * The notice, escaped.
     */
    public static function noticeHtml(): string
    {
        $button = static fn (string $choice, string $label, string $class): string =>
            '<button type="submit" name="choice" value="' . esc_attr($choice) . '" class="button ' . esc_attr($class) . '">' . esc_html($label) . '</button>';
        return '<div class="notice notice-warning" id="crumbs-site-address"><p><strong>'
            . esc_html__('Crumbs: this site is at a new address.', 'crumbs') . '</strong> '
            . esc_html(sprintf(
                /* translators: 1: the address server-side device ids were made with, 2: the site's address now */
                __('Server-side events of its users, commenters and customers were recorded on devices made at %1$s. At %2$s they go to new devices, as a copy of the site (a staging site) should, so that its users are not mixed with the live site\'s.', 'crumbs'),
                self::keptHome(),
                home_url('/')
            ))
            . '</p><form method="post" action="' . esc_url(admin_url('admin-post.php')) . '"><p>'
            . '<input type="hidden" name="action" value="' . esc_attr(self::ACTION) . '" />'
            . wp_nonce_field(self::ACTION, '_wpnonce', true, false)
            . $button('moved', __('The site moved here: keep its devices', 'crumbs'), 'button-primary') . ' '
            . $button('copy', __('This is a copy: keep its new devices', 'crumbs'), '')
            . '</p></form></div>';
    }
}
