<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * [crumbs_event code="pdf_download"] fires on page view;
 * [crumbs_event code="trial_click" on="click"]...[/crumbs_event] fires when its content is clicked.
 * Attributes other than code, on and tag (span or div wrapper) become event properties.
 */
final class Shortcode
{
    public const TAG = 'crumbs_event';
    private const RESERVED = ['code', 'on', 'tag'];

    public function hook(): void
    {
        add_shortcode(self::TAG, [$this, 'render']);
    }

    /**
     * @param array<string|int, string>|string $atts
     */
    public function render($atts, ?string $content = null, string $tag = ''): string
    {
        $atts = is_array($atts) ? $atts : [];
        $content = (string) $content;
        $code = (string) ($atts['code'] ?? '');
        $on = (string) ($atts['on'] ?? ($content === '' ? 'view' : 'click'));
        $properties = [];
        foreach ($atts as $name => $value) {
            if (is_string($name) && !in_array($name, self::RESERVED, true)) {
                $properties[$name] = $value;
            }
        }
        $inner = $content === '' ? '' : do_shortcode($content);
        // A span survives being placed inside a paragraph; tag="div" is there for block content.
        $wrapper = ($atts['tag'] ?? '') === 'div' ? 'div' : 'span';
        return Renderer::render($code, $on, $properties, $inner, 'shortcode', $wrapper);
    }
}
