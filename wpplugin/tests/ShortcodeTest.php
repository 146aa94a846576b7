<?php

namespace Crumbs\WordPress\Tests;

final class ShortcodeTest extends TestCase
{
    public function testViewShortcodeIsAHiddenMarker(): void
    {
        $html = do_shortcode('[crumbs_event code="pdf_download" file="guide.pdf" /]');
        $this->assertSame(
            '<span class="crumbs-event" data-crumbs-event="pdf_download" data-crumbs-on="view" data-crumbs-source="shortcode" data-crumbs-prop-file="guide.pdf" hidden="hidden"></span>',
            $html
        );
    }

    public function testEnclosingShortcodeWrapsItsContent(): void
    {
        $html = do_shortcode('[crumbs_event code="trial_click" on="click" plan="pro"]<a href="/trial">Try</a>[/crumbs_event]');
        $this->assertSame(
            '<span class="crumbs-event" data-crumbs-event="trial_click" data-crumbs-on="click" data-crumbs-source="shortcode" data-crumbs-prop-plan="pro"><a href="/trial">Try</a></span>',
            $html
        );
    }

    public function testPropertyNamesMayStartWithADigit(): void
    {
        // The library reads data-crumbs-prop-2fa back as "2fa" (the dataset keeps the dash before a digit).
        $html = do_shortcode('[crumbs_event code="login_click" 2fa="on" 3d_secure="yes"]<a href="/login">Log in</a>[/crumbs_event]');
        $this->assertStringContainsString('data-crumbs-prop-2fa="on"', $html);
        $this->assertStringContainsString('data-crumbs-prop-3d_secure="yes"', $html);
    }

    public function testEveryTriggerAndTheDivWrapper(): void
    {
        foreach (['view', 'click', 'visible', 'submit'] as $on) {
            $html = do_shortcode('[crumbs_event code="x" on="' . $on . '" tag="div"]<form></form>[/crumbs_event]');
            $this->assertStringStartsWith('<div class="crumbs-event" data-crumbs-event="x" data-crumbs-on="' . $on . '"', $html);
            $this->assertStringEndsWith('<form></form></div>', $html);
        }
        $this->assertStringContainsString(
            'data-crumbs-on="click"',
            do_shortcode('[crumbs_event code="x" on="hover"]a[/crumbs_event]'),
            'an unknown trigger falls back to click'
        );
    }

    public function testCodeAndPropertiesAreEscaped(): void
    {
        $html = do_shortcode('[crumbs_event code=\'x" onclick="alert(1)\' note=\'<script>alert(1)</script>\' on="click"]hi[/crumbs_event]');
        $this->assertStringNotContainsString('<script>', $html);
        $this->assertStringNotContainsString('onclick="alert', $html);
        $this->assertStringContainsString('data-crumbs-event="x&quot; onclick=&quot;alert(1)"', $html);
        $this->assertStringContainsString('data-crumbs-prop-note="&lt;script&gt;alert(1)&lt;/script&gt;"', $html);

        $html = do_shortcode('[crumbs_event code="<script>alert(1)</script>" /]');
        $this->assertStringNotContainsString('<script>', $html);
        $this->assertStringContainsString('data-crumbs-event="&lt;script&gt;alert(1)&lt;/script&gt;"', $html);
    }

    public function testPropertyNamesAreReducedToSafeCharacters(): void
    {
        $html = \Crumbs\WordPress\Renderer::render('x', 'view', ['Bad Name"=>' => 'v', 'ok_name-2' => 'w', '' => 'z'], '', 'shortcode');
        $this->assertStringContainsString('data-crumbs-prop-badname="v"', $html);
        $this->assertStringContainsString('data-crumbs-prop-ok_name_2="w"', $html, 'a hyphen becomes _ so the library reads the same name');
        $this->assertSame(1, substr_count($html, '"v"'));
    }

    public function testNoCodeReturnsContentUnwrappedAndNestedShortcodesRun(): void
    {
        $this->assertSame('plain', do_shortcode('[crumbs_event]plain[/crumbs_event]'));
        $html = do_shortcode('[crumbs_event code="outer" on="visible"][crumbs_event code="inner" /][/crumbs_event]');
        $this->assertStringContainsString('data-crumbs-event="outer"', $html);
        $this->assertStringContainsString('data-crumbs-event="inner"', $html);
    }

    public function testShortcodeReturnsAndNeverEchoes(): void
    {
        ob_start();
        $html = do_shortcode('[crumbs_event code="quiet" on="click"]x[/crumbs_event]');
        $this->assertSame('', ob_get_clean());
        $this->assertNotSame('', $html);
    }

    public function testInPostContent(): void
    {
        $post = wp_insert_post(['post_title' => 'sc', 'post_content' => 'Hello [crumbs_event code="pdf_download" /]', 'post_status' => 'publish']);
        $content = apply_filters('the_content', get_post_field('post_content', $post));
        $this->assertStringContainsString('data-crumbs-event="pdf_download" data-crumbs-on="view" data-crumbs-source="shortcode"', $content);
        wp_delete_post($post, true);
    }
}
