package models_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

func TestTriggerValidation(t *testing.T) {
	db := modelstest.SQLite(t)
	e := newEnv(t, db)
	future := time.Now().Add(time.Hour)
	ancient := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	hourAgo := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name  string
		in    models.TriggerInput
		field string
	}{
		{"bad code", models.TriggerInput{Code: "Not Valid"}, "code"},
		{"device too long", models.TriggerInput{Code: "view", DeviceID: strings.Repeat("d", 129)}, "deviceId"},
		{"device control chars", models.TriggerInput{Code: "view", DeviceID: "a\nb"}, "deviceId"},
		{"url too long", models.TriggerInput{Code: "view", URL: strings.Repeat("u", 2049)}, "url"},
		{"referrer too long", models.TriggerInput{Code: "view", Referrer: strings.Repeat("r", 2049)}, "referrer"},
		{"title too long", models.TriggerInput{Code: "view", Title: strings.Repeat("t", 513)}, "title"},
		{"properties too large", models.TriggerInput{Code: "view", Properties: map[string]any{"x": strings.Repeat("p", 9000)}}, "properties"},
		{"future", models.TriggerInput{Code: "view", OccurredAt: &future}, "occurredAt"},
		{"ancient", models.TriggerInput{Code: "view", OccurredAt: &ancient, Secret: e.secret}, "occurredAt"},
		{"browser backdating", models.TriggerInput{Code: "view", OccurredAt: &hourAgo}, "occurredAt"},
		{"empty messageId", models.TriggerInput{Code: "view", MessageID: ptr("")}, "messageId"},
		{"long messageId", models.TriggerInput{Code: "view", MessageID: ptr(strings.Repeat("m", 129))}, "messageId"},
		{"bad source", models.TriggerInput{Code: "view", Source: "email"}, "source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := e.trigger(tc.in)
			wantField(t, res.Err, tc.field)
			if res.Accepted {
				t.Fatal("accepted")
			}
		})
	}
	if n := e.countEvents("1 = 1"); n != 0 {
		t.Fatalf("%d events stored from refused triggers", n)
	}
	res := e.writer.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: "app_nope", DeviceID: "d", Code: "view"}})[0]
	wantCode(t, res.Err, models.CodeNotFound)
}

func TestTriggerStoresAndCounts(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		at := time.Date(2026, 3, 1, 12, 30, 0, 123e6, time.UTC)
		res := e.mustTrigger(models.TriggerInput{
			Code: "view", DeviceID: "dev-a", URL: "https://example.com/pricing?x=1", Referrer: "https://google.com/",
			Title: "Pricing", Properties: map[string]any{"plan": "pro", "n": 3.0}, OccurredAt: &at,
			Source: models.SourceShortcode, UserAgent: "Mozilla/5.0 Test", Secret: e.secret,
		})
		if res.Duplicate || res.EventID == 0 {
			t.Fatalf("result %+v", res)
		}
		var ev models.Event
		if err := db.Take(&ev, res.EventID).Error; err != nil {
			t.Fatal(err)
		}
		if ev.URL != "https://example.com/pricing?x=1" || ev.Title != "Pricing" || ev.Source != "shortcode" ||
			!ev.OccurredAt.Equal(at) || ev.Properties["plan"] != "pro" || ev.ReceivedAt.IsZero() {
			t.Fatalf("stored %+v", ev)
		}
		dev, err := models.DeviceByID(e.ctx, db, e.owner, e.app.PublicID, "dev-a")
		if err != nil || dev.UserAgent != "Mozilla/5.0 Test" || !dev.FirstSeenAt.Equal(at) || !dev.LastSeenAt.Equal(at) {
			t.Fatalf("device %+v %v", dev, err)
		}
		later := at.Add(time.Hour)
		e.mustTrigger(models.TriggerInput{Code: "click", DeviceID: "dev-a", OccurredAt: &later, Secret: e.secret})
		dev, _ = models.DeviceByID(e.ctx, db, e.owner, e.app.PublicID, "dev-a")
		if !dev.FirstSeenAt.Equal(at) || !dev.LastSeenAt.Equal(later) || dev.UserAgent != "Mozilla/5.0 Test" {
			t.Fatalf("device after second event %+v", dev)
		}
		defs, _ := models.EventDefinitions(e.ctx, db, e.app.ID, nil)
		for _, d := range defs {
			want := map[string]int64{"view": 1, "click": 1, "submit": 0}[d.Code]
			if d.TriggerCount != want {
				t.Errorf("%s trigger count = %d, want %d", d.Code, d.TriggerCount, want)
			}
		}
	})
}

func TestUnknownCodesAreRefusedAndCounted(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for range 3 {
			res := e.trigger(models.TriggerInput{Code: "trail_click"})
			wantCode(t, res.Err, models.CodeUnknownEventCode)
		}
		wantCode(t, e.trigger(models.TriggerInput{Code: "pdf"}).Err, models.CodeUnknownEventCode)
		if n := e.countEvents("1 = 1"); n != 0 {
			t.Fatalf("%d events recorded for unknown codes", n)
		}
		codes, err := models.UnknownCodes(e.ctx, db, e.app.ID, 10)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, c := range codes {
			got[c.Code] = c.Count
		}
		if len(got) != 2 || got["trail_click"] != 3 || got["pdf"] != 1 {
			t.Fatalf("unknown codes = %v", got)
		}
		// A code defined after being refused is accepted at once (the cache is invalidated).
		e.define("pdf")
		e.mustTrigger(models.TriggerInput{Code: "pdf"})
	})
}

// An unknown code marked as a typo of a defined code keeps the mark for
// everyone of the app while it goes on being counted; only a defined code
// can be named, only a code the app has seen can be marked, and only by
// editors and owners.
func TestUnknownCodeMarkedAsTypo(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.define("trial_click")
		wantCode(t, e.trigger(models.TriggerInput{Code: "trail_click"}).Err, models.CodeUnknownEventCode)
		_, err := models.MarkUnknownCodeTypo(e.ctx, db, e.owner, e.app.PublicID, "trail_click", ptr("no_such_code"))
		wantCode(t, err, models.CodeBadUserInput)
		_, err = models.MarkUnknownCodeTypo(e.ctx, db, e.owner, e.app.PublicID, "never_sent", ptr("trial_click"))
		wantCode(t, err, models.CodeNotFound)
		_, err = models.MarkUnknownCodeTypo(e.ctx, db, newUser(t, db), e.app.PublicID, "trail_click", ptr("trial_click"))
		wantCode(t, err, models.CodeNotFound) // not a member: the app is not found
		u, err := models.MarkUnknownCodeTypo(e.ctx, db, e.owner, e.app.PublicID, "trail_click", ptr("trial_click"))
		if err != nil || u.TypoOf == nil || *u.TypoOf != "trial_click" || u.Suggestion == nil || *u.Suggestion != "trial_click" || u.Count != 1 {
			t.Fatalf("marked: %+v, %v", u, err)
		}
		wantCode(t, e.trigger(models.TriggerInput{Code: "trail_click"}).Err, models.CodeUnknownEventCode)
		codes, err := models.UnknownCodes(e.ctx, db, e.app.ID, 10)
		if err != nil || len(codes) != 1 || codes[0].Count != 2 || codes[0].TypoOf == nil || *codes[0].TypoOf != "trial_click" {
			t.Fatalf("after another refusal: %+v, %v", codes, err)
		}
		if u, err = models.MarkUnknownCodeTypo(e.ctx, db, e.owner, e.app.PublicID, "trail_click", nil); err != nil || u.TypoOf != nil {
			t.Fatalf("cleared: %+v, %v", u, err)
		}
	})
}

func TestMessageIDDeduplicates(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		first := e.mustTrigger(models.TriggerInput{Code: "view", MessageID: ptr("msg-1")})
		again := e.mustTrigger(models.TriggerInput{Code: "view", MessageID: ptr("msg-1")})
		if first.Duplicate || !again.Duplicate || again.EventID != first.EventID {
			t.Fatalf("first %+v, again %+v", first, again)
		}
		// The same messageId twice within one batch, and once more: stored once.
		results := e.writer.Trigger(e.ctx, []models.TriggerInput{
			{AppPublicID: e.app.PublicID, DeviceID: "d", Code: "click", MessageID: ptr("msg-2")},
			{AppPublicID: e.app.PublicID, DeviceID: "d", Code: "click", MessageID: ptr("msg-2")},
			{AppPublicID: e.app.PublicID, DeviceID: "d", Code: "click", MessageID: ptr("msg-1")},
		})
		if results[0].Duplicate || !results[1].Duplicate || results[1].EventID != results[0].EventID ||
			!results[2].Duplicate || results[2].EventID != first.EventID {
			t.Fatalf("batch results %+v", results)
		}
		if n := e.countEvents("1 = 1"); n != 2 {
			t.Fatalf("events = %d, want 2", n)
		}
		// Message ids are per app: another app may reuse one.
		other := newEnv(t, db)
		if res := other.mustTrigger(models.TriggerInput{Code: "view", MessageID: ptr("msg-1")}); res.Duplicate {
			t.Fatal("messageId deduplicated across apps")
		}
		def, _ := models.EventDefinitions(e.ctx, db, e.app.ID, ptr(true))
		for _, d := range def {
			if d.Code == "view" && d.TriggerCount != 1 {
				t.Fatalf("duplicates counted: view trigger count %d", d.TriggerCount)
			}
		}
	})
}

// TestRepeatedMessageIDsOfAStoredEvent resends a batch holding one
// messageId many times once it is stored (a retry, or a caller sending
// junk): every copy is answered duplicate with the stored event's id, in
// one more round. The writer tried the copies one a round (each found
// stored, the next one tried), so 20 copies, as a browser may send without
// credentials, ran out of rounds and failed the request, and the group
// commit it shared with others' triggers, with INTERNAL_SERVER_ERROR.
func TestRepeatedMessageIDsOfAStoredEvent(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		batch := func() []models.TriggerResult {
			var ins []models.TriggerInput
			for i := range 40 {
				msg := "again"
				if i%2 == 1 {
					msg = fmt.Sprint("new-", i%4) // two more ids, 10 copies each
				}
				ins = append(ins, models.TriggerInput{AppPublicID: e.app.PublicID, DeviceID: "d", Code: "view",
					MessageID: ptr(msg), Secret: e.secret})
			}
			return e.writer.Trigger(e.ctx, ins)
		}
		stored := e.mustTrigger(models.TriggerInput{Code: "view", MessageID: ptr("again")})
		retries := e.writer.Stats().Retries
		first := batch()
		if n := e.writer.Stats().Retries - retries; n > 1 {
			t.Errorf("the batch took %d more rounds, want at most 1", n)
		}
		byID := map[string]uint64{"again": stored.EventID}
		for i, res := range first {
			msg := []string{"again", "new-1", "again", "new-3"}[i%4]
			if res.Err != nil || !res.Accepted {
				t.Fatalf("item %d (%s): %+v", i, msg, res)
			}
			if byID[msg] == 0 {
				byID[msg] = res.EventID
				if res.Duplicate {
					t.Errorf("item %d: the first copy of %s answered duplicate", i, msg)
				}
			} else if !res.Duplicate || res.EventID != byID[msg] {
				t.Errorf("item %d (%s): %+v, want a duplicate of event %d", i, msg, res, byID[msg])
			}
		}
		// Sent again, every copy of all three is stored already.
		for i, res := range batch() {
			msg := []string{"again", "new-1", "again", "new-3"}[i%4]
			if res.Err != nil || !res.Duplicate || res.EventID != byID[msg] {
				t.Fatalf("resent item %d (%s): %+v, want a duplicate of event %d", i, msg, res, byID[msg])
			}
		}
		if n := e.countEvents("1 = 1"); n != 3 {
			t.Fatalf("%d events stored, want 3", n)
		}
	})
}

func TestBatchAnswersPerItem(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		def := e.define("off")
		models.UpdateEventDefinition(e.ctx, db, e.owner, idOf(def), models.EventDefinitionInput{Enabled: ptr(false)})
		in := []models.TriggerInput{
			{Code: "view"}, {Code: "nope"}, {Code: "off"}, {Code: "BAD"}, {Code: "click", URL: strings.Repeat("u", 3000)}, {Code: "submit"},
		}
		for i := range in {
			in[i].AppPublicID, in[i].DeviceID = e.app.PublicID, "dev"
		}
		res := e.writer.Trigger(e.ctx, in)
		if !res[0].Accepted || !res[5].Accepted {
			t.Fatalf("good items refused: %+v", res)
		}
		wantCode(t, res[1].Err, models.CodeUnknownEventCode)
		wantCode(t, res[2].Err, models.CodeEventDisabled)
		wantField(t, res[3].Err, "code")
		wantField(t, res[4].Err, "url")
		if n := e.countEvents("1 = 1"); n != 2 {
			t.Fatalf("events = %d, want 2", n)
		}
		tooMany := make([]models.TriggerInput, models.MaxBatch+1)
		for _, r := range e.writer.Trigger(e.ctx, tooMany) {
			wantField(t, r.Err, "inputs")
		}
	})
}

func TestSecretAndOrigins(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.mustTrigger(models.TriggerInput{Code: "view", Secret: e.secret})
		wantCode(t, e.trigger(models.TriggerInput{Code: "view", Secret: "sk_wrong"}).Err, models.CodeUnauthenticated)

		_, newSecret, err := models.RotateAppSecret(e.ctx, db, e.owner, e.app.PublicID)
		if err != nil {
			t.Fatal(err)
		}
		wantCode(t, e.trigger(models.TriggerInput{Code: "view", Secret: e.secret}).Err, models.CodeUnauthenticated)
		e.mustTrigger(models.TriggerInput{Code: "view", Secret: newSecret})

		_, err = models.UpdateApp(e.ctx, db, e.owner, e.app.PublicID, models.AppInput{AllowedOrigins: []string{"https://Shop.example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		e.mustTrigger(models.TriggerInput{Code: "view", Origin: "https://shop.example.com"})
		wantCode(t, e.trigger(models.TriggerInput{Code: "view", Origin: "https://evil.example"}).Err, models.CodeForbidden)
		e.mustTrigger(models.TriggerInput{Code: "view", Origin: "https://evil.example", Secret: newSecret})

		_, err = models.UpdateApp(e.ctx, db, e.owner, e.app.PublicID, models.AppInput{AllowedOrigins: []string{"javascript:alert(1)"}})
		wantField(t, err, "allowedOrigins")
		_, err = models.UpdateApp(e.ctx, db, e.owner, e.app.PublicID, models.AppInput{Timezone: ptr("Mars/Olympus")})
		wantField(t, err, "timezone")
		app, err := models.UpdateApp(e.ctx, db, e.owner, e.app.PublicID, models.AppInput{Timezone: ptr("Europe/Amsterdam"), Name: ptr("Renamed")})
		if err != nil || app.Timezone != "Europe/Amsterdam" || app.Name != "Renamed" || len(app.AllowedOrigins) != 1 {
			t.Fatalf("update app: %v %+v", err, app)
		}
	})
}

func TestTimelinePaging(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
		var in []models.TriggerInput
		for i := range 25 {
			at := base.Add(time.Duration(i/2) * time.Minute) // pairs share a timestamp
			in = append(in, models.TriggerInput{AppPublicID: e.app.PublicID, DeviceID: "dev-p", Code: "view", OccurredAt: &at, URL: fmt.Sprint(i), Secret: e.secret})
		}
		for _, r := range e.writer.Trigger(e.ctx, in) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		dev, err := models.DeviceByID(e.ctx, db, e.owner, e.app.PublicID, "dev-p")
		if err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		var last *models.Event
		after, pages := "", 0
		for {
			page, err := models.DeviceTimeline(e.ctx, db, dev, 10, after)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, ev := range page.Events {
				if seen[ev.ID] {
					t.Fatalf("event %d on two pages", ev.ID)
				}
				seen[ev.ID] = true
				if last != nil && (ev.OccurredAt.After(last.OccurredAt) || ev.OccurredAt.Equal(last.OccurredAt) && ev.ID > last.ID) {
					t.Fatalf("not newest first: %v after %v", ev.OccurredAt, last.OccurredAt)
				}
				last = ev
			}
			if !page.HasNextPage {
				break
			}
			after = page.Events[len(page.Events)-1].Cursor()
		}
		if len(seen) != 25 || pages != 3 {
			t.Fatalf("saw %d events in %d pages, want 25 in 3", len(seen), pages)
		}
		_, err = models.DeviceTimeline(e.ctx, db, dev, 10, "garbage!")
		wantField(t, err, "after")
		_, err = models.DeviceTimeline(e.ctx, db, dev, 0, "")
		wantField(t, err, "first")
	})
}

// A batch's cap depends on who vouches for all of it: 20 for a browser, 500
// with the secret key, and Bento's 1,000 for a webhook's batch (verified by
// its ingest token, which stands in for the key). One unvouched input holds
// the whole batch to the browser's cap.
func TestBatchCaps(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		batch := func(n int, in models.TriggerInput) []models.TriggerInput {
			out := make([]models.TriggerInput, n)
			for i := range out {
				out[i] = in
				out[i].AppPublicID, out[i].DeviceID, out[i].Code = e.app.PublicID, fmt.Sprintf("cap-%d", i%7), "view"
			}
			return out
		}
		accepted := func(name string, in []models.TriggerInput) {
			t.Helper()
			for i, r := range e.writer.Trigger(e.ctx, in) {
				if !r.Accepted || r.Err != nil {
					t.Fatalf("%s: item %d: %+v", name, i, r)
				}
			}
		}
		refused := func(name string, in []models.TriggerInput) {
			t.Helper()
			for _, r := range e.writer.Trigger(e.ctx, in) {
				wantField(t, r.Err, "inputs")
			}
		}
		refused("21 from a browser", batch(models.MaxBrowserBatch+1, models.TriggerInput{}))
		accepted("21 verified", batch(models.MaxBrowserBatch+1, models.TriggerInput{Verified: true}))
		accepted("500 with the key", batch(models.MaxBatch, models.TriggerInput{Secret: e.secret}))
		refused("501 with the key", batch(models.MaxBatch+1, models.TriggerInput{Secret: e.secret}))
		accepted("1,000 verified", batch(models.MaxWebhookBatch, models.TriggerInput{Verified: true}))
		refused("1,001 verified", batch(models.MaxWebhookBatch+1, models.TriggerInput{Verified: true}))
		mixed := batch(models.MaxBrowserBatch+1, models.TriggerInput{Verified: true})
		mixed[5].Verified = false
		refused("21 verified but one", mixed)
		if n := e.countEvents("1 = 1"); n != int64(models.MaxBrowserBatch+1+models.MaxBatch+models.MaxWebhookBatch) {
			t.Fatalf("%d events stored", n)
		}
	})
}
