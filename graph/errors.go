package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// presentError maps a resolver error to a GraphQL error with extensions.code
// (and field, for bad input); bad input in several fields is one error per
// field. Errors of no known kind are logged with the
// request id and shown with a generic message. Without hints (production),
// validation messages lose their "Did you mean …?" suggestions, which would
// spell out the schema.
func presentError(log *slog.Logger, hints bool) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var already *gqlerror.Error
		if errors.As(err, &already) && already.Err == nil {
			gqlErr = presentProtocolError(gqlErr)
			if !hints {
				gqlErr.Message = withoutHint(gqlErr.Message)
			}
			if gqlErr.Extensions["code"] == codeIntrospection {
				log.DebugContext(ctx, "introspection refused", "request_id", RequestInfoFrom(ctx).ID)
			}
			return gqlErr
		}
		var fields *models.InvalidFieldsError
		if errors.As(err, &fields) && len(fields.Fields) > 0 && graphql.GetFieldContext(ctx) != nil {
			// One error per bad field, each with its own extensions.field,
			// in the order checked: all but the last are added here (each
			// through this presenter), the last is the one returned.
			last := len(fields.Fields) - 1
			for _, f := range fields.Fields[:last] {
				graphql.AddError(ctx, &gqlerror.Error{Err: f, Message: f.Error(), Path: gqlErr.Path, Locations: gqlErr.Locations})
			}
			f := fields.Fields[last]
			err = f
			gqlErr = &gqlerror.Error{Err: f, Message: f.Error(), Path: gqlErr.Path, Locations: gqlErr.Locations, Extensions: gqlErr.Extensions}
		}
		var invalid *models.InvalidError
		if errors.As(err, &invalid) && invalid.Field == "" {
			// A scalar refused its input; the path says which field it was.
			invalid.Field = lastKey(gqlErr.Path)
			gqlErr.Message = invalid.Error()
		}
		code, field := models.Code(err)
		if arg, ok := argumentPath(ctx, gqlErr.Path); ok && code == models.CodeInternal {
			code, field = models.CodeBadUserInput, arg
		}
		if gqlErr.Extensions == nil {
			gqlErr.Extensions = map[string]any{}
		}
		gqlErr.Extensions["code"] = code
		if field != "" {
			gqlErr.Extensions["field"] = field
		}
		switch code {
		case models.CodeInternal:
			log.ErrorContext(ctx, "request failed", "request_id", RequestInfoFrom(ctx).ID, "path", gqlErr.Path.String(), "err", err)
			gqlErr.Message = "internal server error"
		case models.CodeUnavailable:
			if storeUnavailable(ctx, log, err, "path", gqlErr.Path.String()) {
				gqlErr.Message = unavailableMessage
			}
		}
		return gqlErr
	}
}

const unavailableMessage = "the store is unavailable; retry later"

// storeUnavailable makes the response a 503 with Retry-After and logs the
// fault under models.MsgStoreUnavailable (the server's log handler throttles
// those). It reports whether the caller is to see the generic message:
// refusals that models words itself (the server is shutting down) keep
// theirs and are no store fault, nor is a request whose caller went away or
// that shutdown ended.
func storeUnavailable(ctx context.Context, log *slog.Logger, err error, args ...any) (generic bool) {
	setUnavailable(ctx)
	if errors.Is(err, models.ErrUnavailable) {
		return false
	}
	if ctx.Err() == nil || !errors.Is(err, context.Canceled) {
		log.ErrorContext(ctx, models.MsgStoreUnavailable, append([]any{"request_id", RequestInfoFrom(ctx).ID, "err", err}, args...)...)
	}
	return true
}

// recoverPanic turns a panic in a resolver into INTERNAL_SERVER_ERROR.
func recoverPanic(log *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in resolver", "request_id", RequestInfoFrom(ctx).ID, "panic", p, "stack", string(debug.Stack()))
		return fmt.Errorf("panic: %v", p)
	}
}

// triggerError is the per-item form of a refusal in triggerBatch results.
func triggerError(ctx context.Context, log *slog.Logger, err error) (code, message string, field *string) {
	code, f := models.Code(err)
	message = err.Error()
	switch code {
	case models.CodeInternal:
		log.ErrorContext(ctx, "trigger failed", "request_id", RequestInfoFrom(ctx).ID, "err", err)
		message = "internal server error"
	case models.CodeUnavailable:
		if storeUnavailable(ctx, log, err) {
			message = unavailableMessage
		}
	}
	if f != "" {
		field = &f
	}
	return code, message, field
}

// presentProtocolError reports gqlgen's refusals of the document or its
// variables (parse and validation errors, HTTP 422) as BAD_USER_INPUT, with
// the variable's path as the field when there is one. Size limits keep their
// own code.
func presentProtocolError(gqlErr *gqlerror.Error) *gqlerror.Error {
	if gqlErr.Extensions == nil {
		gqlErr.Extensions = map[string]any{}
	}
	switch gqlErr.Extensions["code"] {
	case codeComplexity, codeIntrospection:
		return gqlErr
	case errcode.ValidationFailed, errcode.ParseFailed, nil:
		gqlErr.Extensions["code"] = models.CodeBadUserInput
	}
	if len(gqlErr.Path) > 1 && gqlErr.Path[0] == ast.PathName("variable") {
		var parts []string
		for _, p := range gqlErr.Path[1:] {
			parts = append(parts, fmt.Sprint(p))
		}
		gqlErr.Extensions["field"] = strings.Join(parts, ".")
	}
	return gqlErr
}

// argumentPath reports whether an error arose while gqlgen read the field's
// arguments (its path goes on past the field's, into the argument), and
// names the argument as a field (rules.0.operator). Such an error is the
// caller's: gqlparser's validation takes enum values in variables in any
// case ("EQUALS"), the generated code only in the schema's.
func argumentPath(ctx context.Context, path ast.Path) (string, bool) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil {
		return "", false
	}
	fieldPath := fc.Path()
	if len(path) <= len(fieldPath) || path[:len(fieldPath)].String() != fieldPath.String() {
		return "", false
	}
	var parts []string
	for _, p := range path[len(fieldPath):] {
		parts = append(parts, fmt.Sprint(p))
	}
	return strings.Join(parts, "."), true
}

// withoutHint cuts a validation message's suggestions ("Cannot query field
// "nam" on type "App". Did you mean "name"?"), which gqlparser appends last.
func withoutHint(msg string) string {
	if i := strings.Index(msg, " Did you mean "); i >= 0 {
		return msg[:i]
	}
	return msg
}

func lastKey(path ast.Path) string {
	for i := len(path) - 1; i >= 0; i-- {
		if name, ok := path[i].(ast.PathName); ok {
			return string(name)
		}
	}
	return ""
}
