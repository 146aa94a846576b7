<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * The "Crumbs event trigger" block, and the "Crumbs event" panel on core blocks such as
 * Button and Image. Both render through Renderer, like the shortcode.
 */
final class Blocks
{
    public const BLOCK = 'crumbs/event-trigger';
    public const EDITOR_HANDLE = 'crumbs-editor';

    /** Core blocks that get the "Crumbs event" panel; change with the `crumbs_trigger_blocks` filter. */
    public const CORE_BLOCKS = [
        'core/button', 'core/image', 'core/cover', 'core/group', 'core/columns', 'core/column',
        'core/heading', 'core/paragraph', 'core/media-text', 'core/gallery', 'core/video', 'core/list',
    ];

    public function hook(): void
    {
        add_action('init', [$this, 'register']);
        add_filter('register_block_type_args', [$this, 'addCoreAttributes'], 10, 2);
        add_filter('render_block', [$this, 'renderCoreBlock'], 10, 2);
    }

    public function register(): void
    {
        $asset = require PLUGIN_DIR . '/assets/editor.asset.php';
        wp_register_script(
            self::EDITOR_HANDLE,
            plugins_url('assets/editor.js', PLUGIN_FILE),
            $asset['dependencies'],
            $asset['version'],
            true
        );
        wp_add_inline_script(
            self::EDITOR_HANDLE,
            'window.crumbsEditorSettings = ' . wp_json_encode([
                'coreBlocks' => self::coreBlocks(),
                'triggers' => Renderer::TRIGGERS,
            ]) . ';',
            'before'
        );
        wp_set_script_translations(self::EDITOR_HANDLE, 'crumbs', PLUGIN_DIR . '/languages');
        register_block_type(PLUGIN_DIR . '/blocks/event-trigger');
    }

    /**
     * @return list<string>
     */
    public static function coreBlocks(): array
    {
        return array_values(array_filter(
            (array) apply_filters('crumbs_trigger_blocks', self::CORE_BLOCKS),
            'is_string'
        ));
    }

    /**
     * Declares the panel's attributes on the server too, so they survive REST validation.
     *
     * @param array<string, mixed> $args
     * @return array<string, mixed>
     */
    public function addCoreAttributes(array $args, string $name): array
    {
        if (!in_array($name, self::coreBlocks(), true)) {
            return $args;
        }
        $args['attributes'] = array_merge((array) ($args['attributes'] ?? []), [
            'crumbsEvent' => ['type' => 'string', 'default' => ''],
            'crumbsOn' => ['type' => 'string', 'default' => 'click'],
            'crumbsProperties' => ['type' => 'string', 'default' => ''],
        ]);
        return $args;
    }

    /**
     * The event trigger block's render.php calls this.
     *
     * @param array<string, mixed> $attributes
     */
    public static function renderTrigger(array $attributes, string $content): string
    {
        $attrs = Renderer::attributes(
            (string) ($attributes['code'] ?? ''),
            (string) ($attributes['on'] ?? 'click'),
            Renderer::parseProperties((string) ($attributes['properties'] ?? '')),
            'block'
        );
        if ($attrs === []) {
            return $content;
        }
        if (trim($content) === '' && $attrs['data-crumbs-on'] === 'view') {
            $attrs['hidden'] = 'hidden';
        }
        $attrs['class'] = 'crumbs-event';
        $wrapper = \WP_Block_Supports::$block_to_render !== null
            ? get_block_wrapper_attributes($attrs)
            : Renderer::html($attrs);
        return '<div ' . $wrapper . '>' . $content . '</div>';
    }

    /**
     * Adds the trigger attributes to the outer element of a core block that has a Crumbs event.
     *
     * @param array<string, mixed> $block
     */
    public function renderCoreBlock(string $html, array $block): string
    {
        $blockAttrs = is_array($block['attrs'] ?? null) ? $block['attrs'] : [];
        // The block comment's JSON as saved, not checked against the attributes' types: anyone who
        // may edit a post can put an array there, which (string) would print as "Array" with a warning.
        $text = static fn (string $name, string $default): string
            => is_scalar($blockAttrs[$name] ?? null) ? (string) $blockAttrs[$name] : $default;
        if (
            $text('crumbsEvent', '') === ''
            || !in_array((string) ($block['blockName'] ?? ''), self::coreBlocks(), true)
        ) {
            return $html;
        }
        $attrs = Renderer::attributes(
            $text('crumbsEvent', ''),
            $text('crumbsOn', 'click'),
            Renderer::parseProperties($text('crumbsProperties', '')),
            'block'
        );
        return self::injectAttributes($html, $attrs);
    }

    /**
     * Inserts escaped attributes into the first opening tag of $html.
     *
     * @param array<string, string> $attrs
     */
    public static function injectAttributes(string $html, array $attrs): string
    {
        if ($attrs === []) {
            return $html;
        }
        $result = preg_replace_callback(
            '/^(\s*<[a-zA-Z][a-zA-Z0-9\-]*)(?=[\s>\/])/',
            static fn (array $m): string => $m[1] . ' ' . Renderer::html($attrs),
            $html,
            1
        );
        return is_string($result) ? $result : $html;
    }
}
