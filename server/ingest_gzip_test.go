package main

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// gzipped compresses s.
func gzipped(s string) string {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte(s))
	zw.Close()
	return buf.String()
}

// gzipBomb is 256 MiB of zeros gzipped: a body of about 256 KB, well under
// the 2 MiB limit, that inflates a thousandfold.
var gzipBomb = sync.OnceValue(func() string {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 256 {
		zw.Write(zeros)
	}
	zw.Close()
	return buf.String()
})

// gzipMembers is a body of empty gzip members, each valid, together over
// the 2 MiB limit while they inflate to nothing.
var gzipMembers = sync.OnceValue(func() string {
	empty := gzipped("")
	return strings.Repeat(empty, (2<<20)/len(empty)+1)
})

// Every ingestion surface takes a gzipped body (Content-Encoding: gzip, as
// RudderStack's libraries and Segment's Python one send) and stores what
// it holds; a decompression bomb and a flood of empty members are refused
// 413 at the body limit with bounded memory, another coding 415, a body
// that is not the gzip it claims 400.
func TestIngestGzipBodies(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, secret := j.a.createApp("Gzip")
		_, token, _ := createIngestToken(j.a, appID, "Gzip")
		bearer := "Bearer " + secret
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(secret+":"))
		surfaces := []struct {
			name, path, auth, body string
			// device is where the body's event lands ("" for the webhook's lead).
			device string
		}{
			{"JSON API", "/api/v1/apps/" + appID + "/events", bearer, `{"device_id":"gz-json","code":"view"}`, "gz-json"},
			{"Segment", "/v1/track", basic, `{"anonymousId":"gz-segment","event":"view"}`, "gz-segment"},
			{"webhook", "/webhooks/" + token + "/generic/track", "", `{"events":[{"type":"view","email":"gz@example.com"}]}`, ""},
			{"GraphQL", "/graphql", bearer, `{"query":"mutation { trigger(input: {appId: \"` + appID + `\", deviceId: \"gz-graphql\", code: \"view\"}) { accepted } }"}`, "gz-graphql"},
		}
		send := func(path, auth, encoding, body string) (int, http.Header, string) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodPost, j.srv.URL+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			if encoding != "" {
				req.Header.Set("Content-Encoding", encoding)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Header, string(raw)
		}
		// code reads the refusal's code, in the JSON API's shape or GraphQL's.
		code := func(raw string) string {
			var out struct {
				Error  *struct{ Code string }
				Errors []struct{ Extensions struct{ Code string } }
			}
			json.Unmarshal([]byte(raw), &out)
			if out.Error != nil {
				return out.Error.Code
			}
			if len(out.Errors) > 0 {
				return out.Errors[0].Extensions.Code
			}
			return ""
		}
		for _, s := range surfaces {
			if status, _, raw := send(s.path, s.auth, "gzip", gzipped(s.body)); status != 200 || strings.Contains(raw, `"error":{`) || strings.Contains(raw, `"errors"`) {
				t.Errorf("%s, gzipped: %d %s", s.name, status, raw)
			}
			if status, header, raw := send(s.path, s.auth, "br", s.body); status != 415 || code(raw) != "BAD_REQUEST" || header.Get("Accept-Encoding") != "gzip" {
				t.Errorf("%s, br: %d %v %s", s.name, status, header, raw)
			}
			if status, _, raw := send(s.path, s.auth, "gzip", s.body); status != 400 {
				t.Errorf("%s, not gzip: %d %s", s.name, status, raw)
			}
			for name, body := range map[string]string{"bomb": gzipBomb(), "empty members": gzipMembers()} {
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				status, _, raw := send(s.path, s.auth, "gzip", body)
				runtime.ReadMemStats(&after)
				if status != 413 || code(raw) != "PAYLOAD_TOO_LARGE" {
					t.Errorf("%s, %s: %d %s", s.name, name, status, raw)
				}
				// Inflated whole, the bomb alone would allocate 256 MiB.
				if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<20 {
					t.Errorf("%s, %s: the server allocated %d MiB", s.name, name, alloc>>20)
				}
			}
			if s.device != "" {
				if events := deviceTimeline(j.a, appID, s.device, ""); len(events) != 1 {
					t.Errorf("%s: %d events stored, want the gzipped one: %+v", s.name, len(events), events)
				}
			}
		}
		if _, events := leadTimeline(j.a, appID, "gz@example.com"); len(events) != 1 {
			t.Errorf("webhook: %d events stored, want the gzipped one", len(events))
		}
	})
}
