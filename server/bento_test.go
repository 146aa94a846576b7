package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

type createdIngestToken struct {
	CreateIngestToken struct {
		IngestToken struct{ ID, Name, Hint string }
		Token, URL  string
	}
}

// createIngestToken makes an ingest token through GraphQL, as the owner.
func createIngestToken(a *api, appID, name string) (id, token, url string) {
	a.t.Helper()
	var out createdIngestToken
	a.ok(`mutation($a: ID!, $n: String!) { createIngestToken(appId: $a, name: $n) { ingestToken { id name hint } token url } }`,
		&out, client.Var("a", appID), client.Var("n", name))
	c := out.CreateIngestToken
	return c.IngestToken.ID, c.Token, c.URL
}

// leadTimeline reads the events of the lead with email, newest first.
func leadTimeline(a *api, appID, email string) (fields map[string]any, events []timelineEvent) {
	a.t.Helper()
	var out struct {
		LeadByEmail *struct {
			Fields   map[string]any
			Timeline struct {
				Edges []struct{ Node timelineEvent }
			}
		}
	}
	a.ok(`query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) { fields timeline(first: 50) { edges { node {
		code source url title referrer properties occurredAt integration device { userAgent } lead { email } } } } } }`,
		&out, client.Var("a", appID), client.Var("e", email))
	if out.LeadByEmail == nil {
		a.t.Fatalf("no lead %s", email)
	}
	for _, e := range out.LeadByEmail.Timeline.Edges {
		events = append(events, e.Node)
	}
	return out.LeadByEmail.Fields, events
}

// Bento's own Node SDK, with its base URL set to a Crumbs webhook URL,
// records events, purchases and subscribers; they read back through
// GraphQL on each lead's timeline with source webhook and the integration.
func TestBentoNodeSDK(t *testing.T) {
	node := nodeClient(t, "@bentonow/bento-node-sdk")
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, _ := j.a.createApp("Bento")
		for _, code := range []string{"completed_onboarding", "purchase", "subscribe", "invoice_paid"} {
			j.a.ok(`mutation($a: ID!, $c: String!) { createEventDefinition(input: {appId: $a, code: $c, name: $c}) { id } }`, &map[string]any{}, client.Var("a", appID), client.Var("c", code))
		}
		_, token, url := createIngestToken(j.a, appID, "Back office")
		if !strings.HasPrefix(token, "it_") || !strings.HasSuffix(url, "/webhooks/"+token+"/generic/track") {
			t.Fatalf("token %q, url %q", token, url)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, "bento.mjs", j.srv.URL+"/webhooks/"+token+"/pos")
		cmd.Dir = clientsDir
		out, err := cmd.CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != `{"track":true,"purchase":true,"purchaseRetried":true,"otherPurchase":true,"subscribe":true,"batch":2,"imported":2}` {
			t.Fatalf("bento sdk: %v\n%s", err, out)
		}
		fields, ada := leadTimeline(j.a, appID, "ada@bento.example")
		// order-1 sent twice is stored once (details.unique.key), as Bento
		// counts it.
		if fields["company"] != "Analytical Engines" || fields["first_name"] != "Ada" || fields["plan"] != "enterprise" || len(ada) != 3 {
			t.Fatalf("ada: %v %+v", fields, ada)
		}
		for _, e := range ada {
			if e.Source != "webhook" || e.Integration == nil || *e.Integration != "pos" || e.Lead == nil {
				t.Fatalf("ada's event: %+v", e)
			}
		}
		orders := []string{}
		for _, e := range ada[:2] {
			if e.Code == "purchase" {
				orders = append(orders, fmt.Sprint(e.Properties["unique"]))
			}
		}
		if strings.Join(orders, " ") != "map[key:order-2] map[key:order-1]" || ada[2].Code != "completed_onboarding" || ada[2].Properties["step"] != 3.0 {
			t.Fatalf("ada's events: %+v", ada)
		}
		fields, grace := leadTimeline(j.a, appID, "grace@bento.example")
		codes := []string{}
		for _, e := range grace {
			codes = append(codes, e.Code)
		}
		if fields["plan"] != "team" || strings.Join(codes, " ") != "invoice_paid subscribe invoice_paid" || grace[2].OccurredAt != "2026-01-02T03:04:05Z" {
			t.Fatalf("grace: %v %v %+v", fields, codes, grace)
		}
		// An imported subscriber is a lead with fields and no event.
		if fields, linus := leadTimeline(j.a, appID, "linus@bento.example"); fields["company"] != "Kernel" || len(linus) != 0 {
			t.Fatalf("linus: %v %+v", fields, linus)
		}
		// The token is stored hashed only.
		var stored []models.IngestToken
		db.Where("hint = ?", token[:7]).Find(&stored)
		if len(stored) != 1 || stored[0].TokenHash == token || strings.Contains(stored[0].TokenHash, token[3:]) {
			t.Fatalf("stored %+v", stored)
		}
	})
}

type webhookAnswer struct {
	apiResponse
	Count  int `json:"results"`
	Failed int
	Items  []apiItem
}

func (j *jsonAPI) webhook(token, integration, body string, header ...string) webhookAnswer {
	j.t.Helper()
	loose := *j
	loose.loose = true
	r := loose.postTo("/webhooks/"+token+"/"+integration+"/track", body, header...)
	var out webhookAnswer
	json.Unmarshal([]byte(r.raw), &out)
	out.apiResponse = r
	return out
}

// Bento's documented payload: resends deduplicated by Idempotency-Key or
// each event's id, per-event refusals never a 5xx, tokens revoked at once
// here and within CRUMBS_CACHE_TTL on another replica.
func TestBentoWebhook(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db, func(c *config) { c.CacheTTL = time.Second })
		other := newJSONAPI(t, db, func(c *config) { c.CacheTTL = time.Second }) // another replica
		appID, _ := j.a.createApp("Webhooks")
		id, token, _ := createIngestToken(j.a, appID, "Zapier")

		body := `{"events":[{"type":"Signed Up","email":"Lin@Example.com","details":{"via":"zap"},"fields":{"tier":"gold"},"date":"2026-02-03T04:05:06Z"}]}`
		r := j.webhook(token, "generic", body, "Idempotency-Key", "zap-1")
		if r.status != 200 || r.Count != 0 || r.Failed != 1 || r.Items[0].Error.Code != "UNKNOWN_EVENT_CODE" {
			t.Fatalf("unknown code: %d %s", r.status, r.raw)
		}
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "signed_up", name: "Signed up"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		time.Sleep(1100 * time.Millisecond) // past the definition cache's second
		r = j.webhook(token, "generic", body, "Idempotency-Key", "zap-1")
		if r.status != 200 || r.Count != 1 || !r.Items[0].Accepted || r.Items[0].Duplicate {
			t.Fatalf("first send: %d %s", r.status, r.raw)
		}
		again := j.webhook(token, "generic", body, "Idempotency-Key", "zap-1")
		if again.status != 200 || !again.Items[0].Duplicate || *again.Items[0].EventID != *r.Items[0].EventID {
			t.Fatalf("resend: %d %s", again.status, again.raw)
		}
		withID := `{"events":[{"id":"evt-9","type":"signed_up","email":"lin@example.com"},{"id":"evt-9","type":"signed_up","email":"lin@example.com"}]}`
		r = j.webhook(token, "billing", withID)
		if r.status != 200 || !r.Items[0].Accepted || r.Items[0].Duplicate || !r.Items[1].Duplicate {
			t.Fatalf("event ids: %d %s", r.status, r.raw)
		}
		fields, events := leadTimeline(j.a, appID, "lin@example.com")
		if fields["tier"] != "gold" || len(events) != 2 || events[1].OccurredAt != "2026-02-03T04:05:06Z" || events[1].Properties["via"] != "zap" {
			t.Fatalf("lin: %v %+v", fields, events)
		}

		// Per-event refusals answer 200, with the others stored.
		r = j.webhook(token, "generic", `{"events":[{"type":"signed_up","email":"not an email"},{"type":"signed_up","email":"ok@example.com","date":"yesterday"},{"type":"!!!","email":"ok@example.com"},{"type":"signed_up","email":"ok@example.com"}]}`)
		if r.status != 200 || r.Count != 1 || r.Failed != 3 || *r.Items[0].Error.Field != "email" || *r.Items[1].Error.Field != "date" || *r.Items[2].Error.Field != "type" {
			t.Fatalf("bad events: %d %s", r.status, r.raw)
		}
		for _, c := range []struct {
			name, token, integration, body string
			status                         int
			code                           string
		}{
			{"unknown token", "it_nope", "generic", body, 401, "UNAUTHENTICATED"},
			{"a secret key", "sk_nope", "generic", body, 401, "UNAUTHENTICATED"},
			{"bad integration", token, "Bad%20Name", body, 400, "BAD_USER_INPUT"},
			{"not events", token, "generic", `{"type":"signed_up"}`, 400, "BAD_REQUEST"},
		} {
			if r := j.webhook(c.token, c.integration, c.body); r.status != c.status || r.Error == nil || r.Error.Code != c.code {
				t.Fatalf("%s: %d %s", c.name, r.status, r.raw)
			}
		}

		// Revocation: at once here; the other replica, which used the token
		// just before, within CRUMBS_CACHE_TTL.
		if r := other.webhook(token, "generic", `{"events":[{"type":"signed_up","email":"lin@example.com"}]}`); r.status != 200 {
			t.Fatalf("other replica: %d %s", r.status, r.raw)
		}
		var revoked struct {
			RevokeIngestToken struct{ RevokedAt *string }
		}
		j.a.ok(`mutation($id: ID!) { revokeIngestToken(id: $id) { revokedAt } }`, &revoked, client.Var("id", id))
		if revoked.RevokeIngestToken.RevokedAt == nil {
			t.Fatal("not revoked")
		}
		if r := j.webhook(token, "generic", body); r.status != 401 || r.Error.Code != "UNAUTHENTICATED" {
			t.Fatalf("revoked token here: %d %s", r.status, r.raw)
		}
		time.Sleep(1100 * time.Millisecond)
		if r := other.webhook(token, "generic", body); r.status != 401 {
			t.Fatalf("revoked token on the other replica after the TTL: %d %s", r.status, r.raw)
		}
		var list struct {
			IngestTokens []struct {
				Name      string
				RevokedAt *string
			}
		}
		j.a.ok(`query($a: ID!) { ingestTokens(appId: $a) { name revokedAt } }`, &list, client.Var("a", appID))
		if len(list.IngestTokens) != 1 || list.IngestTokens[0].Name != "Zapier" || list.IngestTokens[0].RevokedAt == nil {
			t.Fatalf("tokens: %+v", list.IngestTokens)
		}
	})
}

// details.unique.key (Bento's key for a purchase: an order or invoice id)
// makes a resend a duplicate, as Bento counts it once, without an id or an
// Idempotency-Key; per code, so an event of another code carrying the same
// key (a refund of the order) is stored.
func TestBentoUniqueKey(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, _ := j.a.createApp("Unique keys")
		_, token, _ := createIngestToken(j.a, appID, "Shop")
		body := `{"events":[{"type":"view","email":"u@example.com","details":{"unique":{"key":"order-7"}}},
			{"type":"click","email":"u@example.com","details":{"unique":{"key":"order-7"}}},
			{"type":"view","email":"u@example.com","details":{"unique":{"key":7}}}]}`
		first := j.webhook(token, "shop", body)
		resend := j.webhook(token, "shop", body)
		if first.status != 200 || first.Count != 3 || first.Items[0].Duplicate || first.Items[1].Duplicate || first.Items[2].Duplicate {
			t.Fatalf("first: %d %s", first.status, first.raw)
		}
		if resend.status != 200 || resend.Count != 3 || !resend.Items[0].Duplicate || !resend.Items[1].Duplicate || !resend.Items[2].Duplicate {
			t.Fatalf("resend: %d %s", resend.status, resend.raw)
		}
		if _, events := leadTimeline(j.a, appID, "u@example.com"); len(events) != 3 {
			t.Fatalf("stored %d events, want 3: %+v", len(events), events)
		}
	})
}

// An Idempotency-Key dedupes a resend of the same events; a resend of only
// the events refused the first time, under the same key, stores them
// rather than answering them duplicates of the events that were first at
// their positions (acknowledged and lost).
func TestBentoIdempotencyKeyPartialResend(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, _ := j.a.createApp("Idempotency keys")
		_, token, _ := createIngestToken(j.a, appID, "Billing")
		paid := `{"type":"view","email":"k@example.com","details":{"invoice":"inv-1"}}`
		refunded := `{"type":"refunded","email":"k@example.com","details":{"invoice":"inv-0"}}`
		first := j.webhook(token, "billing", `{"events":[`+paid+`,`+refunded+`]}`, "Idempotency-Key", "run-7")
		if first.status != 200 || first.Count != 1 || first.Items[1].Error == nil || first.Items[1].Error.Code != "UNKNOWN_EVENT_CODE" {
			t.Fatalf("first: %d %s", first.status, first.raw)
		}
		j.a.ok(`mutation($a: ID!) { createEventDefinition(input: {appId: $a, code: "refunded", name: "Refunded"}) { id } }`, &map[string]any{}, client.Var("a", appID))
		// The sender resends what was refused, under the run's key.
		again := j.webhook(token, "billing", `{"events":[`+refunded+`]}`, "Idempotency-Key", "run-7")
		if again.status != 200 || again.Count != 1 || again.Items[0].Duplicate {
			t.Fatalf("the refused event resent alone: %d %s", again.status, again.raw)
		}
		// And the whole request again: both are duplicates now.
		whole := j.webhook(token, "billing", `{"events":[`+paid+`,`+refunded+`]}`, "Idempotency-Key", "run-7")
		if whole.status != 200 || whole.Count != 2 || !whole.Items[0].Duplicate || !whole.Items[1].Duplicate {
			t.Fatalf("the whole request again: %d %s", whole.status, whole.raw)
		}
		// Two identical events of one request are two events, once each.
		twice := `{"events":[{"type":"click","email":"k@example.com"},{"type":"click","email":"k@example.com"}]}`
		for i, want := range []bool{false, true} {
			r := j.webhook(token, "billing", twice, "Idempotency-Key", "run-8")
			if r.status != 200 || r.Count != 2 || r.Items[0].Duplicate != want || r.Items[1].Duplicate != want {
				t.Fatalf("identical events, send %d: %d %s", i+1, r.status, r.raw)
			}
		}
		_, events := leadTimeline(j.a, appID, "k@example.com")
		codes := []string{}
		for _, e := range events {
			codes = append(codes, e.Code)
		}
		if strings.Join(codes, " ") != "click click refunded view" {
			t.Fatalf("stored %v", codes)
		}
	})
}

// A webhook takes up to 1,000 events a request (Bento's limit), however
// many leads they name: its ingest token counts as the secret key, so the
// browser's cap of 20 does not apply. One more refuses the whole request.
func TestBentoWebhookBatchSizes(t *testing.T) {
	batch := func(n int) string {
		events := make([]string, n)
		for i := range events {
			events[i] = fmt.Sprintf(`{"type":"view","email":"lead%d@example.com","id":"b-%d"}`, i%3, i)
		}
		return `{"events":[` + strings.Join(events, ",") + `]}`
	}
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, _ := j.a.createApp("Webhook batches")
		_, token, _ := createIngestToken(j.a, appID, "Batches")
		for _, n := range []int{21, 1000} {
			r := j.webhook(token, "generic", batch(n))
			if r.status != 200 || r.Count != n || r.Failed != 0 || len(r.Items) != n {
				t.Fatalf("%d events: %d %.300s", n, r.status, r.raw)
			}
		}
		var stored int64
		db.Model(&models.Event{}).Joins("JOIN apps ON apps.id = events.app_id").Where("apps.public_id = ?", appID).Count(&stored)
		if stored != 1000 { // the 1,000 resend the 21 by their ids
			t.Fatalf("%d events stored, want 1000", stored)
		}
		r := j.webhook(token, "generic", batch(1001))
		var body struct {
			Error struct{ Code, Field string }
		}
		json.Unmarshal([]byte(r.raw), &body)
		if r.status != 400 || body.Error.Code != "BAD_USER_INPUT" || body.Error.Field != "events" {
			t.Fatalf("1,001 events: %d %.300s", r.status, r.raw)
		}
	})
}

// A webhook event that is refused writes nothing: no lead is created for
// it, and its fields are not merged into an existing lead, whatever refused
// it (an unknown or disabled code, a bad field of the event or of its lead).
// The other events of the batch are stored, and the unknown code is still
// counted for the inbox.
func TestBentoWebhookRefusalsWriteNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, _ := j.a.createApp("Webhook refusals")
		var defs [2]struct{ CreateEventDefinition struct{ ID string } }
		for i, code := range []string{"signed_up", "paused"} {
			j.a.ok(`mutation($a: ID!, $c: String!) { createEventDefinition(input: {appId: $a, code: $c, name: $c}) { id } }`, &defs[i], client.Var("a", appID), client.Var("c", code))
		}
		j.a.ok(`mutation($id: ID!) { updateEventDefinition(id: $id, input: {enabled: false}) { id } }`, &map[string]any{}, client.Var("id", defs[1].CreateEventDefinition.ID))
		_, token, _ := createIngestToken(j.a, appID, "Refusals")
		if r := j.webhook(token, "generic", `{"events":[{"type":"signed_up","email":"ok@example.com","fields":{"plan":"pro"}}]}`); r.status != 200 || r.Count != 1 {
			t.Fatalf("first event: %d %s", r.status, r.raw)
		}

		r := j.webhook(token, "generic", `{"events":[
			{"type":"nope","email":"ghost@example.com","fields":{"x":1}},
			{"type":"paused","email":"off@example.com","fields":{"x":1}},
			{"type":"signed_up","email":"ok@example.com","fields":{"plan":"evil"},"details":[1]},
			{"type":"nope","email":"ok@example.com","fields":{"plan":"evil"}},
			{"type":"signed_up","email":"ada@example.com","fields":{"a":1}},
			{"type":"signed_up","email":"ada@example.com","fields":{"b\u0001":1}},
			{"type":"signed_up","email":"bob@example.com","date":"1999-01-01T00:00:00Z","fields":{"x":1}}]}`)
		want := []string{"UNKNOWN_EVENT_CODE", "EVENT_DISABLED", "BAD_USER_INPUT", "UNKNOWN_EVENT_CODE", "", "BAD_USER_INPUT", "BAD_USER_INPUT"}
		if r.status != 200 || len(r.Items) != len(want) {
			t.Fatalf("batch: %d %s", r.status, r.raw)
		}
		if r.Count != 1 || r.Failed != len(want)-1 {
			t.Errorf("batch: %d accepted, %d failed", r.Count, r.Failed)
		}
		for i, code := range want {
			if got := r.Items[i]; code == "" && (got.Error != nil || !got.Accepted) || code != "" && (got.Error == nil || got.Error.Code != code) {
				t.Errorf("item %d: %+v, want %q", i, got, code)
			}
		}
		if f := r.Items[5].Error; f == nil || f.Field == nil || *f.Field != "fields" {
			t.Errorf("ada's bad fields: %s", r.raw)
		}

		for _, email := range []string{"ghost@example.com", "off@example.com", "bob@example.com"} {
			var out struct{ LeadByEmail *struct{ ID string } }
			j.a.ok(`query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) { id } }`, &out, client.Var("a", appID), client.Var("e", email))
			if out.LeadByEmail != nil {
				t.Errorf("a refused event created the lead %s", email)
			}
		}
		if fields, events := leadTimeline(j.a, appID, "ok@example.com"); fields["plan"] != "pro" || len(events) != 1 {
			t.Errorf("ok@: refused events merged their fields or were stored: %v %+v", fields, events)
		}
		if fields, events := leadTimeline(j.a, appID, "ada@example.com"); len(fields) != 1 || fields["a"] != 1.0 || len(events) != 1 {
			t.Errorf("ada: %v %+v", fields, events)
		}
		var devices, unknown int64
		db.Table("devices").Joins("JOIN apps ON apps.id = devices.app_id").Where("apps.public_id = ?", appID).Count(&devices)
		if devices != 2 {
			t.Errorf("%d devices, want ok@'s and ada's", devices)
		}
		db.Table("unknown_codes").Joins("JOIN apps ON apps.id = unknown_codes.app_id").Where("apps.public_id = ? AND code = ?", appID, "nope").Select("count").Scan(&unknown)
		if unknown != 2 {
			t.Errorf("unknown code counted %d times, want 2", unknown)
		}
	})
}

// Bento's subscriber import: each subscriber is checked and answered on
// its own, a refused one writes nothing, one whose fields would grow too
// large is refused without failing the others, tags are refused (Crumbs
// keeps none), and an import sent again changes nothing more.
func TestBentoImportSubscribers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		j := newJSONAPI(t, db)
		appID, _ := j.a.createApp("Subscriber import")
		_, token, _ := createIngestToken(j.a, appID, "Import")
		loose := *j
		loose.loose = true
		post := func(body string) webhookAnswer {
			t.Helper()
			r := loose.postTo("/webhooks/"+token+"/import/batch/subscribers", body)
			var out webhookAnswer
			json.Unmarshal([]byte(r.raw), &out)
			out.apiResponse = r
			return out
		}
		big := strings.Repeat("x", 2000)
		body := `{"subscribers":[
			{"email":"ada@example.com","first_name":"Ada","plan":"pro"},
			{"email":"not an address","plan":"pro"},
			{"plan":"pro"},
			{"email":"tags@example.com","tags":"vip,beta"},
			{"email":"ADA@example.com","plan":"team","seats":3},
			[1],
			{"email":"big@example.com","a1":"` + big + `","a2":"` + big + `","a3":"` + big + `"},
			{"email":"big@example.com","b1":"` + big + `","b2":"` + big + `"},
			{"email":"bad@example.com","x":{"y\u0001":1}}]}`
		want := []string{"", "BAD_USER_INPUT", "BAD_USER_INPUT", "BAD_USER_INPUT", "", "BAD_USER_INPUT", "", "BAD_USER_INPUT", "BAD_USER_INPUT"}
		for round := range 2 {
			r := post(body)
			if r.status != 200 || len(r.Items) != len(want) {
				t.Fatalf("import: %d %s", r.status, r.raw)
			}
			if r.Count != 3 || r.Failed != len(want)-3 {
				t.Errorf("round %d: %d accepted, %d failed", round, r.Count, r.Failed)
			}
			for i, code := range want {
				if got := r.Items[i]; code == "" && (got.Error != nil || !got.Accepted) || code != "" && (got.Error == nil || got.Error.Code != code || got.Accepted) {
					t.Errorf("round %d, subscriber %d: %+v, want %q", round, i, got, code)
				}
			}
			if f := r.Items[3].Error; f == nil || f.Field == nil || *f.Field != "tags" {
				t.Errorf("tags: %s", r.raw)
			}
			fields, events := leadTimeline(j.a, appID, "ada@example.com")
			if len(fields) != 3 || fields["first_name"] != "Ada" || fields["plan"] != "team" || fields["seats"] != 3.0 || len(events) != 0 {
				t.Errorf("round %d: ada %v %+v", round, fields, events)
			}
			if fields, _ := leadTimeline(j.a, appID, "big@example.com"); len(fields) != 3 || fields["a3"] != big {
				t.Errorf("round %d: big@ has the fields %d", round, len(fields))
			}
		}
		for _, email := range []string{"tags@example.com", "bad@example.com"} {
			var out struct{ LeadByEmail *struct{ ID string } }
			j.a.ok(`query($a: ID!, $e: String!) { leadByEmail(appId: $a, email: $e) { id } }`, &out, client.Var("a", appID), client.Var("e", email))
			if out.LeadByEmail != nil {
				t.Errorf("a refused subscriber created the lead %s", email)
			}
		}
		var events int64
		db.Table("events").Joins("JOIN apps ON apps.id = events.app_id").Where("apps.public_id = ?", appID).Count(&events)
		if events != 0 {
			t.Errorf("the import stored %d events", events)
		}
		if r := post(`{"subscribers":[{"email":"a@example.com"}]}`); r.status != 200 || r.Count != 1 {
			t.Errorf("one subscriber without fields: %d %s", r.status, r.raw)
		}
		if r := post(`{"events":[]}`); r.status != 400 {
			t.Errorf("no subscribers: %d %s", r.status, r.raw)
		}
		if r := loose.postTo("/webhooks/it_wrong/import/batch/subscribers", `{"subscribers":[{"email":"a@example.com"}]}`); r.status != 401 {
			t.Errorf("a wrong token: %d %s", r.status, r.raw)
		}
	})
}
