package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// FuzzGraphQLDocument sends whole GraphQL documents with variables through
// the real handler (parse, validation, complexity limits, resolvers, the
// store) on SQLite, as an anonymous visitor, a browser, a server with the
// secret key or a dashboard owner. Whatever it is sent, it must answer
// without INTERNAL_SERVER_ERROR and without a 5xx; a panic is recovered into
// INTERNAL_SERVER_ERROR, so that catches panics too. In documents and
// variables, APP_ID stands for an existing app's id.
//
// The seed corpus, one document per file in testdata/fuzz/FuzzGraphQLDocument,
// covers every root field with plausible and hostile arguments; it runs as a
// normal test. `go test -fuzz FuzzGraphQLDocument ./server` explores further.
func FuzzGraphQLDocument(f *testing.F) {
	a := newAPI(f, modelstest.SQLite(f))
	appID, secret := a.createApp("Fuzzed")
	f.Fuzz(func(t *testing.T, query string, variables []byte, caller uint8) {
		query = strings.ReplaceAll(query, "APP_ID", appID)
		// Variables are a JSON object (or absent): bodies that are not GraphQL
		// requests at all are another suite's subject.
		vars := json.RawMessage("null")
		var obj map[string]any
		if json.Unmarshal(variables, &obj) == nil && obj != nil {
			vars = json.RawMessage(strings.ReplaceAll(string(variables), "APP_ID", appID))
		}
		// Marshal makes the body UTF-8 (bytes that are not go in as U+FFFD):
		// other bodies are refused before GraphQL, see TestHostileInputs.
		body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
		req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		switch caller % 4 {
		case 1:
			req.Header.Set("Origin", "https://site.example")
		case 2:
			req.Header.Set("Authorization", "Bearer "+secret)
		case 3:
			req.Header.Set("Authorization", "Bearer "+a.ownerToken)
		}
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, req)
		raw, _ := io.ReadAll(rec.Body)
		if rec.Code >= 500 || strings.Contains(string(raw), `"code":"INTERNAL_SERVER_ERROR"`) {
			t.Fatalf("HTTP %d for %q with %s: %.500s", rec.Code, query, vars, raw)
		}
	})
}
