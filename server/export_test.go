package main

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// exportAccess is who may export app A's events: its key, editors and owners.
var exportAccess = expect{anon: unauth, other: notFound, viewer: forbidden, otherServer: unauth}

func TestExportEndpoint(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		f := newFixture(t, db)
		srv := httptest.NewServer(f.a.handler)
		defer srv.Close()
		get := func(caller string, query url.Values) (*http.Response, string) {
			t.Helper()
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/apps/"+f.appA+"/export?"+query.Encode(), nil)
			if b := f.bearer(caller); b != "" {
				req.Header.Set("Authorization", b)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body) // reads the trailer too
			resp.Body.Close()
			return resp, string(raw)
		}
		var stored int64
		db.Model(&models.Event{}).Joins("JOIN apps ON apps.id = events.app_id").Where("apps.public_id = ?", f.appA).Count(&stored)
		if stored == 0 {
			t.Fatal("the fixture stored no events")
		}
		status := map[string]int{unauth: http.StatusUnauthorized, notFound: http.StatusNotFound, forbidden: http.StatusForbidden}
		for _, caller := range callers {
			resp, body := get(caller, url.Values{})
			if want := exportAccess[caller]; want != "" {
				var out struct{ Error struct{ Code string } }
				if json.Unmarshal([]byte(body), &out); out.Error.Code != want || resp.StatusCode != status[want] {
					t.Errorf("export as %s: %d %s, want %s", caller, resp.StatusCode, body, want)
				}
				for _, marker := range append(slices.Clone(f.markersA), f.markersB...) {
					if marker != f.appA && strings.Contains(body, marker) {
						t.Errorf("export as %s: the refusal holds %q", caller, marker)
					}
				}
				continue
			}
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-ndjson" {
				t.Fatalf("export as %s: %d %s", caller, resp.StatusCode, body)
			}
			lines := strings.Split(strings.TrimSuffix(body, "\n"), "\n")
			if int64(len(lines)) != stored {
				t.Fatalf("export as %s: %d lines, want %d events", caller, len(lines), stored)
			}
			for _, l := range lines {
				var ev struct {
					ID, Code, DeviceID, OccurredAt string
					Properties                     map[string]any
				}
				if err := json.Unmarshal([]byte(l), &ev); err != nil || ev.ID == "" || ev.Code == "" || ev.Properties == nil {
					t.Fatalf("line %q: %v", l, err)
				}
			}
			for _, marker := range f.markersB {
				if strings.Contains(body, marker) {
					t.Errorf("export of app A as %s holds app B's %q", caller, marker)
				}
			}
			if resp.Trailer.Get("X-Crumbs-Receipt") == "" || resp.Trailer.Get("X-Crumbs-Events") != strconv.Itoa(len(lines)) {
				t.Errorf("export as %s: trailer %v", caller, resp.Trailer)
			}
		}

		// The lead's events, as CSV: four from its browser devices and one
		// from the fixture's Bento webhook, on the lead's server-side device.
		resp, body := get(server, url.Values{"format": {"csv"}, "email": {strings.ToUpper(markerLead)}})
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil || resp.StatusCode != http.StatusOK || len(rows) != 6 || !slices.Equal(rows[0], models.ExportColumns) {
			t.Fatalf("lead CSV: %v %d %q", err, resp.StatusCode, body)
		}
		webhookRows := 0
		for _, r := range rows[1:] {
			if r[8] == "webhook" && strings.HasPrefix(r[2], "lead-") {
				webhookRows++
			} else if r[2] != f.devA1 && r[2] != f.devA2 {
				t.Fatalf("lead CSV row %q", r)
			}
			if !json.Valid([]byte(r[7])) {
				t.Fatalf("lead CSV row %q", r)
			}
		}
		if webhookRows != 1 {
			t.Fatalf("lead CSV: %d webhook rows, want 1: %q", webhookRows, body)
		}
		// An unknown lead and an empty range export nothing; a bad format is refused.
		if _, body := get(owner, url.Values{"email": {"nobody@example.com"}}); body != "" {
			t.Fatalf("unknown lead: %q", body)
		}
		if _, body := get(owner, url.Values{"to": {"2001-01-01T00:00:00Z"}}); body != "" {
			t.Fatalf("empty range: %q", body)
		}
		if resp, body := get(owner, url.Values{"format": {"xml"}}); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "BAD_USER_INPUT") {
			t.Fatalf("bad format: %d %s", resp.StatusCode, body)
		}
		if resp, _ := get(owner, url.Values{"from": {"yesterday"}}); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad from: %d", resp.StatusCode)
		}

		// Every export left a receipt, without the email in it.
		log, err := models.AuditLog(t.Context(), db, models.Viewer{UserID: f.userIDs[owner]}, f.appA, 50, "")
		if err != nil {
			t.Fatal(err)
		}
		var exports int
		for _, r := range log.Records {
			if r.Kind == models.AuditExport {
				exports++
			}
		}
		if exports != 6 { // editor, owner, server, the lead, the unknown lead, the empty range
			t.Fatalf("%d export receipts, want 6", exports)
		}
	})
}

// A frozen store answers an export UNAVAILABLE (503, Retry-After) within
// the database timeout; no request waits on it.
func TestExportStoreFault(t *testing.T) {
	proxy, _, a, base := proxiedServer(t)
	appID, _ := a.createApp("Export faults")
	proxy.Freeze()
	defer proxy.Thaw()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/apps/"+appID+"/export", nil)
	req.Header.Set("Authorization", "Bearer "+a.ownerToken)
	resp, err := faultClient.Do(req)
	if err != nil {
		t.Fatalf("export on a frozen store: %v", err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" || !strings.Contains(string(raw), `"UNAVAILABLE"`) {
		t.Fatalf("export on a frozen store: %d %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), raw)
	}
}
