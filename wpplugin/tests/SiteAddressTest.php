<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Options;
use Crumbs\WordPress\Privacy;
use Crumbs\WordPress\Queue;
use Crumbs\WordPress\ServerEvents;
use Crumbs\WordPress\SiteAddress;

/**
 * Server-side device ids were made with home_url('/') as it was on each request: a site that
 * moved (http to https, www, a new domain) started new devices for every user, commenter and
 * customer. They are now made with the address kept from the first one, for as long as the site
 * is the same site, and a new host asks the administrators whether the site moved or is a copy.
 */
final class SiteAddressTest extends TestCase
{
    private mixed $savedAddress;
    private mixed $savedHomes;
    private ?\Closure $home = null;

    protected function setUp(): void
    {
        parent::setUp();
        $this->savedAddress = get_option(SiteAddress::OPTION);
        $this->savedHomes = get_option(Options::HOME_URLS);
        delete_option(SiteAddress::OPTION);
        delete_option(Options::HOME_URLS);
        $this->requireCrumbs();
        $this->setSettings(['server_url' => CrumbsServer::url(), 'app_id' => CrumbsServer::appId(), 'identify_users' => false, 'exclude_roles' => []]);
        update_option(Options::SECRET, CrumbsServer::secret());
        global $wpdb;
        $wpdb->query('DELETE FROM ' . Queue::table());
    }

    protected function tearDown(): void
    {
        $this->moveTo(null);
        foreach ([SiteAddress::OPTION => $this->savedAddress, Options::HOME_URLS => $this->savedHomes] as $option => $value) {
            $value === false ? delete_option($option) : update_option($option, $value);
        }
        unset($GLOBALS['current_screen'], $_POST['choice'], $_POST['_wpnonce'], $_REQUEST['_wpnonce'], $_REQUEST['_wp_http_referer']);
        parent::tearDown();
    }

    /** Puts the site at $address (null: where the test site is). */
    private function moveTo(?string $address): void
    {
        if ($this->home !== null) {
            remove_filter('home_url', $this->home, 10);
            $this->home = null;
        }
        if ($address !== null) {
            $this->home = static fn (string $url, string $path): string => $address . ltrim($path, '/');
            add_filter('home_url', $this->home, 10, 2);
        }
    }

    /** @return list<string> */
    private static function codes(string $deviceId): array
    {
        return array_column(CrumbsServer::deviceEvents($deviceId), 'code');
    }

    public function testTheSameSiteOverHttpsOrWithWwwKeepsItsDevices(): void
    {
        $this->moveTo('http://shop.example.org/');
        $user = $this->makeUser('subscriber', 'https');
        Queue::flush();
        $before = ServerEvents::userDeviceId((int) $user->ID);
        $this->assertSame(
            'wp-user-' . substr(hash('sha256', 'http://shop.example.org/|' . Options::siteId() . '|user|' . $user->ID), 0, 32),
            $before,
            'a site that does not move keeps the ids it made before'
        );

        foreach (['https://shop.example.org/', 'https://www.shop.example.org/', 'http://WWW.Shop.Example.org/'] as $address) {
            $this->moveTo($address);
            $this->assertSame($before, ServerEvents::userDeviceId((int) $user->ID), $address);
            $this->assertSame(ServerEvents::emailDeviceId('commenter', $user->user_email, 'http://shop.example.org/'), ServerEvents::emailDeviceId('commenter', $user->user_email), $address);
            $this->assertFalse(SiteAddress::undecided(), $address);
        }
        do_action('wp_login', $user->user_login, $user);
        Queue::flush();
        $this->assertEqualsCanonicalizing(['user_registered', 'user_logged_in'], self::codes($before), 'the login after the move is on the same device');
        $this->assertSame('', $this->notices());
    }

    public function testANewHostAsksAndTheSiteThatMovedKeepsItsDevices(): void
    {
        $this->moveTo('https://shop.example.org/');
        $user = $this->makeUser('subscriber', 'moved');
        Queue::flush();
        $before = ServerEvents::userDeviceId((int) $user->ID);

        // Another host: a copy or a move, it cannot tell; new devices until an administrator says.
        $this->moveTo('https://shop.example.net/');
        $copy = ServerEvents::userDeviceId((int) $user->ID);
        $this->assertNotSame($before, $copy);
        $this->assertTrue(SiteAddress::undecided());
        $notice = $this->notices();
        $this->assertStringContainsString('id="crumbs-site-address"', $notice);
        $this->assertStringContainsString('made at https://shop.example.org/', $notice);
        $this->assertStringContainsString('At https://shop.example.net/ they go to new devices', $notice);
        $this->assertStringContainsString('name="choice" value="moved"', $notice);
        $this->assertStringContainsString('name="choice" value="copy"', $notice);
        $this->assertMatchesRegularExpression('/name="_wpnonce" value="[0-9a-f]{10}"/', $notice);
        $this->assertSame('', $this->notices('editor'), 'only for those who may change the settings');

        $this->assertSame('https://shop.example.org/', $this->answer('moved'));
        $this->assertFalse(SiteAddress::undecided());
        $this->assertSame($before, ServerEvents::userDeviceId((int) $user->ID), 'the site moved: its devices are kept');
        $this->assertSame('', $this->notices());
        do_action('wp_login', $user->user_login, $user);
        Queue::flush();
        $this->assertEqualsCanonicalizing(['user_registered', 'user_logged_in'], self::codes($before));

        // The privacy tools still find the device made meanwhile.
        $this->assertContains('https://shop.example.net/', Options::homeUrls());
        $this->assertContains('https://shop.example.org/', Options::homeUrls());
    }

    public function testACopyKeepsDevicesOfItsOwn(): void
    {
        $this->moveTo('https://shop.example.org/');
        $user = $this->makeUser('subscriber', 'copy');
        $live = ServerEvents::userDeviceId((int) $user->ID);

        $this->moveTo('https://staging.shop.example.org/');
        $this->answer('copy');
        $this->assertFalse(SiteAddress::undecided());
        $staging = ServerEvents::userDeviceId((int) $user->ID);
        $this->assertNotSame($live, $staging);
        $this->moveTo('http://www.staging.shop.example.org/');
        $this->assertSame($staging, ServerEvents::userDeviceId((int) $user->ID), 'the copy\'s own address from now on');
    }

    /**
     * A copy (a staging clone) has the live site's options, its list of addresses included, and
     * the same site id and Crumbs app. Once its administrators say it is a copy, its privacy tools
     * must not take the devices of user ids made at the live site's address for its users': the
     * copy's users created after the clone get the user ids the live site gives its own new users,
     * so the copy's user 58 asking for an export (or an erasure) would get (or erase) the live
     * user 58's events. Devices made from an email are the same person's wherever they were made.
     */
    public function testACopysPrivacyToolsDoNotTakeTheLiveSitesUsersForItsOwn(): void
    {
        $this->moveTo('https://shop.example.org/');
        $user = $this->makeUser('subscriber', 'clone');
        $live = ServerEvents::userDeviceId((int) $user->ID);
        $liveCommenter = ServerEvents::emailDeviceId('commenter', $user->user_email);
        $personDevices = new \ReflectionMethod(Privacy::class, 'personDevices');
        $this->assertContains($live, $personDevices->invoke(null, $user->user_email));

        $this->moveTo('https://staging.shop.example.org/');
        $this->assertContains($live, $personDevices->invoke(null, $user->user_email), 'undecided: a move or a copy');
        $this->answer('copy');
        $devices = $personDevices->invoke(null, $user->user_email);
        $this->assertNotContains($live, $devices, 'the live site\'s user with this id may be someone else');
        $this->assertContains(ServerEvents::userDeviceId((int) $user->ID), $devices, 'the copy\'s own device');
        $this->assertContains($liveCommenter, $devices, 'the same email is the same person');
        $this->assertSame(['https://shop.example.org/'], SiteAddress::copiedHomes());

        // Moving on from there (the copy served over http with www.) keeps that.
        $this->moveTo('http://www.staging.shop.example.org/');
        $this->assertNotContains($live, $personDevices->invoke(null, $user->user_email));
    }

    public function testOnlyAnAdministratorWithTheNonceMayAnswer(): void
    {
        $this->moveTo('https://shop.example.org/');
        $user = $this->makeUser('subscriber', 'nonce');
        $before = ServerEvents::userDeviceId((int) $user->ID);
        $this->moveTo('https://shop.example.net/');

        foreach (['editor' => true, 'administrator' => false] as $role => $validNonce) {
            wp_set_current_user($this->makeUser($role, 'answer')->ID);
            $_POST['choice'] = 'moved';
            $_POST['_wpnonce'] = $_REQUEST['_wpnonce'] = $validNonce ? wp_create_nonce(SiteAddress::ACTION) : 'forged';
            add_filter('wp_die_handler', [SettingsTest::class, 'dieHandler']);
            try {
                SiteAddress::answer();
                $this->fail('answered for ' . $role);
            } catch (WpDieException $e) {
                $this->assertTrue(SiteAddress::undecided(), $role);
            } finally {
                remove_filter('wp_die_handler', [SettingsTest::class, 'dieHandler']);
            }
        }
        $this->assertNotSame($before, ServerEvents::userDeviceId((int) $user->ID));
    }

    /**
     * Posts the notice's button as an administrator; returns the address ids are made with then.
     */
    private function answer(string $choice): string
    {
        wp_set_current_user($this->makeUser('administrator', 'answer')->ID);
        $_POST['choice'] = $choice;
        $_POST['_wpnonce'] = $_REQUEST['_wpnonce'] = wp_create_nonce(SiteAddress::ACTION);
        $redirect = static function (string $location): string {
            throw new \RuntimeException('redirect: ' . $location);
        };
        add_filter('wp_redirect', $redirect);
        try {
            SiteAddress::answer();
            $this->fail('no redirect');
        } catch (\RuntimeException $e) {
            $this->assertStringStartsWith('redirect: ', $e->getMessage());
        } finally {
            remove_filter('wp_redirect', $redirect);
            wp_set_current_user(0);
        }
        return Options::homeUrl();
    }

    /** The admin notices of the dashboard as a user of $role sees them. */
    private function notices(string $role = 'administrator'): string
    {
        require_once ABSPATH . 'wp-admin/includes/class-wp-screen.php';
        require_once ABSPATH . 'wp-admin/includes/screen.php';
        wp_set_current_user($this->makeUser($role, 'notice')->ID);
        set_current_screen('dashboard');
        ob_start();
        SiteAddress::notice();
        $html = (string) ob_get_clean();
        unset($GLOBALS['current_screen']);
        wp_set_current_user(0);
        return $html;
    }
}
