package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models/modelstest"
)

// The caches of documents that anonymous callers send hold a bounded number
// of bytes, not of entries. Parsed documents: 200 different documents of
// 990 aliases (16 KB each, within every document limit) kept 83 MB of heap
// in a cache of 1,000 entries (1,000 of them, sent in 12 s, grew the
// server to 818 MB). Persisted queries: the text sent with its hash was
// kept before the document limits looked at it, so 300 documents of 1.9 MB
// that the limits refuse grew the server to 1 GB, and a later request
// with the hash alone ran them; now a refused document is not persisted,
// and persisted texts together stay within a few MB.
func TestDocumentCachesAreBoundedInBytes(t *testing.T) {
	a := newAPI(t, modelstest.SQLite(t))
	srv := httptest.NewServer(a.handler)
	defer srv.Close()
	post := func(query string, persisted bool) (int, string) {
		t.Helper()
		req := map[string]any{}
		if query != "" {
			req["query"] = query
		}
		if persisted {
			sum := sha256.Sum256([]byte(query))
			req["extensions"] = map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
		}
		body, _ := json.Marshal(req)
		resp, err := http.Post(srv.URL+"/graphql", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(raw)
	}
	byHash := func(query string) string {
		t.Helper()
		sum := sha256.Sum256([]byte(query))
		body, _ := json.Marshal(map[string]any{"extensions": map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}})
		resp, err := http.Post(srv.URL+"/graphql", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return string(raw)
	}
	heap := func() uint64 {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}

	t.Run("parsed documents", func(t *testing.T) {
		before := heap()
		for i := range 200 {
			if status, raw := post(fmt.Sprintf("{%s } # %d", aliased(990, "__typename"), i), false); status != http.StatusOK {
				t.Fatalf("document %d: %d %.200s", i, status, raw)
			}
		}
		// The cache's budget is 32 MB of weight, about 17 MB of heap for
		// these documents.
		if grew := int64(heap()) - int64(before); grew > 40<<20 {
			t.Fatalf("the heap grew by %d MB", grew>>20)
		}
	})
	t.Run("refused documents are not persisted", func(t *testing.T) {
		for i := range 3 {
			query := fmt.Sprintf("{ __typename } # %d %s", i, strings.Repeat("x", 1<<20))
			if status, raw := post(query, true); status != http.StatusUnprocessableEntity || !strings.Contains(raw, "COMPLEXITY_LIMIT_EXCEEDED") {
				t.Fatalf("a 1 MB document: %d %.200s", status, raw)
			}
			if raw := byHash(query); !strings.Contains(raw, "PERSISTED_QUERY_NOT_FOUND") {
				t.Fatalf("by its hash, a refused document answered %.200s", raw)
			}
		}
	})
	t.Run("persisted documents", func(t *testing.T) {
		query := func(i int) string { return fmt.Sprintf("{ __typename } # %d %s", i, strings.Repeat("x", 60<<10)) }
		for i := range 300 {
			if status, raw := post(query(i), true); status != http.StatusOK {
				t.Fatalf("document %d: %d %.200s", i, status, raw)
			}
		}
		// 18 MB of text: the latest are kept, the first went.
		if raw := byHash(query(299)); raw != `{"data":{"__typename":"Query"}}` {
			t.Fatalf("the latest persisted document answered %.200s", raw)
		}
		if raw := byHash(query(0)); !strings.Contains(raw, "PERSISTED_QUERY_NOT_FOUND") {
			t.Fatalf("the first of 18 MB of persisted documents is still kept: %.200s", raw)
		}
	})
}
