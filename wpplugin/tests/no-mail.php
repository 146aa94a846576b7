<?php

/**
 * Test sites send no mail: this pluggable replacement records messages instead of calling sendmail.
 */

/**
 * @param string|string[] $to
 * @param string|string[] $headers
 * @param string|string[] $attachments
 */
function wp_mail($to, $subject, $message, $headers = '', $attachments = []): bool
{
    $GLOBALS['crumbs_test_mail'][] = compact('to', 'subject');
    return true;
}
