<?php

namespace Crumbs\WordPress\Tests;

use Crumbs\WordPress\Blocks;

final class BlockTest extends TestCase
{
    public function testBlockIsRegisteredFromBlockJsonWithARenderer(): void
    {
        $type = \WP_Block_Type_Registry::get_instance()->get_registered(Blocks::BLOCK);
        $this->assertNotNull($type);
        $this->assertSame('Crumbs event trigger', $type->title);
        $this->assertTrue($type->is_dynamic());
        $this->assertSame('crumbs-editor', $type->editor_script);
        $this->assertTrue(wp_script_is('crumbs-editor', 'registered'));
        $this->assertSame('click', $type->attributes['on']['default']);
    }

    public function testBlockWrapsInnerBlocks(): void
    {
        $html = do_blocks('<!-- wp:crumbs/event-trigger {"code":"demo_click","on":"submit","properties":"plan=pro\nbad line\nsource_page = pricing"} -->'
            . '<!-- wp:paragraph --><p>Inner</p><!-- /wp:paragraph -->'
            . '<!-- /wp:crumbs/event-trigger -->');
        $this->assertStringContainsString('<div class="crumbs-event wp-block-crumbs-event-trigger"', $html);
        $this->assertStringContainsString('data-crumbs-event="demo_click"', $html);
        $this->assertStringContainsString('data-crumbs-on="submit"', $html);
        $this->assertStringContainsString('data-crumbs-source="block"', $html);
        $this->assertStringContainsString('data-crumbs-prop-plan="pro"', $html);
        $this->assertStringContainsString('data-crumbs-prop-source_page="pricing"', $html);
        $this->assertStringContainsString('<p>Inner</p>', $html);
    }

    public function testBlockSharesTheShortcodeRendererAndEscapes(): void
    {
        $code = 'x"><script>alert(1)</script>';
        $html = do_blocks('<!-- wp:crumbs/event-trigger ' . wp_json_encode(['code' => $code, 'on' => 'visible', 'properties' => 'n=<b>"q"</b>']) . ' --><p>c</p><!-- /wp:crumbs/event-trigger -->');
        $this->assertStringNotContainsString('<script>', $html);
        $this->assertStringNotContainsString('<b>', $html);
        $this->assertStringContainsString('data-crumbs-event="x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"', $html);
        $this->assertStringContainsString('data-crumbs-prop-n="&lt;b&gt;&quot;q&quot;&lt;/b&gt;"', $html);

        $shortcode = do_shortcode('[crumbs_event code=\'' . $code . '\' on="visible" n=\'<b>"q"</b>\']c[/crumbs_event]');
        preg_match_all('/data-crumbs-(?:event|on|prop-n)="[^"]*"/', $shortcode, $fromShortcode);
        preg_match_all('/data-crumbs-(?:event|on|prop-n)="[^"]*"/', $html, $fromBlock);
        $this->assertSame($fromShortcode[0], $fromBlock[0], 'block and shortcode render the same trigger attributes');
    }

    public function testBlockWithoutCodeRendersOnlyItsContent(): void
    {
        $html = do_blocks('<!-- wp:crumbs/event-trigger --><p>c</p><!-- /wp:crumbs/event-trigger -->');
        $this->assertSame('<p>c</p>', trim($html));
    }

    public function testCoreButtonGetsTheEventAttributes(): void
    {
        $html = do_blocks('<!-- wp:button {"crumbsEvent":"pricing_click","crumbsOn":"click","crumbsProperties":"tier=\"gold\""} -->'
            . '<div class="wp-block-button"><a class="wp-block-button__link" href="#p">Pricing</a></div>'
            . '<!-- /wp:button -->');
        $this->assertStringStartsWith('<div data-crumbs-event="pricing_click" data-crumbs-on="click" data-crumbs-source="block" data-crumbs-prop-tier="&quot;gold&quot;" class="wp-block-button">', $html);
        $this->assertSame(1, substr_count($html, 'data-crumbs-event'));
    }

    public function testCoreImageAndUnlistedBlocks(): void
    {
        $image = do_blocks('<!-- wp:image {"crumbsEvent":"hero_image","crumbsOn":"visible"} --><figure class="wp-block-image"><img src="a.png" alt=""/></figure><!-- /wp:image -->');
        $this->assertStringStartsWith('<figure data-crumbs-event="hero_image" data-crumbs-on="visible"', $image);

        $plain = do_blocks('<!-- wp:button --><div class="wp-block-button"><a class="wp-block-button__link">B</a></div><!-- /wp:button -->');
        $this->assertStringNotContainsString('data-crumbs', $plain);

        $separator = do_blocks('<!-- wp:separator {"crumbsEvent":"x"} --><hr class="wp-block-separator"/><!-- /wp:separator -->');
        $this->assertStringNotContainsString('data-crumbs', $separator, 'only the listed core blocks get triggers');
    }

    public function testCoreBlocksDeclareTheAttributes(): void
    {
        $button = \WP_Block_Type_Registry::get_instance()->get_registered('core/button');
        $this->assertArrayHasKey('crumbsEvent', $button->attributes);
        $this->assertArrayHasKey('crumbsOn', $button->attributes);
        $this->assertArrayHasKey('crumbsProperties', $button->attributes);
    }

    /**
     * The panel's attributes come from the block comment as saved, unchecked: an author can save
     * arrays there. They were cast with (string): a PHP warning ("Array to string conversion") on
     * every view of the post and data-crumbs-event="Array". A non-string is now taken as unset.
     */
    public function testCorePanelAttributesThatAreNotStringsAreIgnored(): void
    {
        $inner = '<p>Text</p>';
        $html = do_blocks('<!-- wp:paragraph {"crumbsEvent":["pricing_click"]} -->' . $inner . '<!-- /wp:paragraph -->');
        $this->assertSame($inner, trim($html));

        $html = do_blocks('<!-- wp:paragraph {"crumbsEvent":"pricing_click","crumbsOn":{"a":1},"crumbsProperties":["x=1"]} -->' . $inner . '<!-- /wp:paragraph -->');
        $this->assertSame('<p data-crumbs-event="pricing_click" data-crumbs-on="click" data-crumbs-source="block">Text</p>', trim($html));
    }
}
