package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// presentError maps a resolver error to a GraphQL error with extensions.code
// (and field, for bad input). Errors of no known kind are logged with the
// request id and shown with a generic message.
func presentError(log *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		gqlErr := graphql.DefaultErrorPresenter(ctx, err)
		var already *gqlerror.Error
		if errors.As(err, &already) && already.Err == nil {
			// Parse and validation errors from gqlgen itself keep their own codes.
			return gqlErr
		}
		code, field := models.Code(err)
		if gqlErr.Extensions == nil {
			gqlErr.Extensions = map[string]any{}
		}
		gqlErr.Extensions["code"] = code
		if field != "" {
			gqlErr.Extensions["field"] = field
		}
		if code == models.CodeInternal {
			log.ErrorContext(ctx, "request failed", "request_id", RequestInfoFrom(ctx).ID, "path", gqlErr.Path.String(), "err", err)
			gqlErr.Message = "internal server error"
		}
		return gqlErr
	}
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
	if code == models.CodeInternal {
		log.ErrorContext(ctx, "trigger failed", "request_id", RequestInfoFrom(ctx).ID, "err", err)
		message = "internal server error"
	}
	if f != "" {
		field = &f
	}
	return code, message, field
}
