package graph

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// gqlgen reports a body it cannot decode before any operation exists; the
// handler's response middleware must not assume one (it panicked with
// "missing operation context", answering 500 with a logged stack).
func TestErrorsBeforeAnOperationDoNotPanic(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	h := NewHandler(&Resolver{Log: log}, HandlerOptions{Log: log})
	for _, body := range []string{"not json", "", "[]", `{"query": 7}`} {
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "errors") {
			t.Errorf("%q: %d %s", body, rec.Code, rec.Body)
		}
	}
	if strings.Contains(logs.String(), "panic") {
		t.Fatalf("logged: %s", logs.String())
	}
}
