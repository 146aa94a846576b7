<?php

// Dependencies of editor.js, in the shape @wordpress/scripts would generate (no build step).
return [
    'dependencies' => [
        'wp-api-fetch', 'wp-block-editor', 'wp-blocks', 'wp-components', 'wp-compose',
        'wp-element', 'wp-hooks', 'wp-i18n',
    ],
    'version' => '0.1.0',
];
