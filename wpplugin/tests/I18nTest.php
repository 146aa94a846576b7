<?php

namespace Crumbs\WordPress\Tests;

/**
 * Every translatable string of the plugin, in PHP and in JavaScript, uses the "crumbs" text domain.
 */
final class I18nTest extends \PHPUnit\Framework\TestCase
{
    private const FUNCTIONS = ['__', '_e', '_x', '_n', 'esc_html__', 'esc_html_e', 'esc_attr__', 'esc_attr_e', 'esc_html_x', 'esc_attr_x', '_nx'];

    /**
     * @return list<string>
     */
    private static function files(string $extension): array
    {
        $files = [];
        $it = new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator(dirname(__DIR__) . '/crumbs'));
        foreach ($it as $file) {
            if ($file->isFile() && $file->getExtension() === $extension) {
                $files[] = $file->getPathname();
            }
        }
        return $files;
    }

    public function testPhpStringsUseTheTextDomain(): void
    {
        $calls = 0;
        foreach (self::files('php') as $file) {
            $tokens = array_values(array_filter(
                token_get_all((string) file_get_contents($file)),
                static fn ($t) => !is_array($t) || !in_array($t[0], [T_WHITESPACE, T_COMMENT, T_DOC_COMMENT], true)
            ));
            foreach ($tokens as $i => $token) {
                if (!is_array($token) || $token[0] !== T_STRING || !in_array($token[1], self::FUNCTIONS, true) || ($tokens[$i + 1] ?? null) !== '(') {
                    continue;
                }
                $prev = $tokens[$i - 1] ?? null;
                if (is_array($prev) && in_array($prev[0], [T_FUNCTION, T_OBJECT_OPERATOR, T_DOUBLE_COLON], true)) {
                    continue;
                }
                $depth = 0;
                $last = null;
                for ($j = $i + 1; $j < count($tokens); $j++) {
                    $t = $tokens[$j];
                    if ($t === '(' || $t === '[') {
                        $depth++;
                    } elseif ($t === ')' || $t === ']') {
                        $depth--;
                        if ($depth === 0) {
                            break;
                        }
                    } elseif ($depth === 1 && $t !== ',') {
                        $last = $t;
                    }
                }
                $calls++;
                $this->assertSame(
                    "'crumbs'",
                    is_array($last) ? $last[1] : $last,
                    sprintf('%s:%d: %s() without the crumbs text domain', basename($file), $token[2], $token[1])
                );
            }
        }
        $this->assertGreaterThan(50, $calls);
    }

    public function testJavaScriptStringsUseTheTextDomain(): void
    {
        $calls = 0;
        foreach (self::files('js') as $file) {
            $source = (string) file_get_contents($file);
            preg_match_all("/\\b(__|_n|_x)\\(\\s*(?:'(?:[^'\\\\]|\\\\.)*'\\s*,\\s*)+'([^']*)'\\s*\\)/", $source, $m);
            preg_match_all('/\\b(?:__|_n|_x)\\(/', $source, $all);
            $calls += count($all[0]);
            $this->assertCount(count($all[0]), $m[2], basename($file) . ': a translation call the check cannot read');
            foreach ($m[2] as $domain) {
                $this->assertSame('crumbs', $domain, basename($file));
            }
        }
        $this->assertGreaterThan(10, $calls);
    }

    public function testBlockJsonAndHeaderDeclareTheTextDomain(): void
    {
        $block = json_decode((string) file_get_contents(dirname(__DIR__) . '/crumbs/blocks/event-trigger/block.json'), true);
        $this->assertSame('crumbs', $block['textdomain']);
        $this->assertSame(3, $block['apiVersion']);
        $header = get_file_data(dirname(__DIR__) . '/crumbs/crumbs.php', ['domain' => 'Text Domain', 'wp' => 'Requires at least', 'php' => 'Requires PHP']);
        $this->assertSame(['domain' => 'crumbs', 'wp' => '6.1', 'php' => '8.1'], $header);
    }
}
