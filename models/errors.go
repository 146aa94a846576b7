package models

import (
	"errors"
	"fmt"
	"time"
)

// Error kinds. Every refusal a caller can see wraps exactly one of these, so the
// GraphQL presenter and the JSON endpoints map them to the same public codes.
var (
	ErrNotFound              = errors.New("not found")
	ErrConflict              = errors.New("conflict")
	ErrForbidden             = errors.New("forbidden")
	ErrUnauthenticated       = errors.New("unauthenticated")
	ErrUnknownEventCode      = errors.New("unknown event code")
	ErrEventDisabled         = errors.New("event disabled")
	ErrEventAlreadyTriggered = errors.New("event already triggered")
	ErrRateLimited           = errors.New("rate limited")
	ErrPayloadTooLarge       = errors.New("payload too large")
	// ErrBotFiltered: a browser trigger whose User-Agent is a known bot
	// (see BotFilter), counted and not stored. Final: never retried.
	ErrBotFiltered = errors.New("bot filtered")
	// ErrUnavailable: the store could not be reached or did not answer in
	// time (see storeFault for the driver errors that mean the same).
	ErrUnavailable = errors.New("store unavailable")
	// ErrBadRequest is a body that is not a GraphQL request at all: not JSON,
	// empty, a batch, nested too deep, or of a content type the server does
	// not read.
	ErrBadRequest = errors.New("bad request")
)

// InvalidError reports bad input in one field.
type InvalidError struct {
	Field   string
	Message string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Message }

// Invalid returns an *InvalidError for field with a formatted message.
func Invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// InputError says which of several inputs of one call a refusal is about
// (IdentifyAll); its code and field are Err's.
type InputError struct {
	Index int
	Err   error
}

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// kindError gives a kind a message meant for the caller.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func newError(kind error, format string, args ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// Public error codes, as listed in PRODUCT.md.
const (
	CodeBadUserInput          = "BAD_USER_INPUT"
	CodeUnauthenticated       = "UNAUTHENTICATED"
	CodeForbidden             = "FORBIDDEN"
	CodeNotFound              = "NOT_FOUND"
	CodeConflict              = "CONFLICT"
	CodeUnknownEventCode      = "UNKNOWN_EVENT_CODE"
	CodeEventDisabled         = "EVENT_DISABLED"
	CodeEventAlreadyTriggered = "EVENT_ALREADY_TRIGGERED"
	CodeRateLimited           = "RATE_LIMITED"
	CodePayloadTooLarge       = "PAYLOAD_TOO_LARGE"
	CodeUnavailable           = "UNAVAILABLE"
	CodeBadRequest            = "BAD_REQUEST"
	CodeBotFiltered           = "BOT_FILTERED"
	CodeInternal              = "INTERNAL_SERVER_ERROR"
)

// RetryAfterUnavailable is how long a client refused UNAVAILABLE is told to
// wait (Retry-After) before it retries.
const RetryAfterUnavailable = 5 * time.Second

var kindCodes = []struct {
	kind error
	code string
}{
	{ErrNotFound, CodeNotFound},
	{ErrConflict, CodeConflict},
	{ErrForbidden, CodeForbidden},
	{ErrUnauthenticated, CodeUnauthenticated},
	{ErrUnknownEventCode, CodeUnknownEventCode},
	{ErrEventDisabled, CodeEventDisabled},
	{ErrEventAlreadyTriggered, CodeEventAlreadyTriggered},
	{ErrRateLimited, CodeRateLimited},
	{ErrPayloadTooLarge, CodePayloadTooLarge},
	{ErrUnavailable, CodeUnavailable},
	{ErrBadRequest, CodeBadRequest},
	{ErrBotFiltered, CodeBotFiltered},
}

// Code returns the public error code of err and the offending field, if any.
// Errors of no known kind return CodeInternal: their text must not be shown.
func Code(err error) (code, field string) {
	var invalid *InvalidError
	if errors.As(err, &invalid) {
		return CodeBadUserInput, invalid.Field
	}
	for _, k := range kindCodes {
		if errors.Is(err, k.kind) {
			return k.code, ""
		}
	}
	if storeFault(err) {
		return CodeUnavailable, ""
	}
	return CodeInternal, ""
}

// BadRequest returns a BAD_REQUEST error with a message for the caller.
func BadRequest(format string, args ...any) error {
	return newError(ErrBadRequest, format, args...)
}

// Unauthenticated returns an UNAUTHENTICATED error with a message for the caller.
func Unauthenticated(format string, args ...any) error {
	return newError(ErrUnauthenticated, format, args...)
}
