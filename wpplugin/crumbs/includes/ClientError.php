<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * A refused or failed call to the Crumbs server. `code` is the server's extensions.code, or
 * NETWORK / HTTP_<status> / NOT_CONFIGURED for failures before GraphQL. The message is for the
 * people who see it; `detail` is the transport's own report of a NETWORK failure (a cURL error,
 * credentials in the URL masked), for administrators only. `retryAfter` is the seconds a 503 or
 * 429 answer's Retry-After asked to wait (0 when it named none).
 */
final class ClientError extends \RuntimeException
{
    /** Codes worth retrying later: the same request may succeed once the server or key is back. */
    public const RETRYABLE = ['RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL_SERVER_ERROR', 'UNAUTHENTICATED', 'FORBIDDEN', 'NETWORK'];

    public function __construct(
        string $message,
        public readonly string $errorCode,
        public readonly bool $retryable = false,
        public readonly ?string $field = null,
        public readonly string $detail = '',
        public readonly int $retryAfter = 0
    ) {
        parent::__construct($message);
    }

    /**
     * The message with the transport's detail, for administrators (Test connection, Settings →
     * Crumbs, the privacy tools); editors get the message only, or words of their own.
     */
    public function forAdministrators(): string
    {
        return $this->detail === '' ? $this->getMessage() : $this->getMessage() . ' ' . sprintf(
            /* translators: %s: the transport's error, e.g. "cURL error 7: Failed to connect to …" */
            __('Details: %s', 'crumbs'),
            $this->detail
        );
    }
}
