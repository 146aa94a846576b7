<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Starts a new browser device when the browser changes hands, so that whoever uses it next (a
 * shared computer, a kiosk, a family laptop) is not recorded on the lead of the user before: after
 * a logout; on a page that identifies nobody, when the plugin last identified the browser's device
 * as a user (their session ended without a logout: the login cookie expired, the browser was
 * closed without "remember me", the user's sessions were ended elsewhere), so that anonymous pages
 * read meanwhile are not put on that user's lead; and when a user is identified on a browser whose
 * device the plugin last identified as another user. Without that, pages read by whoever comes next
 * would land on the first user's timeline, and a second user's identify would move the device,
 * with the first user's history, to their lead. Whoever logs in next takes the new device with its
 * anonymous pages, as any anonymous visitor who logs in does.
 *
 * The browser's device id lives where PHP cannot reach it: in the library's localStorage
 * (`crumbs_<appId>_id`, and with data-cookie-domain also a cookie of that name, see
 * jsclient/README.md, "What is stored"), and a logout is a request that only redirects, often to
 * wp-login.php, where the library does not load. So wp_logout leaves a flag cookie, and an inline
 * script that runs before the library starts does the rest on every tracked page: it replaces the
 * stored id with a new one once per flag, and it compares the user the page identifies (nobody on
 * an anonymous page) with the one the stored device was last identified as
 * (`crumbs_<appId>_wp_user`: a keyed hash of the user id and the device id it was seen with) and
 * replaces the id when they differ.
 * A device never identified by the plugin is kept, so an anonymous visitor who logs in keeps their
 * history. It writes the id itself, before the library starts (the user check reads the stored id
 * anyway), so the library's page view and the page's view triggers go to the new device. It writes
 * a new id rather than deleting the old one, because
 * another open tab of the site would store its old id again, in the time it takes this page's
 * library to load.
 *
 * Events the library had queued keep the device id they were queued with; so do the plugin's
 * server-side events, which belong to the user's own `wp-user-…` device, never to a browser's.
 */
final class NewDevice
{
    /** The flag: a random token, readable by the page's script, which removes it. */
    public const COOKIE = 'crumbs_new_device';

    /** The flag's token once the browser has acted on it (localStorage), should the cookie stay. */
    public const DONE_KEY = 'crumbs_wp_new_device';

    /**
     * The browser side, called with script()'s values. c reads a cookie; get and set localStorage,
     * quietly where it is unavailable; id is the stored device id as the library reads it (its
     * cookie first with data-cookie-domain); renew replaces it, where it is stored, with a new id in
     * the library's format (128 random bits as digits), in the library's cookie written as the
     * library writes it (path=/ on the data-cookie-domain, about 15 months); mark records which
     * user (v.user) the stored device is identified as, unless another page has since recorded
     * another user for that same id.
     *
     * When the flag is there it is removed and, unless this browser acted on the same token
     * already, the id is renewed. Without a user to identify, the id is renewed when the stored
     * device was marked with a user. With one, it is renewed when the stored device was marked with
     * another user, then marked with this one: now, and once a script has loaded (the library is
     * async: this is when it has run, before or after DOMContentLoaded), for a device id it stored
     * only then.
     */
    private const SCRIPT = <<<'JS'
(function(v){
var s,m,p,d,
c=function(n){var x=document.cookie.match(new RegExp('(?:^|; )'+n+'=(\\w+)'));return x&&x[1]},
get=function(k){try{return s[k]}catch(e){}},
set=function(k,x){try{s[k]=x}catch(e){}},
id=function(){return v.domain&&c(v.key)||get(v.key)},
renew=function(){var n=crypto.getRandomValues(new Uint32Array(4)).join(''),r;
if(get(v.key))set(v.key,n),r=1;
if(v.domain&&c(v.key))document.cookie=v.key+'='+n+';path=/;domain='+v.domain+';max-age=40000000;samesite=lax'+(isSecureContext?';secure':''),r=1;
return r},
mark=function(){var i=id(),q=(get(v.mark)||'').split(' ');if(i&&(q[1]!=i||q[0]==v.user))set(v.mark,v.user+' '+i)};
try{s=localStorage}catch(e){}
m=c(v.flag);
if(m){document.cookie=v.remove;if(get(v.done)!=m&&renew())set(v.done,m)}
p=(get(v.mark)||'').split(' ');d=id();
if(!v.user){if(d&&p[1]==d)renew();return}
if(d&&p[1]==d&&p[0]!=v.user)renew();
mark();addEventListener('load',function(e){e.target.tagName=='SCRIPT'&&mark()},true);
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
     * The localStorage key that says which user the browser's device was last identified as:
     * "<userHash> <device id>". It is in the library's namespace of the app, so that the library
     * removes it with everything else of the app's when consent is withdrawn.
     */
    public static function markKey(string $appId): string
    {
        return 'crumbs_' . $appId . '_wp_user';
    }

    /**
     * What the browser keeps of a WordPress user: a keyed hash (HMAC-SHA-256 with the site's
     * auth salt, 128 bits) of the user id. It tells two users of the site apart, and without the
     * site's secret it cannot be turned back into the id, nor matched with the user's email.
     */
    public static function userHash(int $userId): string
    {
        return substr(hash_hmac('sha256', 'crumbs-browser-user|' . $userId, wp_salt('auth')), 0, 32);
    }

    /**
     * The inline script printed before the library on every tracked page. When the flag is
     * there, it removes it and replaces the device id the library keeps for this app, where one is
     * stored, with a new random one in the library's format; nothing is stored where nothing was
     * (cookieless, or no consent yet). The token it keeps makes it act once per logout, even if the
     * cookie could not be removed. It also replaces the id when the plugin last identified the
     * stored device as another user than the one this page identifies ($userId, 0 for none: then
     * any user), and with a user it marks the device with userHash(). Without one the script is the
     * same on every page, so full-page caches may keep anonymous pages; a page that identifies a
     * user names them anyway.
     *
     * @param array<string, string|bool> $attrs The library's script tag attributes.
     */
    public static function script(array $attrs, int $userId = 0): string
    {
        $flags = JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_UNESCAPED_SLASHES;
        $flag = self::flagCookie('');
        $remove = self::COOKIE . '=;path=' . $flag['options']['path']
            . ($flag['options']['domain'] !== '' ? ';domain=' . $flag['options']['domain'] : '') . ';max-age=0';
        $cookieDomain = $attrs['data-cookie-domain'] ?? '';
        $appId = (string) ($attrs['data-app-id'] ?? '');
        $vars = [
            'flag' => self::COOKIE,
            'remove' => $remove,
            'done' => self::DONE_KEY,
            'key' => 'crumbs_' . $appId . '_id',
            'domain' => is_string($cookieDomain) ? $cookieDomain : '',
            'mark' => self::markKey($appId),
            'user' => $userId > 0 ? self::userHash($userId) : '',
        ];
        return self::SCRIPT . '(' . wp_json_encode($vars, $flags) . ');';
    }
}
