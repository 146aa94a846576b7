package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/crumbs-dev/crumbs/server/ingest"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"gorm.io/gorm"
)

// openAPIDoc is the part of the document the test walks.
type openAPIDoc struct {
	Paths map[string]map[string]struct {
		Parameters []struct {
			Name, In string
			Example  string
		}
		RequestBody *struct {
			Content map[string]struct {
				Examples map[string]struct{ Value json.RawMessage }
			}
		}
	}
}

// The OpenAPI 3.1 document at /api/v1/openapi.json is valid by a real
// OpenAPI validator (pb33f/libopenapi-validator), lists every endpoint the
// server has, and every example in it runs against the server on both
// stores, each request and answer valid by the document.
func TestOpenAPIDocument(t *testing.T) {
	raw := ingest.OpenAPI()
	doc, err := libopenapi.NewDocument(raw)
	if err != nil {
		t.Fatal(err)
	}
	v, errs := validator.NewValidator(doc)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("document: %s: %s", e.Message, e.Reason)
		}
		t.FailNow()
	}
	var walk openAPIDoc
	if err := json.Unmarshal(raw, &walk); err != nil {
		t.Fatal(err)
	}
	var documented []string
	for path, ops := range walk.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(documented)
	if served := ingest.New(ingest.Options{}).Patterns(); !slices.Equal(documented, served) {
		t.Fatalf("the document lists %v; the server serves %v", documented, served)
	}

	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("OpenAPI")
		for _, code := range []string{"trial_click", "order_completed", "purchase"} {
			j.a.ok(`mutation($a: ID!, $c: String!) { createEventDefinition(input: {appId: $a, code: $c, name: $c}) { id } }`, &map[string]any{}, client.Var("a", appID), client.Var("c", code))
		}
		_, token, _ := createIngestToken(j.a, appID, "OpenAPI examples")

		resp, err := http.Get(j.srv.URL + "/api/v1/openapi.json")
		if err != nil {
			t.Fatal(err)
		}
		served, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(served, raw) {
			t.Fatalf("GET /api/v1/openapi.json: %d, %d bytes", resp.StatusCode, len(served))
		}

		ran := 0
		for _, name := range documented {
			method, path, _ := strings.Cut(name, " ")
			op := walk.Paths[path][strings.ToLower(method)]
			if op.RequestBody == nil {
				continue
			}
			url := strings.NewReplacer("{appId}", appID, "{ingestToken}", token, "{integration}", "billing").Replace(path)
			for _, example := range op.RequestBody.Content["application/json"].Examples {
				send := func() *http.Request {
					req, _ := http.NewRequest(method, j.srv.URL+url, bytes.NewReader(example.Value))
					req.Header.Set("Content-Type", "application/json")
					switch {
					case strings.HasPrefix(path, "/v1/"):
						req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(secret+":")))
					case strings.HasPrefix(path, "/api/"):
						req.Header.Set("Authorization", "Bearer "+secret)
					}
					return req
				}
				resp, err := http.DefaultClient.Do(send())
				if err != nil {
					t.Fatal(err)
				}
				answer, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || strings.Contains(string(answer), `"success":false`) || strings.Contains(string(answer), `"results":0`) {
					t.Fatalf("%s example %s: %d %s", name, example.Value, resp.StatusCode, answer)
				}
				resp.Body = io.NopCloser(bytes.NewReader(answer))
				req := send()
				req.URL.Host, req.URL.Scheme = "", "" // matched against the document's relative server
				if ok, verrs := v.ValidateHttpRequestResponse(req, resp); !ok {
					for _, e := range verrs {
						t.Errorf("%s example %s: %s: %s", name, example.Value, e.Message, e.Reason)
					}
				}
				ran++
			}
		}
		if ran < 12 {
			t.Fatalf("ran %d examples", ran)
		}

		// Refusals match the document too.
		req, _ := http.NewRequest(http.MethodPost, j.srv.URL+"/api/v1/apps/"+appID+"/events", strings.NewReader(`{"device_id":"d","code":"view"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer sk_wrong")
		resp, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(answer))
		req, _ = http.NewRequest(http.MethodPost, "/api/v1/apps/"+appID+"/events", strings.NewReader(`{"device_id":"d","code":"view"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer sk_wrong")
		if ok, verrs := v.ValidateHttpRequestResponse(req, resp); resp.StatusCode != 401 || !ok {
			t.Fatalf("wrong key: %d %s %v", resp.StatusCode, answer, verrs)
		}
	})
}
