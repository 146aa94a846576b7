package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// auditDir holds the pinned graphql-http audit suite (npm); its
// node_modules come from .ci/setup-graphql-http.
const auditDir = "testdata/graphql-http"

type auditResult struct {
	ID, Name, Status, Reason string
}

// graphql-http's server audits (the GraphQL over HTTP spec) against the real
// handler stack in production and development mode: no MUST may fail, and
// a POST without Content-Type gets a 4xx (9ABE).
func TestGraphQLOverHTTPAudit(t *testing.T) {
	node, err := exec.LookPath("node")
	if _, serr := os.Stat(filepath.Join(auditDir, "node_modules", "graphql-http")); err != nil || serr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node or the graphql-http audit suite is missing; run .ci/setup-graphql-http")
		}
		t.Skip("node or the graphql-http audit suite is missing; run .ci/setup-graphql-http")
	}
	db := modelstest.SQLite(t)
	for _, mode := range []string{"production", "development"} {
		t.Run(mode, func(t *testing.T) {
			a := newAPI(t, db, func(c *config) { c.Development = mode == "development" })
			srv := httptest.NewServer(a.handler)
			defer srv.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, node, "audit.mjs", srv.URL+"/graphql")
			cmd.Dir = auditDir
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("audit: %v", err)
			}
			var results []auditResult
			if err := json.Unmarshal(out, &results); err != nil || len(results) < 20 {
				t.Fatalf("audit output (%v): %.500s", err, out)
			}
			ok := 0
			for _, r := range results {
				switch {
				case r.Status == "ok":
					ok++
				case strings.HasPrefix(r.Name, "MUST") || r.Status == "error":
					t.Errorf("%s %s: %s (%s)", r.ID, r.Name, r.Status, r.Reason)
				case r.ID == "9ABE":
					t.Errorf("%s %s: %s (%s)", r.ID, r.Name, r.Status, r.Reason)
				default:
					t.Logf("%s %s: %s (%s)", r.ID, r.Name, r.Status, r.Reason)
				}
			}
			t.Logf("%d of %d audits ok", ok, len(results))
		})
	}
}
