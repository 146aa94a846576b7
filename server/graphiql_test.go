package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// GraphiQL works with the network off: Chromium, refused every request that
// does not go to loopback, loads it from the server, runs a query and shows
// the answer.
func TestGraphiQLOffline(t *testing.T) {
	jsclient, _ := filepath.Abs("../jsclient")
	for _, need := range []struct{ path, why string }{
		{"/usr/bin/chromium", "/usr/bin/chromium is missing (run .ci/setup-jsclient)"},
		{filepath.Join(jsclient, "node_modules/playwright-core/package.json"), "jsclient/node_modules is missing (run .ci/setup-jsclient)"},
	} {
		if _, err := os.Stat(need.path); err != nil {
			skipOrFail(t, need.why)
		}
	}
	if _, err := exec.LookPath("node"); err != nil {
		skipOrFail(t, "node is not installed")
	}

	a := newAPI(t, modelstest.SQLite(t), func(c *config) { c.Development = true })
	var me struct{ Me struct{ Email string } }
	a.ok(`{ me { email } }`, &me)
	srv := httptest.NewServer(a.handler)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "graphiql/testdata/offline.mjs")
	headers, _ := json.Marshal(map[string]string{"Authorization": "Bearer " + a.ownerToken})
	cmd.Env = append(os.Environ(),
		"GRAPHIQL_URL="+srv.URL+"/graphiql",
		"GRAPHIQL_QUERY={ me { email } }",
		"GRAPHIQL_HEADERS="+string(headers),
		"EXPECT="+me.Me.Email,
		"JSCLIENT_DIR="+jsclient,
	)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var result struct {
		Answer  string
		Blocked []string
		Errors  []string
	}
	if err := json.Unmarshal(out, &result); err != nil {
		t.Fatalf("node printed %q: %v", out, err)
	}
	if len(result.Errors) > 0 {
		t.Errorf("page errors: %q", result.Errors)
	}
	if len(result.Blocked) > 0 {
		t.Errorf("GraphiQL tried to reach the network: %q", result.Blocked)
	}
	if !strings.Contains(result.Answer, `"email": "`+me.Me.Email+`"`) {
		t.Errorf("GraphiQL shows %q, want the signed-in user's email %s", result.Answer, me.Me.Email)
	}
}

// Production serves neither GraphiQL nor its assets.
func TestGraphiQLOnlyInDevelopment(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	for _, path := range []string{"/graphiql", "/graphiql/assets/graphiql-4.1.2.min.js"} {
		rec := httptest.NewRecorder()
		a.handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("production %s: %d, want 404", path, rec.Code)
		}
	}
}

func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must run the browser tests", why)
	}
	t.Skip(why)
}

// introspectionQuery is graphql-js's getIntrospectionQuery() as GraphiQL
// sends it (descriptions, deprecated input values, eight ofType levels).
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name kind } mutationType { name kind } subscriptionType { name kind }
    types { ...FullType }
    directives { name description isRepeatable locations args(includeDeprecated: true) { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) { name description args(includeDeprecated: true) { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields(includeDeprecated: true) { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue isDeprecated deprecationReason }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } }`

// In development GraphiQL's introspection query passes the depth limit (ofType
// chains do not count), while deep introspection of another shape is still
// refused (by gqlgen's introspection depth rule, before the depth limit).
func TestIntrospectionWithinLimits(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t), func(c *config) { c.Development = true })
	data, errs := a.do(introspectionQuery)
	if len(errs) > 0 {
		t.Fatalf("introspection refused: %+v", errs)
	}
	types, _ := data["__schema"].(map[string]any)["types"].([]any)
	if len(types) < 20 {
		t.Fatalf("introspection returned %d types", len(types))
	}
	deep := "{ __schema { types { " + strings.Repeat("fields { type { ", 6) + "name" + strings.Repeat(" } }", 6) + " } } }"
	if data, errs := a.do(deep); len(errs) == 0 || data != nil {
		t.Fatalf("deep introspection answered: %v", data)
	}
}
