package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/google/uuid"
)

type requestIDKey struct{}

// withRequestID takes a sane X-Request-Id from the caller or makes one, and
// echoes it, so a logged failure can be matched to the request that saw it.
func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if len(id) == 0 || len(id) > 64 || !printableASCII(id) {
			id = uuid.NewString()
		}
		w.Header().Set("X-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

func requestID(r *http.Request) string {
	id, _ := r.Context().Value(requestIDKey{}).(string)
	return id
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// recoverPanics answers INTERNAL_SERVER_ERROR for a panic outside a resolver.
func recoverPanics(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.Error("panic", "request_id", requestID(r), "panic", p, "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, models.CodeInternal, "internal server error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// limitBody refuses bodies over max with 413 PAYLOAD_TOO_LARGE before any of
// them is parsed, whether or not the client announced a Content-Length.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Method == http.MethodGet || r.Method == http.MethodOptions {
			next.ServeHTTP(w, r)
			return
		}
		tooLarge := func() {
			writeError(w, http.StatusRequestEntityTooLarge, models.CodePayloadTooLarge,
				fmt.Sprintf("the request body exceeds %d bytes", max))
		}
		if r.ContentLength > max {
			tooLarge()
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, max+1))
		if err != nil {
			writeError(w, http.StatusBadRequest, models.CodeBadUserInput, "the request body could not be read")
			return
		}
		if int64(len(body)) > max {
			tooLarge()
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// refuseInvalidUTF8 answers 400 BAD_REQUEST to a body or query string that
// is not UTF-8. Such a body is not JSON (RFC 8259), and Go's JSON decoder
// would quietly turn the bytes into U+FFFD: a device id or message id that
// is not what the client sent. It runs after limitBody, on a body already
// read into memory.
func refuseInvalidUTF8(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bad := func() {
			writeError(w, http.StatusBadRequest, models.CodeBadRequest, "the request is not valid UTF-8")
		}
		for _, values := range r.URL.Query() {
			for _, v := range values {
				if !utf8.ValidString(v) {
					bad()
					return
				}
			}
		}
		if r.Body != nil && r.Method == http.MethodPost {
			body, err := io.ReadAll(r.Body)
			if err != nil {
				writeError(w, http.StatusBadRequest, models.CodeBadRequest, "the request body could not be read")
				return
			}
			if !utf8.Valid(body) {
				bad()
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		next.ServeHTTP(w, r)
	})
}

// acceptTextPlain treats a text/plain POST as JSON: navigator.sendBeacon can
// only send such "simple" bodies without a CORS preflight.
func acceptTextPlain(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err == nil && mt == "text/plain" {
				r.Header.Set("Content-Type", "application/json")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// writeError answers in the GraphQL error shape, which the JSON endpoints share.
func writeError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"errors": []any{map[string]any{"message": message, "extensions": map[string]any{"code": code}}},
	})
}

// longLivedWebsockets lifts the server's read and write timeouts from
// websocket upgrades: a subscription stays open far longer than a request.
func longLivedWebsockets(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			rc := http.NewResponseController(w)
			rc.SetReadDeadline(time.Time{})
			rc.SetWriteDeadline(time.Time{})
		}
		next.ServeHTTP(w, r)
	})
}
