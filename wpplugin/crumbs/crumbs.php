<?php

/**
 * Plugin Name:       Crumbs
 * Plugin URI:        https://github.com/crumbs-dev/crumbs
 * Description:       Track visitor events with your self-hosted Crumbs server: shortcodes, an event trigger block, a "Crumbs event" panel on core blocks, and server-side events from WordPress hooks.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      8.1
 * Author:            Crumbs
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       crumbs
 * Domain Path:       /languages
 *
 * @package Crumbs
 */

declare(strict_types=1);

namespace Crumbs\WordPress;

if (!defined('ABSPATH')) {
    exit;
}

const VERSION = '0.1.0';
const PLUGIN_FILE = __FILE__;
const PLUGIN_DIR = __DIR__;

spl_autoload_register(static function (string $class): void {
    $prefix = __NAMESPACE__ . '\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = PLUGIN_DIR . '/includes/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_readable($file)) {
        require $file;
    }
});

register_activation_hook(__FILE__, [Plugin::class, 'activate']);
register_deactivation_hook(__FILE__, [Plugin::class, 'deactivate']);

(new Plugin())->hook();
