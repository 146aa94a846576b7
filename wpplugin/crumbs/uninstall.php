<?php

/**
 * Removes everything the plugin stored: its options and transients, the delivery queue table and
 * its cron event.
 * Events already in Crumbs stay there; erase them from Crumbs if needed.
 *
 * @package Crumbs
 */

if (!defined('WP_UNINSTALL_PLUGIN')) {
    exit;
}

/**
 * Cleans one site.
 */
function crumbs_uninstall_site(): void
{
    global $wpdb;
    foreach (['crumbs_settings', 'crumbs_secret_key', 'crumbs_site_id', 'crumbs_db_version', 'crumbs_library', 'crumbs_delivery', 'crumbs_home_urls', 'crumbs_device_home'] as $option) {
        delete_option($option);
    }
    // The privacy tools' state between pages (export cursors, erasure ids): expired within the hour,
    // but kept as options until WordPress purges expired transients, unless an object cache holds them.
    $wpdb->query(
        "DELETE FROM {$wpdb->options} WHERE option_name LIKE '\\_transient\\_crumbs\\_%'"
        . " OR option_name LIKE '\\_transient\\_timeout\\_crumbs\\_%'"
        // Deleted users' ids, kept for the privacy tools.
        . " OR option_name LIKE 'crumbs\\_deleted\\_user\\_%'"
        // An erasure request's state between its pages.
        . " OR option_name LIKE 'crumbs\\_erase\\_%'"
    );
    wp_clear_scheduled_hook('crumbs_flush_queue');
    $wpdb->query('DROP TABLE IF EXISTS `' . esc_sql($wpdb->prefix . 'crumbs_queue') . '`');
}

if (is_multisite()) {
    foreach (get_sites(['fields' => 'ids', 'number' => 0]) as $crumbs_site_id) {
        switch_to_blog((int) $crumbs_site_id);
        crumbs_uninstall_site();
        restore_current_blog();
    }
} else {
    crumbs_uninstall_site();
}
