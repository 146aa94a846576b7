package models

import (
	"errors"
	"fmt"
	"strings"
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

// ConflictError is a CONFLICT about one field of the input: the value it
// holds clashes with what is stored (a code already defined, a name
// taken), so a form can mark that field as it marks bad input.
type ConflictError struct {
	Field string
	err   error
}

func (e *ConflictError) Error() string { return e.err.Error() }
func (e *ConflictError) Unwrap() error { return e.err }

// ConflictOn returns a CONFLICT error about field with a formatted message.
func ConflictOn(field, format string, args ...any) error {
	return &ConflictError{Field: field, err: newError(ErrConflict, format, args...)}
}

// InvalidFieldsError reports bad input in several fields of one call, in
// the order they were checked, one *InvalidError each. It unwraps to them,
// so errors.As and Code find the first, as they would a lone *InvalidError.
type InvalidFieldsError struct {
	Fields []*InvalidError
}

func (e *InvalidFieldsError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e *InvalidFieldsError) Unwrap() []error {
	errs := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		errs[i] = f
	}
	return errs
}

// validation collects the bad fields of one input, so that a refusal names
// them all and a form can mark each, rather than one per attempt. A field
// keeps the first message it was given.
type validation struct {
	bad   []*InvalidError
	other error // the first error that was no input error
}

// check records field as bad unless ok, and returns ok.
func (v *validation) check(field string, ok bool, format string, args ...any) bool {
	if !ok {
		v.add(Invalid(field, format, args...))
	}
	return ok
}

// add records the fields of err, an *InvalidError or *InvalidFieldsError
// from a check that returns an error, and reports whether err was nil.
// Any other error is kept as it is and wins over the bad fields.
func (v *validation) add(err error) bool {
	if err == nil {
		return true
	}
	var many *InvalidFieldsError
	var one *InvalidError
	switch {
	case errors.As(err, &many):
		for _, f := range many.Fields {
			v.add(f)
		}
	case errors.As(err, &one):
		for _, f := range v.bad {
			if f.Field == one.Field {
				return false
			}
		}
		v.bad = append(v.bad, one)
	case v.other == nil:
		v.other = err
	}
	return false
}

// err returns nil, the one bad field's *InvalidError, or an
// *InvalidFieldsError naming them all.
func (v *validation) err() error {
	if v.other != nil {
		return v.other
	}
	switch len(v.bad) {
	case 0:
		return nil
	case 1:
		return v.bad[0]
	}
	return &InvalidFieldsError{Fields: v.bad}
}

// InputError says which of several inputs of one call a refusal is about
// (IdentifyGroups); its code and field are Err's.
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
	var conflict *ConflictError
	if errors.As(err, &conflict) {
		return CodeConflict, conflict.Field
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
