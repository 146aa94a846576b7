// Package ingest serves Crumbs' plain JSON ingestion API under /api/v1,
// for servers and browsers that want to record events without GraphQL.
// Every endpoint calls the same models functions and the same group-commit
// writer as the GraphQL mutations, under the same rules: a secret key
// (Authorization: Bearer sk_…) for servers, or else a browser call held to
// the app's allowed origins, small batches, recent times and rate limits.
//
// Whole-request failures answer an HTTP status with
// {"error":{"code","message"}} (the codes are the GraphQL ones); per-item
// outcomes answer {"accepted","duplicate","event_id","error"}. A store that
// cannot be reached answers UNAVAILABLE with 503 and Retry-After.
package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/crumbs-dev/crumbs/models"
	"gorm.io/gorm"
)

// Options configure the API.
type Options struct {
	Writer *models.Writer
	// DB is the store identify writes to (triggers go through Writer).
	DB  *gorm.DB
	Log *slog.Logger
	// ClientIP returns the caller's address, as far as trusted proxies
	// vouch for it (per-IP rate limits).
	ClientIP func(*http.Request) string
	// RequestID returns the id the server gave the request, for logs.
	RequestID func(*http.Request) string
	// MaxBodyBytes bounds a request body (default 2 MiB); larger ones get
	// 413 PAYLOAD_TOO_LARGE.
	MaxBodyBytes int64
	// CheckBody refuses a body before it is decoded (the server's rules for
	// every JSON body: UTF-8, nesting, number of values); its error's code
	// (BAD_REQUEST, PAYLOAD_TOO_LARGE) sets the status. Nil checks nothing.
	CheckBody func(body []byte) error
}

// API is the JSON ingestion API.
type API struct {
	opts Options
}

// New returns the API.
func New(opts Options) *API {
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.ClientIP == nil {
		opts.ClientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	if opts.RequestID == nil {
		opts.RequestID = func(*http.Request) string { return "" }
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 2 << 20
	}
	if opts.CheckBody == nil {
		opts.CheckBody = func([]byte) error { return nil }
	}
	return &API{opts: opts}
}

// prefixes are the paths the API serves under: the JSON API, Segment's
// tracking API and the Bento-compatible webhooks.
var prefixes = []string{"/api/v1/", "/v1/", "/webhooks/"}

// Serves reports whether path is under one of the API's prefixes, whose
// answers, refusals included, are the API's JSON.
func Serves(path string) bool {
	return slices.ContainsFunc(prefixes, func(p string) bool { return strings.HasPrefix(path, p) })
}

// Refuse answers a whole request with status and the API's error body,
// {"error":{"code","message"}}.
func Refuse(w http.ResponseWriter, status int, code, message string) {
	writeRefusal(w, status, code, message)
}

// Register adds every endpoint of the API to mux, and more served beside
// them under its prefixes (the server's export), by ServeMux pattern.
func (a *API) Register(mux *http.ServeMux, more map[string]http.Handler) {
	allow := map[string][]string{}
	add := func(pattern string, h http.Handler) {
		mux.Handle(pattern, h)
		method, path, _ := strings.Cut(pattern, " ")
		allow[path] = append(allow[path], method)
	}
	for pattern, h := range a.endpoints() {
		add(pattern, h)
	}
	for pattern, h := range more {
		add(pattern, h)
	}
	// Another method on an endpoint's path is answered as every other
	// whole-request refusal of the API, in JSON with a code, instead of
	// ServeMux's plain-text 405 that clients cannot read as an error body.
	for path, methods := range allow {
		if slices.Contains(methods, http.MethodGet) {
			methods = append(methods, http.MethodHead)
		}
		slices.Sort(methods)
		header := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", header)
			writeRefusal(w, http.StatusMethodNotAllowed, models.CodeBadRequest, "use "+header)
		})
	}
	// So is a path under the API that is no endpoint, instead of
	// ServeMux's plain-text 404.
	for _, prefix := range prefixes {
		mux.HandleFunc(prefix, func(w http.ResponseWriter, r *http.Request) {
			writeRefusal(w, http.StatusNotFound, models.CodeNotFound, "no such endpoint; the API is described at /api/v1/openapi.json")
		})
	}
}

// Patterns lists the API's endpoints as ServeMux patterns, so that tests can
// require an access expectation for each.
func (a *API) Patterns() []string {
	var out []string
	for pattern := range a.endpoints() {
		out = append(out, pattern)
	}
	slices.Sort(out)
	return out
}

func (a *API) endpoints() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"POST /api/v1/apps/{appId}/events":   a.events,
		"POST /api/v1/apps/{appId}/identify": a.identifyDevice,
		"GET /api/v1/openapi.json":           a.openapi,
		// Segment's HTTP tracking API, with its short aliases.
		"POST /v1/track":    a.segment("track"),
		"POST /v1/t":        a.segment("track"),
		"POST /v1/identify": a.segment("identify"),
		"POST /v1/i":        a.segment("identify"),
		"POST /v1/page":     a.segment("page"),
		"POST /v1/p":        a.segment("page"),
		"POST /v1/screen":   a.segment("screen"),
		"POST /v1/s":        a.segment("screen"),
		"POST /v1/alias":    a.segment("alias"),
		"POST /v1/a":        a.segment("alias"),
		"POST /v1/group":    a.segment("group"),
		"POST /v1/g":        a.segment("group"),
		"POST /v1/batch":    a.segment(""),
		// Bento-compatible webhooks; Bento's SDKs post to batch/events
		// and import subscribers to batch/subscribers.
		"POST /webhooks/{ingestToken}/{integration}/track":             a.webhook,
		"POST /webhooks/{ingestToken}/{integration}/batch/events":      a.webhook,
		"POST /webhooks/{ingestToken}/{integration}/batch/subscribers": a.subscribers,
	}
}

// caller is who sent a request and from where.
type caller struct {
	secret    string
	origin    string
	clientIP  string
	userAgent string
	// basic is set when the request sent HTTP Basic credentials.
	basic bool
}

// identify reads the request's credentials: none (a browser), or the app's
// secret key as a bearer token or in X-App-Secret (the header Bread &
// Butter-style clients send).
func (a *API) identify(r *http.Request) (caller, error) {
	c := caller{origin: r.Header.Get("Origin"), clientIP: a.opts.ClientIP(r), userAgent: r.UserAgent()}
	auth, header := r.Header.Get("Authorization"), r.Header.Get("X-App-Secret")
	if auth == "" && header == "" {
		return c, nil
	}
	if strings.HasPrefix(auth, "Basic ") && header == "" {
		// Segment's write key; only its endpoints read it (segmentKey).
		c.basic = true
		return c, nil
	}
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if auth == "" {
		token, ok = header, true
	} else if header != "" && strings.TrimSpace(header) != strings.TrimSpace(token) {
		ok = false
	}
	token = strings.TrimSpace(token)
	if !ok || !strings.HasPrefix(token, "sk_") {
		return c, models.Unauthenticated("use Authorization: Bearer <the app's secret key> (or X-App-Secret), or no credentials from a browser")
	}
	c.secret = token
	return c, nil
}

// errorBody is the JSON of a refusal.
type errorBody struct {
	Code    string  `json:"code"`
	Message string  `json:"message"`
	Field   *string `json:"field,omitempty"`
}

// fieldNames names a field of bad input as the endpoint's caller sent it:
// models name them as GraphQL does (deviceId, occurredAt), the JSON API in
// snake_case (snakeCase), Segment and the webhooks by their own bodies.
type fieldNames func(field string) string

// asSent keeps field names as they are: the endpoint refused a field by
// the name its caller sent.
func asSent(field string) string { return field }

// describe turns err into its public code and a message safe to show, its
// field named by names; the details of unexpected errors are logged
// instead, and store faults under models.MsgStoreUnavailable (which the
// server's log throttles).
func (a *API) describe(r *http.Request, err error, names fieldNames) errorBody {
	code, field := models.Code(err)
	if errors.Is(err, ErrBodyUnreadable) {
		code = models.CodeBadRequest
	}
	body := errorBody{Code: code, Message: err.Error()}
	if field != "" {
		field = names(field)
		body.Field = &field
		if invalid := (*models.InvalidError)(nil); errors.As(err, &invalid) {
			body.Message = field + ": " + invalid.Message
		}
	}
	switch code {
	case models.CodeInternal:
		a.opts.Log.ErrorContext(r.Context(), "ingest request failed", "request_id", a.opts.RequestID(r), "path", r.URL.Path, "err", err)
		body.Message = "internal server error"
	case models.CodeUnavailable:
		// Refusals models words itself (shutting down) keep their message
		// and are no store fault; nor is a request whose caller went away.
		if !errors.Is(err, models.ErrUnavailable) {
			if r.Context().Err() == nil || !errors.Is(err, context.Canceled) {
				a.opts.Log.ErrorContext(r.Context(), models.MsgStoreUnavailable, "request_id", a.opts.RequestID(r), "path", r.URL.Path, "err", err)
			}
			body.Message = "the store is unavailable; retry later"
		}
	}
	return body
}

// statusOf is the HTTP status of a refusal with this code.
func statusOf(code string) int {
	switch code {
	case models.CodeBadUserInput, models.CodeBadRequest:
		return http.StatusBadRequest
	case models.CodeUnauthenticated:
		return http.StatusUnauthorized
	case models.CodeForbidden:
		return http.StatusForbidden
	case models.CodeNotFound:
		return http.StatusNotFound
	case models.CodeUnknownEventCode, models.CodeEventDisabled, models.CodeBotFiltered:
		return http.StatusUnprocessableEntity
	case models.CodePayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case models.CodeRateLimited:
		return http.StatusTooManyRequests
	case models.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// retryAfter is when a caller refused for err may try again, if it may.
func retryAfter(err error) time.Duration {
	var limited *models.RateLimitError
	if errors.As(err, &limited) {
		return limited.RetryAfter
	}
	if code, _ := models.Code(err); code == models.CodeUnavailable {
		return models.RetryAfterUnavailable
	}
	return 0
}

// fail answers a whole-request failure of the JSON API.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.failAs(w, r, err, snakeCase)
}

// Fail answers a whole-request failure of an endpoint served beside the
// API under its prefixes (the server's export), in the API's error shape,
// its field named as the caller sent it (a query parameter).
func (a *API) Fail(w http.ResponseWriter, r *http.Request, err error) {
	a.failAs(w, r, err, asSent)
}

// failAs answers a whole-request failure, its field named by names.
func (a *API) failAs(w http.ResponseWriter, r *http.Request, err error, names fieldNames) {
	body := a.describe(r, err, names)
	writeJSON(w, statusOf(body.Code), retryAfter(err), struct {
		Error errorBody `json:"error"`
	}{body})
}

// badRequest answers a body the endpoint cannot read.
func badRequest(w http.ResponseWriter, message string) {
	writeRefusal(w, http.StatusBadRequest, models.CodeBadRequest, message)
}

// writeRefusal answers a whole-request refusal that models did not word.
func writeRefusal(w http.ResponseWriter, status int, code, message string) {
	writeJSON(w, status, 0, struct {
		Error errorBody `json:"error"`
	}{errorBody{Code: code, Message: message}})
}

func writeJSON(w http.ResponseWriter, status int, retry time.Duration, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`{"error":{"code":"INTERNAL_SERVER_ERROR","message":"internal server error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if retry > 0 {
		h.Set("Retry-After", strconv.Itoa(int((retry+time.Second-1)/time.Second)))
	}
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// snakeCase turns the models' field names (deviceId, occurredAt) into the
// JSON API's (device_id, occurred_at).
func snakeCase(field string) string {
	var sb strings.Builder
	for _, r := range field {
		if unicode.IsUpper(r) {
			sb.WriteByte('_')
			r = unicode.ToLower(r)
		}
		sb.WriteRune(r)
	}
	return sb.String()
}
