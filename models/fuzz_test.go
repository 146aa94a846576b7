package models_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The fuzz targets below run their committed seed corpora
// (testdata/fuzz/<target>/, one hostile input per file, named for what it
// tries) as part of go test, on both stores; `go test -fuzz FuzzRules
// ./models` explores further (add what it finds to the corpus). Each asserts
// the API's contract: any input is answered with a result or with a refusal
// of a known kind, never a store error or a panic, and what is accepted
// reads back.

// fuzzStore is one store with an app, a device with varied events and a writer.
type fuzzStore struct {
	name   string
	db     *gorm.DB
	app    *models.App
	secret string
	device *models.Device
	writer *models.Writer
}

// fuzzStores prepares SQLite and, when configured (always under CI=true),
// MySQL for a fuzz target.
func fuzzStores(f *testing.F) []*fuzzStore {
	dbs := map[string]*gorm.DB{"sqlite": modelstest.SQLite(f)}
	if os.Getenv("CRUMBS_TEST_MYSQL_DSN") != "" || os.Getenv("CI") == "true" {
		dbs["mysql"] = modelstest.MySQL(f)
	}
	var stores []*fuzzStore
	for _, name := range []string{"sqlite", "mysql"} {
		db := dbs[name]
		if db == nil {
			continue
		}
		ctx := context.Background()
		owner := newUser(f, db)
		app, secret, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: ptr("Fuzz " + f.Name())})
		if err != nil {
			f.Fatal(err)
		}
		w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{})
		f.Cleanup(w.Close)
		s := &fuzzStore{name: name, db: db, app: app, secret: secret, writer: w}
		for i, props := range []map[string]any{
			{"n": 5.0, "plan": "pro"}, {"n": "12abc", "flag": true}, {"n": nil, "deep": map[string]any{"a": []any{1.0, "x"}}},
			{"n": -1e300, "2fa": false}, {},
		} {
			at := time.Now().Add(-time.Duration(i) * time.Minute)
			res := w.Trigger(ctx, []models.TriggerInput{{AppPublicID: app.PublicID, DeviceID: "fuzz-device", Code: []string{"view", "click"}[i%2],
				URL: "https://example.com/p?" + fmt.Sprint(i), Properties: props, OccurredAt: &at, Secret: secret}})[0]
			if res.Err != nil {
				f.Fatal(res.Err)
			}
		}
		// And one row the limits would refuse today, stored by hand.
		if err := db.Exec("UPDATE events SET properties = ? WHERE app_id = ? AND properties = ?", `{"n":1e309}`, app.ID, "{}").Error; err != nil {
			f.Fatal(err)
		}
		if s.device, err = models.DeviceByID(ctx, db, owner, app.PublicID, "fuzz-device"); err != nil {
			f.Fatal(err)
		}
		stores = append(stores, s)
	}
	return stores
}

// knownRefusal fails t unless err is nil or one of the public kinds.
func knownRefusal(t *testing.T, store, what string, err error) {
	t.Helper()
	if code, _ := models.Code(err); err != nil && code == models.CodeInternal {
		t.Fatalf("%s: %s answered an internal error: %v", store, what, err)
	}
}

func FuzzRules(f *testing.F) {
	stores := fuzzStores(f)
	f.Fuzz(func(t *testing.T, field, op, value string, anyOf bool) {
		rules := []models.Rule{{Field: field, Operator: op, Value: value}, {Field: "code", Operator: "exists"}}
		for _, s := range stores {
			ctx := context.Background()
			page, err := models.BrowseEvents(ctx, s.db, s.app, models.BrowseInput{Rules: rules, Any: anyOf, First: 10})
			knownRefusal(t, s.name, "browse", err)
			if err == nil && len(page.Events) > 10 {
				t.Fatalf("%s: %d events on a page of 10", s.name, len(page.Events))
			}
			rng := models.RangeInput{From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour)}
			_, err = models.Funnel(ctx, s.db, s.app, models.FunnelInput{Range: rng, Window: time.Hour, Steps: []models.Matcher{
				{Code: "view", Rules: rules[:1]}, {Code: "click"},
			}})
			knownRefusal(t, s.name, "funnel", err)
		}
	})
}

func TestRuleValuesMustBeDecimalNumbers(t *testing.T) {
	db := modelstest.SQLite(t)
	e := newEnv(t, db)
	for _, v := range []string{"NaN", "nan", "Inf", "+Inf", "-infinity", "1e309", "0x10", "1_000", " 5", "5 ", "", "1e", "--1"} {
		_, err := models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 5, Rules: []models.Rule{{Field: "properties.n", Operator: models.OpGreaterThan, Value: v}}})
		wantField(t, err, "rules.0.value")
	}
	for _, v := range []string{"5", "-5", "+5", "5.", ".5", "-1.5e3", "1E-400", "1.7976931348623157e308"} {
		if _, err := models.BrowseEvents(e.ctx, db, e.app, models.BrowseInput{First: 5, Rules: []models.Rule{{Field: "properties.n", Operator: models.OpLessThan, Value: v}}}); err != nil {
			t.Fatalf("%q: %v", v, err)
		}
	}
}

func cursorOf(ms int64, id string) string {
	return base64.RawURLEncoding.EncodeToString(fmt.Appendf(nil, "%d:%s", ms, id))
}

func FuzzEventCursor(f *testing.F) {
	stores := fuzzStores(f)
	f.Fuzz(func(t *testing.T, cursor string) {
		for _, s := range stores {
			ctx := context.Background()
			_, err := models.DeviceTimeline(ctx, s.db, s.device, 3, cursor)
			knownRefusal(t, s.name, "device timeline", err)
			_, err = models.BrowseEvents(ctx, s.db, s.app, models.BrowseInput{First: 3, After: cursor})
			knownRefusal(t, s.name, "browse", err)
		}
	})
}

func TestCursorsOutOfRangeAreRefused(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.mustTrigger(models.TriggerInput{Code: "view"})
		device, err := models.DeviceByID(e.ctx, db, e.owner, e.app.PublicID, "device-1")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []string{
			cursorOf(999_999_999_999_999, "5"),  // year 31,690
			cursorOf(-99_999_999_999_999, "5"),  // 1,200 BC
			cursorOf(253_402_300_800_000, "1"),  // 10000-01-01
			cursorOf(-30_610_224_000_001, "1"),  // just before the year 1000
			cursorOf(1_700_000_000_000, "-1"),   // a negative id
			cursorOf(1_700_000_000_000, "0x1f"), // not decimal
		} {
			_, err := models.DeviceTimeline(e.ctx, db, device, 5, c)
			wantField(t, err, "after")
		}
		page, err := models.DeviceTimeline(e.ctx, db, device, 5, cursorOf(253_402_300_799_999, "1"))
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("the last cursor of 9999: %v", err)
		}
	})
}

func FuzzTriggerInput(f *testing.F) {
	stores := fuzzStores(f)
	f.Fuzz(func(t *testing.T, appID, deviceID, code, url, title string, props []byte, messageID, source string, ms int64, withSecret bool) {
		var properties any
		if len(props) > 0 {
			dec := json.NewDecoder(bytes.NewReader(props))
			dec.UseNumber()
			if dec.Decode(&properties) != nil {
				return // not JSON: the transport refuses it before the models see it
			}
		}
		for _, s := range stores {
			in := models.TriggerInput{AppPublicID: appID, DeviceID: deviceID, Code: code, URL: url, Title: title,
				Properties: properties, Source: source, Origin: "https://site.example"}
			if in.AppPublicID == "" {
				in.AppPublicID = s.app.PublicID
			}
			if messageID != "" {
				in.MessageID = &messageID
			}
			if ms != 0 {
				at := time.UnixMilli(ms)
				in.OccurredAt = &at
			}
			if withSecret {
				in.Secret = s.secret
			}
			res := s.writer.Trigger(context.Background(), []models.TriggerInput{in})[0]
			knownRefusal(t, s.name, "trigger", res.Err)
			if !res.Accepted {
				continue
			}
			var ev models.Event
			if err := s.db.Take(&ev, res.EventID).Error; err != nil {
				t.Fatalf("%s: the accepted event %d does not read back: %v", s.name, res.EventID, err)
			}
			// A duplicate answers with the event stored first, maybe of another device.
			key := models.DeviceKey{AppID: s.app.ID, DeviceID: ev.DeviceID}
			if !res.Duplicate && ev.DeviceID != deviceID {
				t.Fatalf("%s: stored device %q, sent %q", s.name, ev.DeviceID, deviceID)
			}
			device, err := models.DevicesByKey(context.Background(), s.db, []models.DeviceKey{key})
			if err != nil || device[key] == nil {
				t.Fatalf("%s: device %q of an accepted event: %v", s.name, ev.DeviceID, err)
			}
			if _, err := models.DeviceTimeline(context.Background(), s.db, device[key], 1, ev.Cursor()); err != nil {
				t.Fatalf("%s: paging after the accepted event: %v", s.name, err)
			}
			_, err = models.BrowseEvents(context.Background(), s.db, s.app, models.BrowseInput{First: 1, Rules: []models.Rule{
				{Field: "properties.n", Operator: models.OpGreaterThan, Value: "0"},
			}})
			if err != nil {
				t.Fatalf("%s: a property rule over the stored events: %v", s.name, err)
			}
		}
	})
}
