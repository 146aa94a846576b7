<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Which addresses the server URL may name. On a multisite network a site's administrator may
 * change the site's settings but must not make the network's server send requests to its
 * private network (a cloud metadata address, a database's or a cache's port on the same host),
 * nor read their answers through Test connection. So a server URL set by a logged-in user who is
 * not a super admin (on a single site every administrator is one) must resolve to public
 * addresses only, and requests to it are pinned to the address checked, so that a DNS answer
 * that changes afterwards cannot lead them elsewhere. A network administrator may allow a host
 * with the `crumbs_server_host_allowed` filter (WordPress's own `http_request_host_is_external`
 * allows the site's own host, any port of it included, so it is not used here).
 */
final class ServerAddress
{
    /**
     * Whether the current user may point the server URL anywhere: a super admin, or code
     * running without a user (WP-CLI, cron, a plugin's own code).
     */
    public static function mayUseAnyAddress(): bool
    {
        return !is_user_logged_in() || is_super_admin();
    }

    /**
     * The public IPv4 address the URL's host resolves to, or '' when it does not resolve or any
     * of its addresses is private, loopback, link-local, reserved or shared (100.64.0.0/10).
     */
    public static function publicAddress(string $url): string
    {
        $host = (string) wp_parse_url($url, PHP_URL_HOST);
        if ($host === '' || str_contains($host, ':') || str_starts_with($host, '[')) {
            return ''; // IPv6 literals: not checked, so not allowed.
        }
        if (apply_filters('crumbs_server_host_allowed', false, $host, $url)) {
            $resolved = gethostbyname($host);
            return filter_var($resolved, FILTER_VALIDATE_IP, FILTER_FLAG_IPV4) ? $resolved : '';
        }
        $ips = filter_var($host, FILTER_VALIDATE_IP) ? [$host] : gethostbynamel($host);
        if (!is_array($ips) || $ips === []) {
            return '';
        }
        foreach ($ips as $ip) {
            if (!self::isPublic($ip)) {
                return '';
            }
        }
        return $ips[0];
    }

    private static function isPublic(string $ip): bool
    {
        if (!filter_var($ip, FILTER_VALIDATE_IP, FILTER_FLAG_IPV4 | FILTER_FLAG_NO_PRIV_RANGE | FILTER_FLAG_NO_RES_RANGE)) {
            return false;
        }
        $parts = array_map('intval', explode('.', $ip));
        // Shared address space (carrier-grade NAT), which PHP's flags let through.
        return !($parts[0] === 100 && $parts[1] >= 64 && $parts[1] <= 127);
    }

    /**
     * Runs $request with cURL pinned to $ip for the URL's host and to IPv4, so that the request
     * reaches the address that was checked.
     *
     * @template T
     * @param callable(): T $request
     * @return T
     */
    public static function pinned(string $url, string $ip, callable $request): mixed
    {
        $host = (string) wp_parse_url($url, PHP_URL_HOST);
        $port = (int) (wp_parse_url($url, PHP_URL_PORT) ?: (wp_parse_url($url, PHP_URL_SCHEME) === 'https' ? 443 : 80));
        $pin = static function ($handle) use ($host, $port, $ip): void {
            curl_setopt($handle, CURLOPT_RESOLVE, [$host . ':' . $port . ':' . $ip]);
            curl_setopt($handle, CURLOPT_IPRESOLVE, CURL_IPRESOLVE_V4);
        };
        add_action('http_api_curl', $pin);
        try {
            return $request();
        } finally {
            remove_action('http_api_curl', $pin);
        }
    }

    public static function refusal(): ClientError
    {
        return new ClientError(
            __('The Crumbs server URL names a private or local address (or does not resolve). Only a network administrator may point Crumbs there.', 'crumbs'),
            'UNSAFE_URL'
        );
    }
}
