package graph

import (
	"context"
	"net/http"
	"strings"
)

// RequestInfo is what resolvers need to know about the HTTP request.
type RequestInfo struct {
	ID        string
	UserAgent string
	// Bearer is the token of an `Authorization: Bearer` header, if any.
	Bearer string
	// Origin is the browser's Origin header, if any.
	Origin string
}

type requestInfoKey struct{}

// WithRequestInfo stores info in ctx.
func WithRequestInfo(ctx context.Context, info RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, info)
}

// RequestInfoFrom returns the request info stored in ctx.
func RequestInfoFrom(ctx context.Context) RequestInfo {
	info, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	return info
}

// RequestInfoMiddleware reads the request's user agent and bearer token into
// the context. requestID reads the id the server assigned.
func RequestInfoMiddleware(requestID func(*http.Request) string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		info := RequestInfo{ID: requestID(r), UserAgent: r.UserAgent(), Origin: r.Header.Get("Origin")}
		if auth := r.Header.Get("Authorization"); len(auth) > 7 && strings.EqualFold(auth[:7], "bearer ") {
			info.Bearer = strings.TrimSpace(auth[7:])
		}
		next.ServeHTTP(w, r.WithContext(WithRequestInfo(r.Context(), info)))
	})
}
