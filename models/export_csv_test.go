package models_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// TestCSVExportRunsNoFormulas: text any visitor may send that a spreadsheet
// would run as a formula (=, +, -, @, a tab, a carriage return first) is
// exported to CSV with a leading ', so an owner who opens the export does
// not run a browser's =HYPERLINK(…); NDJSON keeps every value as sent.
func TestCSVExportRunsNoFormulas(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		sent := models.TriggerInput{Code: "view", DeviceID: "-2+3", MessageID: ptr("@SUM(A1:A9)"),
			URL: `=HYPERLINK("https://evil.example","Open")`, Referrer: "+1-555", Title: "\tTab"}
		e.mustTrigger(sent)
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "plain", URL: "https://site.example/=x", Title: "a=b"})
		export := func(format string) string {
			x, err := models.PrepareExport(e.ctx, db, e.owner, e.app.PublicID, models.ExportFilter{}, format)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if _, err := x.Run(e.ctx, &b, nil); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
		rows, err := csv.NewReader(strings.NewReader(export(models.ExportCSV))).ReadAll()
		if err != nil || len(rows) != 3 {
			t.Fatalf("CSV: %v, %d rows", err, len(rows))
		}
		want := [][]string{
			{"'-2+3", "'@SUM(A1:A9)", `'=HYPERLINK("https://evil.example","Open")`, "'+1-555", "'\tTab"},
			{"plain", "", "https://site.example/=x", "", "a=b"},
		}
		for i, row := range rows[1:] {
			if got := []string{row[2], row[3], row[4], row[5], row[6]}; strings.Join(got, "|") != strings.Join(want[i], "|") {
				t.Errorf("CSV row %d: %q, want %q", i, got, want[i])
			}
		}
		var first struct {
			DeviceID  string  `json:"device_id"`
			MessageID *string `json:"message_id"`
			URL       string  `json:"url"`
			Referrer  string  `json:"referrer"`
			Title     string  `json:"title"`
		}
		line, _, _ := strings.Cut(export(models.ExportNDJSON), "\n")
		if err := json.Unmarshal([]byte(line), &first); err != nil {
			t.Fatal(err)
		}
		if first.DeviceID != sent.DeviceID || *first.MessageID != *sent.MessageID || first.URL != sent.URL ||
			first.Referrer != sent.Referrer || first.Title != sent.Title {
			t.Errorf("NDJSON changed what was sent: %+v", first)
		}
	})
}
