package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/crumbs-dev/crumbs/server/metrics"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) {
	code := modelstest.Main(m)
	if serverBinary.dir != "" {
		os.RemoveAll(serverBinary.dir)
	}
	os.Exit(code)
}

// api is the real handler stack (routes and middleware) over one store.
type api struct {
	t          testing.TB
	db         *gorm.DB
	handler    http.Handler
	gql        *client.Client
	resolver   *graph.Resolver
	ownerToken string
}

func newAPI(t testing.TB, db *gorm.DB, mutate ...func(*config)) *api {
	t.Helper()
	env := map[string]string{"CRUMBS_ENV": "production", "CRUMBS_JWT_SECRET": testJWTSecret}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mutate {
		m(cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New()
	resolver, closeResolver, err := newResolver(cfg, db, log, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeResolver)
	h := routes(cfg, log, resolver, m)
	a := &api{t: t, db: db, handler: h, gql: client.New(h, client.Path("/graphql")), resolver: resolver}
	a.ownerToken = a.signUp()
	return a
}

// settle derives everything stored so far: the rollups consumer runs after
// the acknowledgement, and a test that counts rows must not see it add
// rollups later (nor, on a locked SQLite file, wait on the lock meanwhile).
func (a *api) settle() {
	a.t.Helper()
	if err := a.resolver.Writer.EventLog().Drain(context.Background()); err != nil {
		a.t.Fatal(err)
	}
}

const testJWTSecret = "test-signing-secret-of-at-least-32-bytes!"

var userSeq atomic.Int64

// signUp creates a dashboard user and returns a fresh access token.
func (a *api) signUp() string {
	a.t.Helper()
	email := fmt.Sprintf("user%d-%d@example.com", time.Now().UnixNano(), userSeq.Add(1))
	if _, err := models.CreateUser(context.Background(), a.db, email, "Tester", "correct horse battery"); err != nil {
		a.t.Fatal(err)
	}
	var out struct{ Login struct{ AccessToken string } }
	a.ok(`mutation($e: String!) { login(email: $e, password: "correct horse battery") { accessToken } }`, &out, client.Var("e", email), anonymous())
	return out.Login.AccessToken
}

// as sends the request with this access token; asOwner is the default.
func as(token string) client.Option { return client.AddHeader("Authorization", "Bearer "+token) }

// anonymous marks a request to send no credentials.
func anonymous() client.Option {
	return func(bd *client.Request) { bd.HTTP.Header.Set("X-Test-Anonymous", "1") }
}

// withCredentials adds the owner's token unless the request brings its own
// credentials or asks to be anonymous. It runs after the request's options.
func (a *api) withCredentials(opts []client.Option) []client.Option {
	return append(opts[:len(opts):len(opts)], func(bd *client.Request) {
		if bd.HTTP.Header.Get("X-Test-Anonymous") != "" {
			bd.HTTP.Header.Del("X-Test-Anonymous")
			bd.HTTP.Header.Del("Authorization")
			return
		}
		if bd.HTTP.Header.Get("Authorization") == "" && a.ownerToken != "" {
			bd.HTTP.Header.Set("Authorization", "Bearer "+a.ownerToken)
		}
	})
}

// gqlError is one entry of a response's errors.
type gqlError struct {
	Message    string
	Path       []any
	Extensions struct {
		Code  string
		Field string
	}
}

// do posts a query and returns its data and errors.
func (a *api) do(query string, opts ...client.Option) (map[string]any, []gqlError) {
	a.t.Helper()
	resp, err := a.gql.RawPost(query, a.withCredentials(opts)...)
	if err != nil {
		// Refusals of the document itself come as HTTP 4xx with a GraphQL body.
		_, body, ok := strings.Cut(err.Error(), ": ")
		resp = &client.Response{}
		if !strings.HasPrefix(err.Error(), "http 4") || !ok || json.Unmarshal([]byte(body), resp) != nil {
			a.t.Fatalf("post: %v", err)
		}
	}
	var errs []gqlError
	if len(resp.Errors) > 0 {
		if err := json.Unmarshal(resp.Errors, &errs); err != nil {
			a.t.Fatalf("errors %s: %v", resp.Errors, err)
		}
	}
	data, _ := resp.Data.(map[string]any)
	return data, errs
}

// ok posts a query that must succeed and decodes its data into out.
func (a *api) ok(query string, out any, opts ...client.Option) {
	a.t.Helper()
	if err := a.gql.Post(query, out, a.withCredentials(opts)...); err != nil {
		a.t.Fatalf("%s\n%v", query, err)
	}
}

// refused posts a query that must fail with code (and field, if given).
func (a *api) refused(code, field, query string, opts ...client.Option) gqlError {
	a.t.Helper()
	_, errs := a.do(query, opts...)
	if len(errs) != 1 || errs[0].Extensions.Code != code || errs[0].Extensions.Field != field {
		a.t.Fatalf("%s\ngot errors %+v, want one %s on field %q", query, errs, code, field)
	}
	return errs[0]
}

type createdApp struct {
	CreateApp struct {
		App struct {
			ID               string
			EventDefinitions []struct{ ID, Code string }
		}
		SecretKey string
	}
}

func (a *api) createApp(name string) (appID, secret string) {
	a.t.Helper()
	var out createdApp
	a.ok(`mutation($n: String!) { createApp(input: {name: $n}) { app { id eventDefinitions { id code } } secretKey } }`, &out, client.Var("n", name))
	return out.CreateApp.App.ID, out.CreateApp.SecretKey
}
