<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Starts a new browser device after a logout, so that whoever uses the browser next (a shared
 * computer, a kiosk, a family laptop) is not recorded on the lead of the user who left.
 *
 * The browser's device id lives where PHP cannot reach it: in the library's localStorage
 * (`crumbs_<appId>_id`, and with data-cookie-domain also a cookie of that name, see
 * jsclient/README.md, "What is stored"), and a logout is a request that only redirects, often to
 * wp-login.php, where the library does not load. So wp_logout leaves a flag cookie, and the next
 * page that loads the library replaces the stored id with a new one in an inline script that runs
 * before the library starts, and removes the flag. The library's own crumbs('reset') would come
 * too late: calls made through the stub are replayed after the library has queued its page view
 * and the page's view triggers, which would then still go to the old device. It writes a new id
 * rather than deleting the old one, because another open tab of the site would store its old id
 * again, in the time it takes this page's library to load.
 *
 * Events the library had queued keep the device id they were queued with; so do the plugin's
 * server-side events, which belong to the user's own `wp-user-…` device, never to a browser's.
 */
final class Logout
{
    /** The flag: a random token, readable by the page's script, which removes it. */
    public const COOKIE = 'crumbs_new_device';

    /** The flag's token once the browser has acted on it (localStorage), should the cookie stay. */
    public const DONE_KEY = 'crumbs_wp_new_device';

    /**
     * The browser side, called with script()'s values. When the flag is there it is removed and,
     * unless this browser acted on the same token already, a new id in the library's format (128
     * random bits as digits) replaces the stored one: in localStorage, and in the library's cookie
     * written as the library writes it (path=/ on the data-cookie-domain, about 15 months).
     */
    private const SCRIPT = <<<'JS'
(function(v){
var m=document.cookie.match(new RegExp('(?:^|; )'+v.flag+'=(\\w+)')),s,done,id;
if(!m)return;
document.cookie=v.remove;
id=crypto.getRandomValues(new Uint32Array(4)).join('');
try{s=localStorage;if(s[v.done]==m[1])return;if(s[v.key])s[v.key]=id,done=1}catch(e){}
if(v.domain&&document.cookie.indexOf(v.key+'=')>-1)document.cookie=v.key+'='+id+';path=/;domain='+v.domain+';max-age=40000000;samesite=lax'+(isSecureContext?';secure':''),done=1;
try{if(done)s[v.done]=m[1]}catch(e){}
})
JS;

    public function hook(): void
    {
        add_action('wp_logout', [$this, 'loggedOut']);
    }

    /**
     * Runs in the logout request, which redirects: leaves the flag for the next page view.
     */
    public function loggedOut(): void
    {
        if (!Options::isConfigured() || headers_sent()) {
            return;
        }
        $cookie = self::flagCookie(str_replace('-', '', wp_generate_uuid4()));
        setcookie($cookie['name'], $cookie['value'], $cookie['options']);
    }

    /**
     * The flag cookie. It lives until a page with the library reads it (the next person may come
     * days later), on the front end's path and WordPress's cookie domain, so that every tracked
     * page sees it and the page's script can remove it; Secure when the front end is https.
     *
     * @return array{name: string, value: string, options: array{expires: int, path: string, domain: string, secure: bool, httponly: bool, samesite: string}}
     */
    public static function flagCookie(string $token): array
    {
        return [
            'name' => self::COOKIE,
            'value' => $token,
            'options' => [
                'expires' => time() + YEAR_IN_SECONDS,
                'path' => COOKIEPATH,
                'domain' => (string) COOKIE_DOMAIN,
                'secure' => wp_parse_url(home_url('/'), PHP_URL_SCHEME) === 'https',
                'httponly' => false,
                'samesite' => 'Lax',
            ],
        ];
    }

    /**
     * The inline script printed before the library on every tracked page. When the flag is
     * there, it removes it and replaces the device id the library keeps for this app, where one is
     * stored, with a new random one in the library's format; nothing is stored where nothing was
     * (cookieless, or no consent yet). The token it keeps makes it act once per logout, even if the
     * cookie could not be removed. The same script on every page, so full-page caches may keep it.
     *
     * @param array<string, string|bool> $attrs The library's script tag attributes.
     */
    public static function script(array $attrs): string
    {
        $flags = JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_UNESCAPED_SLASHES;
        $flag = self::flagCookie('');
        $remove = self::COOKIE . '=;path=' . $flag['options']['path']
            . ($flag['options']['domain'] !== '' ? ';domain=' . $flag['options']['domain'] : '') . ';max-age=0';
        $cookieDomain = $attrs['data-cookie-domain'] ?? '';
        $vars = [
            'flag' => self::COOKIE,
            'remove' => $remove,
            'done' => self::DONE_KEY,
            'key' => 'crumbs_' . (string) ($attrs['data-app-id'] ?? '') . '_id',
            'domain' => is_string($cookieDomain) ? $cookieDomain : '',
        ];
        return self::SCRIPT . '(' . wp_json_encode($vars, $flags) . ');';
    }
}
