<?php

/**
 * php db.php create|drop — creates (afresh) or drops the test database named in wp-env.php.
 */

require __DIR__ . '/wp-env.php';

[$crumbsHost, $crumbsPort] = array_pad(explode(':', DB_HOST, 2), 2, '3306');
$crumbsDb = new mysqli($crumbsHost, DB_USER, DB_PASSWORD, '', (int) $crumbsPort);
$crumbsName = '`' . str_replace('`', '', DB_NAME) . '`';
$crumbsDb->query('DROP DATABASE IF EXISTS ' . $crumbsName);
if (($argv[1] ?? '') === 'create') {
    $crumbsDb->query('CREATE DATABASE ' . $crumbsName . ' CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci');
}
echo "ok\n";
