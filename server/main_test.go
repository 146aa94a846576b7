package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/graph"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

func TestMain(m *testing.M) { os.Exit(modelstest.Main(m)) }

// api is the real handler stack (routes and middleware) over one store.
type api struct {
	t       *testing.T
	db      *gorm.DB
	handler http.Handler
	gql     *client.Client
}

func newAPI(t *testing.T, db *gorm.DB, mutate ...func(*config)) *api {
	t.Helper()
	cfg, err := parseConfig(nil, func(string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mutate {
		m(cfg)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	catalog := models.NewCatalog(db, time.Minute)
	writer := models.NewWriter(db, catalog, models.WriterOptions{Log: log})
	t.Cleanup(writer.Close)
	h := routes(cfg, log, &graph.Resolver{DB: db, Catalog: catalog, Writer: writer, Log: log})
	return &api{t: t, db: db, handler: h, gql: client.New(h, client.Path("/graphql"))}
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
	resp, err := a.gql.RawPost(query, opts...)
	if err != nil {
		a.t.Fatalf("post: %v", err)
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
	if err := a.gql.Post(query, out, opts...); err != nil {
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
