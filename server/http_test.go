package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
)

func TestHTTPTransportsAndLimits(t *testing.T) {
	db := modelstest.SQLite(t)
	a := newAPI(t, db, func(c *config) { c.MaxBodyBytes = 4096 })
	srv := httptest.NewServer(a.handler)
	defer srv.Close()
	appID, _ := a.createApp("HTTP")

	post := func(contentType, body string, header ...string) (*http.Response, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", contentType)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp, out
	}
	trigger := fmt.Sprintf(`{"query":"mutation { trigger(input: {appId: \"%s\", deviceId: \"beacon\", code: \"view\"}) { accepted } }"}`, appID)

	// navigator.sendBeacon sends text/plain, which needs no CORS preflight.
	resp, out := post("text/plain;charset=UTF-8", trigger, "Origin", "https://site.example")
	if resp.StatusCode != 200 || fmt.Sprint(out["data"]) != "map[trigger:map[accepted:true]]" {
		t.Fatalf("text/plain trigger: %d %v", resp.StatusCode, out)
	}
	resp, _ = post("application/json", trigger, "Accept", "application/graphql-response+json")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/graphql-response+json") {
		t.Fatalf("content type %q", ct)
	}

	big := `{"query":"{ apps { id } }","variables":{"pad":"` + strings.Repeat("x", 5000) + `"}}`
	resp, out = post("application/json", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(fmt.Sprint(out), "PAYLOAD_TOO_LARGE") {
		t.Fatalf("oversized body: %d %v", resp.StatusCode, out)
	}
	// Without a Content-Length (chunked), the limit still holds.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/graphql", io.MultiReader(strings.NewReader(big)))
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = -1
	chunked, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	chunked.Body.Close()
	if chunked.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked oversized body: %d", chunked.StatusCode)
	}

	resp, out = post("application/json", `{"query": "{ apps { id `)
	if resp.StatusCode/100 != 4 && resp.StatusCode != 200 || out["errors"] == nil {
		t.Fatalf("broken query: %d %v", resp.StatusCode, out)
	}
	resp, _ = post("application/json", `not json`)
	if resp.StatusCode/100 != 4 {
		t.Fatalf("broken JSON: %d", resp.StatusCode)
	}

	get := func(path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+a.ownerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	if resp, body := get("/graphql?query=" + url.QueryEscape("{ apps { id } }")); resp.StatusCode != 200 || !strings.Contains(body, appID) {
		t.Fatalf("GET query: %d %s", resp.StatusCode, body)
	}
	if resp, body := get("/graphql?query=" + url.QueryEscape(`mutation { createApp(input: {name: "x"}) { secretKey } }`)); resp.StatusCode == 200 && !strings.Contains(body, "errors") {
		t.Fatalf("GET mutation ran: %d %s", resp.StatusCode, body)
	}
	if _, body := get("/graphql?query=" + url.QueryEscape("{ __schema { types { name } } }")); !strings.Contains(body, "errors") {
		t.Fatalf("introspection open outside development: %s", body)
	}
	if resp, _ := get("/graphiql"); resp.StatusCode != 404 {
		t.Fatalf("GraphiQL outside development: %d", resp.StatusCode)
	}
	if resp, body := get("/healthz"); resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("healthz %d %q", resp.StatusCode, body)
	}
	if resp, _ := get("/readyz"); resp.StatusCode != 200 {
		t.Fatalf("readyz %d", resp.StatusCode)
	}
	if resp, _ := get("/graphql"); resp.Header.Get("X-Request-Id") == "" {
		t.Fatal("no X-Request-Id")
	}

	pre, _ := http.NewRequest(http.MethodOptions, srv.URL+"/graphql", nil)
	pre.Header.Set("Origin", "https://site.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	pre.Header.Set("Access-Control-Request-Headers", "content-type")
	presp, err := http.DefaultClient.Do(pre)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.Header.Get("Access-Control-Allow-Origin") != "https://site.example" {
		t.Fatalf("preflight: %d %v", presp.StatusCode, presp.Header)
	}
	// The library reads Retry-After of a 429 from another origin.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/graphql", strings.NewReader(trigger))
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("Origin", "https://site.example")
	cresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cresp.Body.Close()
	if !strings.Contains(cresp.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Fatalf("Retry-After not exposed to browsers: %v", cresp.Header)
	}
}

func TestDevelopmentMode(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t), func(c *config) { c.Development = true })
	a.ownerToken = ""
	srv := httptest.NewServer(a.handler)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/graphiql")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GraphiQL in development: %d", resp.StatusCode)
	}
	var schema struct {
		Schema struct{ QueryType struct{ Name string } } `json:"__schema"`
	}
	a.ok(`{ __schema { queryType { name } } }`, &schema)
	if schema.Schema.QueryType.Name != "Query" {
		t.Fatalf("introspection in development: %+v", schema)
	}
}

func TestInternalErrorsAreGeneric(t *testing.T) {
	db := modelstest.SQLite(t)
	a := newAPI(t, db)
	sqlDB, _ := db.DB()
	sqlDB.Close()
	e := a.refused("INTERNAL_SERVER_ERROR", "", `{ apps { id } }`)
	if e.Message != "internal server error" {
		t.Fatalf("message leaks details: %q", e.Message)
	}
	srv := httptest.NewServer(a.handler)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with a closed database: %d", resp.StatusCode)
	}
}

func TestRunServesAndShutsDown(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		"CRUMBS_ADDR":         "127.0.0.1:0",
		"CRUMBS_DATABASE_URL": "sqlite:" + filepath.Join(dir, "crumbs.db"),
		"CRUMBS_LOG_FORMAT":   "text",
	}
	ctx, cancel := context.WithCancel(context.Background())
	stdoutR, stdoutW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, nil, func(k string) string { return env[k] }, strings.NewReader(""), stdoutW, io.Discard)
		stdoutW.Close()
	}()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		t.Fatalf("no listening line: %v", err)
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, "crumbs listening on "))
	resp, err := http.Get(base + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz: %v %v", err, resp)
	}
	resp.Body.Close()
	go io.Copy(io.Discard, stdoutR)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after shutdown")
	}

	bad := func(k string) string { return map[string]string{"CRUMBS_WRITE_DELAY": "soon"}[k] }
	if err := run(context.Background(), nil, bad, strings.NewReader(""), io.Discard, io.Discard); err == nil || !strings.Contains(err.Error(), "write-delay") {
		t.Fatalf("bad setting: %v", err)
	}
}

func TestPanicsBecomeInternalErrors(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := httptest.NewRecorder()
	recoverPanics(log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })).
		ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "INTERNAL_SERVER_ERROR") || strings.Contains(rec.Body.String(), "boom") {
		t.Fatalf("HTTP panic: %d %s", rec.Code, rec.Body)
	}
	// Under the JSON API, Segment or the webhooks, in the API's error shape
	// (it answered GraphQL's {"errors": […]} there).
	for _, path := range []string{"/api/v1/apps/app_x/events", "/v1/track", "/webhooks/it_x/generic/track"} {
		rec := httptest.NewRecorder()
		recoverPanics(log, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") })).
			ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, nil))
		var body struct {
			Error *struct{ Code, Message string }
		}
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != 500 || rec.Header().Get("Content-Type") != "application/json" || body.Error == nil ||
			body.Error.Code != models.CodeInternal || strings.Contains(rec.Body.String(), "boom") {
			t.Errorf("HTTP panic at %s: %d %s", path, rec.Code, rec.Body)
		}
	}

	// A resolver that panics (here: no writer) answers a generic error.
	h := graph.NewHandler(&graph.Resolver{DB: modelstest.SQLite(t), Log: log}, graph.HandlerOptions{Log: log})
	c := client.New(h)
	resp, err := c.RawPost(`mutation { trigger(input: {appId: "a", deviceId: "d", code: "view"}) { accepted } }`)
	if err != nil {
		t.Fatal(err)
	}
	if s := string(resp.Errors); !strings.Contains(s, "INTERNAL_SERVER_ERROR") || !strings.Contains(s, "internal server error") || strings.Contains(s, "nil pointer") {
		t.Fatalf("resolver panic: %s", s)
	}
}
