<?php

/**
 * Must-use plugin for the end-to-end site only: Playwright sets navigator.webdriver, and the
 * library sends nothing from automated browsers unless data-allow-automation is set.
 */

add_filter('crumbs_script_attributes', static function (array $attrs): array {
    $attrs['data-allow-automation'] = 'true';
    return $attrs;
});
