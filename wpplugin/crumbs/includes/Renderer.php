<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * Builds the declarative trigger markup that the Crumbs browser library reads
 * (data-crumbs-event, data-crumbs-on, data-crumbs-prop-*, data-crumbs-source).
 * The shortcode, the event trigger block and the core-block panel all go through here.
 */
final class Renderer
{
    public const TRIGGERS = ['view', 'click', 'visible', 'submit'];
    public const SOURCES = ['shortcode', 'block'];
    private const TAGS = ['div', 'span'];

    /**
     * The data attributes for one trigger, unescaped (escape when printing).
     * Returns [] when there is no code.
     *
     * @param array<string, mixed> $properties
     * @return array<string, string>
     */
    public static function attributes(string $code, string $on, array $properties, string $source): array
    {
        $code = trim($code);
        if ($code === '') {
            return [];
        }
        $attrs = [
            'data-crumbs-event' => $code,
            'data-crumbs-on' => self::trigger($on),
            'data-crumbs-source' => in_array($source, self::SOURCES, true) ? $source : 'shortcode',
        ];
        foreach ($properties as $name => $value) {
            $name = self::propertyName((string) $name);
            if ($name === '' || is_array($value) || is_object($value)) {
                continue;
            }
            $attrs['data-crumbs-prop-' . $name] = is_bool($value) ? ($value ? 'true' : 'false') : (string) $value;
        }
        return $attrs;
    }

    /**
     * Wraps content in an element carrying the trigger attributes. A view trigger without content
     * is an empty hidden marker; anything else without a code returns the content unchanged.
     *
     * @param array<string, mixed> $properties
     */
    public static function render(
        string $code,
        string $on,
        array $properties,
        string $content,
        string $source,
        string $tag = 'div'
    ): string {
        $attrs = self::attributes($code, $on, $properties, $source);
        if ($attrs === []) {
            return $content;
        }
        $tag = in_array($tag, self::TAGS, true) ? $tag : 'div';
        if (trim($content) === '') {
            $tag = 'span';
            if ($attrs['data-crumbs-on'] === 'view') {
                $attrs['hidden'] = 'hidden';
            }
        }
        return '<' . $tag . ' class="crumbs-event" ' . self::html($attrs) . '>' . $content . '</' . $tag . '>';
    }

    /**
     * Escaped ` name="value"` pairs.
     *
     * @param array<string, string> $attrs
     */
    public static function html(array $attrs): string
    {
        $parts = [];
        foreach ($attrs as $name => $value) {
            $parts[] = $name . '="' . esc_attr($value) . '"';
        }
        return implode(' ', $parts);
    }

    public static function trigger(string $on): string
    {
        $on = strtolower(trim($on));
        return in_array($on, self::TRIGGERS, true) ? $on : 'click';
    }

    /**
     * Property names become attribute-name suffixes: lowercase letters, digits and `_`. A `-`
     * becomes `_`, because the library would read data-crumbs-prop-a-b back as "aB".
     */
    public static function propertyName(string $name): string
    {
        $name = str_replace('-', '_', strtolower($name));
        return substr((string) preg_replace('/[^a-z0-9_]/', '', $name), 0, 64);
    }

    /**
     * Parses "name=value" lines (the block sidebar's properties box) into a map.
     *
     * @return array<string, string>
     */
    public static function parseProperties(string $lines): array
    {
        $out = [];
        foreach (preg_split('/\r\n|\r|\n/', $lines) ?: [] as $line) {
            if (!str_contains($line, '=')) {
                continue;
            }
            [$name, $value] = explode('=', $line, 2);
            $name = self::propertyName(trim($name));
            if ($name !== '') {
                $out[$name] = trim($value);
            }
        }
        return $out;
    }
}
