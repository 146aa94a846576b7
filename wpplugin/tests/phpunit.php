<?php

/**
 * Runs PHPUnit with WordPress loaded in the global scope, as WordPress expects (its files set
 * globals at file level; PHPUnit's own bootstrap option would load them inside a function).
 *
 * Usage: php phpunit.php [phpunit arguments]   (phpunit.xml beside this file is used by default)
 */

require '/usr/share/php/PHPUnit/Autoload.php';
require __DIR__ . '/bootstrap.php';

if (!in_array('-c', $argv, true) && !in_array('--configuration', $argv, true)) {
    array_splice($argv, 1, 0, ['-c', __DIR__ . '/phpunit.xml']);
    $_SERVER['argv'] = $argv;
}
exit(PHPUnit\TextUI\Command::main(false));
