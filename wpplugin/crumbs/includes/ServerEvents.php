<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Turns WordPress hooks into Crumbs events (source: wordpress), queued in the outbox and sent
 * with the app secret key. Event codes come from the settings; an empty code turns one off.
 */
final class ServerEvents
{
    public function hook(): void
    {
        add_action('user_register', [$this, 'userRegistered'], 20, 1);
        add_action('wp_login', [$this, 'userLoggedIn'], 20, 2);
        add_action('comment_post', [$this, 'commentPosted'], 20, 3);
        add_action('woocommerce_order_status_completed', [$this, 'orderCompleted'], 20, 1);
    }

    /**
     * A stable, non-reversible device id for a WordPress user of this site, made with the site's
     * address ($home, by default the one device ids are made with now: see SiteAddress).
     */
    public static function userDeviceId(int $userId, ?string $home = null): string
    {
        return 'wp-user-' . substr(hash('sha256', ($home ?? Options::homeUrl()) . '|' . Options::siteId() . '|user|' . $userId), 0, 32);
    }

    public static function emailDeviceId(string $kind, string $email, ?string $home = null): string
    {
        return 'wp-' . $kind . '-' . substr(hash('sha256', ($home ?? Options::homeUrl()) . '|' . Options::siteId() . '|' . $kind . '|' . strtolower($email)), 0, 32);
    }

    private static function site(): string
    {
        return substr(hash('sha256', Options::homeUrl() . '|' . Options::siteId()), 0, 16);
    }

    public function userRegistered(int $userId): void
    {
        $user = get_userdata($userId);
        if ($user instanceof \WP_User) {
            $this->forUser($user, 'event_user_registered', 'user_registered:' . $userId, []);
        }
    }

    /**
     * @param mixed $user
     */
    public function userLoggedIn(string $login, $user = null): void
    {
        $user = $user instanceof \WP_User ? $user : get_user_by('login', $login);
        if ($user instanceof \WP_User) {
            $this->forUser($user, 'event_user_logged_in', 'login:' . $user->ID . ':' . wp_generate_uuid4(), []);
        }
    }

    /**
     * @param int|string $approved
     * @param array<string, mixed> $data
     */
    public function commentPosted(int $commentId, $approved = 0, array $data = []): void
    {
        $comment = get_comment($commentId);
        if (!$comment instanceof \WP_Comment || $approved === 'spam' || $comment->comment_type !== 'comment') {
            return;
        }
        $properties = [
            'comment_id' => (int) $comment->comment_ID,
            'post_id' => (int) $comment->comment_post_ID,
            // Crumbs refuses the whole event for a property string over 2048 bytes.
            'post_title' => mb_strcut(get_the_title((int) $comment->comment_post_ID), 0, 2048, 'UTF-8'),
            'approved' => $approved === 1 || $approved === '1',
        ];
        $url = (string) get_permalink((int) $comment->comment_post_ID);
        $user = (int) $comment->user_id > 0 ? get_userdata((int) $comment->user_id) : false;
        if ($user instanceof \WP_User) {
            $this->forUser($user, 'event_comment_posted', 'comment:' . $commentId, $properties, $url);
            return;
        }
        if (!$this->allowed(null) || (string) $comment->comment_author_email === '') {
            return;
        }
        $this->queueTrigger(
            self::emailDeviceId('commenter', (string) $comment->comment_author_email),
            'event_comment_posted',
            'comment:' . $commentId,
            $properties,
            $url
        );
    }

    /**
     * WooCommerce: an order reached "completed".
     *
     * @param int|string $orderId
     */
    public function orderCompleted($orderId): void
    {
        if (!function_exists('wc_get_order')) {
            return;
        }
        $order = wc_get_order($orderId);
        if (!is_object($order) || !method_exists($order, 'get_total')) {
            return;
        }
        $properties = [
            'order_id' => (int) $order->get_id(),
            'amount' => (float) $order->get_total(),
            'currency' => (string) $order->get_currency(),
            'items' => (int) $order->get_item_count(),
        ];
        $userId = (int) $order->get_customer_id();
        $user = $userId > 0 ? get_userdata($userId) : false;
        if ($user instanceof \WP_User) {
            // Orders complete in the admin or in a payment callback, so the consent check is the
            // customer's role only: consent belongs to the visitor's browser, not to this request.
            $this->forUser($user, 'event_order_completed', 'order_completed:' . $orderId, $properties, '', false);
            return;
        }
        $email = (string) $order->get_billing_email();
        if ($email === '') {
            return;
        }
        $deviceId = self::emailDeviceId('customer', $email);
        if (Options::get('identify_users')) {
            $name = trim($order->get_billing_first_name() . ' ' . $order->get_billing_last_name());
            $this->queueIdentify($deviceId, $email, $name, ['source' => 'woocommerce']);
        }
        $this->queueTrigger($deviceId, 'event_order_completed', 'order_completed:' . $orderId, $properties, '');
    }

    /**
     * @param array<string, mixed> $properties
     */
    private function forUser(
        \WP_User $user,
        string $setting,
        string $key,
        array $properties,
        string $url = '',
        bool $checkConsent = true
    ): void {
        if (!$this->allowed($user, $checkConsent) || (string) Options::get($setting) === '') {
            return;
        }
        $deviceId = self::userDeviceId((int) $user->ID);
        if (Options::get('identify_users') && $user->user_email !== '') {
            $this->queueIdentify($deviceId, $user->user_email, $user->display_name, ['wordpress_user_id' => (int) $user->ID]);
        }
        $this->queueTrigger($deviceId, $setting, $key, $properties, $url);
    }

    /**
     * @param array<string, mixed> $properties
     */
    private function queueTrigger(string $deviceId, string $setting, string $key, array $properties, string $url): void
    {
        $code = (string) Options::get($setting);
        if ($code === '') {
            return;
        }
        $input = [
            'deviceId' => $deviceId,
            'code' => $code,
            'properties' => (object) $properties,
            'messageId' => 'wp:' . self::site() . ':' . $key,
            'source' => 'wordpress',
            'occurredAt' => gmdate('Y-m-d\TH:i:s\Z'),
        ];
        if ($url !== '') {
            $input['url'] = $url;
        }
        Queue::push('trigger', $input, (string) $input['messageId']);
    }

    /**
     * @param array<string, mixed> $fields
     */
    private function queueIdentify(string $deviceId, string $email, string $name, array $fields): void
    {
        $input = ['deviceId' => $deviceId, 'email' => $email, 'fields' => (object) $fields];
        $name = self::leadName($name);
        if ($name !== '') {
            $input['name'] = $name;
        }
        Queue::push('identify', $input, 'wp:' . self::site() . ':identify:' . md5($deviceId . '|' . strtolower($email)));
    }

    /**
     * A name as Crumbs takes it: at most 200 characters, without control characters. WordPress
     * keeps display names of up to 250, and Crumbs refuses the whole identify for a longer name,
     * so that user was never put on a lead.
     */
    public static function leadName(string $name): string
    {
        $name = trim((string) preg_replace('/\p{Cc}+/u', ' ', $name));
        return trim(mb_substr($name, 0, 200));
    }

    private function allowed(?\WP_User $user, bool $checkConsent = true): bool
    {
        if (!Options::isConfigured() || Options::secret() === '') {
            return false;
        }
        if ($user !== null && array_intersect((array) Options::get('exclude_roles'), (array) $user->roles) !== []) {
            return false;
        }
        if ($checkConsent && Options::get('require_consent') && function_exists('wp_has_consent')) {
            return (bool) wp_has_consent('statistics');
        }
        return true;
    }
}
