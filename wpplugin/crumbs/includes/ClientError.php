<?php

declare(strict_types=1);

namespace Crumbs\WordPress;

/**
 * A refused or failed call to the Crumbs server. `code` is the server's extensions.code, or
 * NETWORK / HTTP_<status> / NOT_CONFIGURED for failures before GraphQL.
 */
final class ClientError extends \RuntimeException
{
    /** Codes worth retrying later: the same request may succeed once the server or key is back. */
    public const RETRYABLE = ['RATE_LIMITED', 'UNAVAILABLE', 'INTERNAL_SERVER_ERROR', 'UNAUTHENTICATED', 'FORBIDDEN', 'NETWORK'];

    public function __construct(
        string $message,
        public readonly string $errorCode,
        public readonly bool $retryable = false,
        public readonly ?string $field = null
    ) {
        parent::__construct($message);
    }
}
