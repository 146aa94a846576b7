<?php

/**
 * Server-side render of the Crumbs event trigger block; shares its renderer with the shortcode.
 *
 * @package Crumbs
 * @var array<string, mixed> $attributes
 * @var string $content
 */

if (!defined('ABSPATH')) {
    exit;
}

// Renderer escapes every attribute; $content is the already rendered inner blocks.
echo \Crumbs\WordPress\Blocks::renderTrigger((array) $attributes, (string) $content);
