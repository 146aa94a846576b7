package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// erasee is a person with everything Crumbs can store about them: two
// devices (one moved from another lead), events with URLs, referrers,
// titles and properties, a lead with a name and fields, and webhook
// deliveries whose receiver's answers quote them.
type erasee struct {
	email   string
	devices []string
	leadID  string
	events  []string
	// needles are strings that are the person's and must be gone from
	// every table after the erasure; ids are the lead's and the events'
	// ids, which must be too.
	needles []string
	ids     map[string][]string
}

// seedErasee stores the person of tag through the API, with a neighbour
// (other@…) who shares a device with them for a while and must stay.
func seedErasee(t *testing.T, x *automationApp, secret, tag string, at time.Time) *erasee {
	t.Helper()
	a := x.a
	p := &erasee{email: "Erasee." + tag + "@Example.com", devices: []string{"erasee-dev-" + tag + "-1", "erasee-dev-" + tag + "-2"}}
	p.needles = append(p.needles, strings.ToLower(p.email), p.email, p.devices[0], p.devices[1],
		"erasee-path-"+tag, "erasee-query-"+tag, "erasee-referrer-"+tag, "erasee-title-"+tag, "erasee-prop-"+tag,
		"erasee-name-"+tag, "erasee-field-"+tag)
	for i, d := range p.devices {
		var out struct{ Trigger struct{ EventID string } }
		a.ok(`mutation($a: ID!, $d: String!, $u: String!, $r: String!, $ti: String!, $p: JSON!, $m: String!, $at: Time!) {
			trigger(input: {appId: $a, deviceId: $d, code: "signup", url: $u, referrer: $r, title: $ti, properties: $p, messageId: $m, occurredAt: $at}) { eventId } }`,
			&out, client.Var("a", x.app), client.Var("d", d),
			client.Var("u", "https://shop.example.com/account/erasee-path-"+tag+"?token=erasee-query-"+tag),
			client.Var("r", "https://erasee-referrer-"+tag+".example.org/"), client.Var("ti", "erasee-title-"+tag),
			client.Var("p", map[string]any{"plan": "erasee-prop-" + tag}), client.Var("m", fmt.Sprintf("msg-%s-%d", tag, i)),
			client.Var("at", at.Add(time.Duration(i)*time.Minute)), as(secret))
		if out.Trigger.EventID == "" {
			t.Fatal("trigger stored nothing")
		}
		p.events = append(p.events, out.Trigger.EventID)
	}
	identify := func(device, email, name, field string) string {
		var out struct {
			Identify struct{ Lead struct{ ID string } }
		}
		a.ok(`mutation($a: ID!, $d: String!, $e: String!, $n: String!, $f: Map!) {
			identify(input: {appId: $a, deviceId: $d, email: $e, name: $n, fields: $f}) { lead { id } } }`, &out,
			client.Var("a", x.app), client.Var("d", device), client.Var("e", email), client.Var("n", name),
			client.Var("f", map[string]any{"company": field}), as(secret))
		return out.Identify.Lead.ID
	}
	// The second device was two neighbours' before: its moves name them.
	identify(p.devices[1], "other-"+tag+"@example.com", "Other", "Other Inc")
	identify(p.devices[1], "third-"+tag+"@example.com", "Third", "Third Inc")
	p.leadID = identify(p.devices[0], p.email, "erasee-name-"+tag, "erasee-field-"+tag)
	identify(p.devices[1], p.email, "erasee-name-"+tag, "erasee-field-"+tag)
	p.ids = map[string][]string{"lead": {p.leadID}, "event": p.events}
	a.settle()
	return p
}

// echoingReceiver answers every delivery 422 quoting the person it names,
// as a CRM's "contact … not found" does: the error texts of the delivery
// log then hold the person's email and device.
func echoingReceiver(t *testing.T, needles ...string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var quoted []string
		for _, n := range needles {
			if strings.Contains(strings.ToLower(string(body)), strings.ToLower(n)) {
				quoted = append(quoted, n)
			}
		}
		w.WriteHeader(http.StatusUnprocessableEntity)
		fmt.Fprintf(w, "no contact %s", strings.Join(quoted, " "))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// scanTables reads every row of every table of the store (listed from the
// database itself, not from the models) and returns where any needle (a
// substring) or id occurs, as "table.column: value", except the cells
// allowed keeps. ids["lead"] are looked for in the leads' id and any
// column naming a lead (lead_id, from_lead_id, ...), ids["event"] (long
// and unique) in any column.
func scanTables(t *testing.T, db *gorm.DB, needles []string, ids map[string][]string, allowed func(table, column, value string) bool) []string {
	t.Helper()
	tables, err := db.Migrator().GetTables()
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) < 20 {
		t.Fatalf("the store lists only tables %v", tables)
	}
	var found []string
	for _, table := range tables {
		var rows []map[string]any
		if err := db.Table(table).Find(&rows).Error; err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		for _, row := range rows {
			for column, v := range row {
				var s string
				switch v := v.(type) {
				case nil:
					continue
				case []byte:
					s = string(v)
				default:
					s = fmt.Sprint(v)
				}
				hit := false
				for _, n := range needles {
					hit = hit || strings.Contains(strings.ToLower(s), strings.ToLower(n))
				}
				for _, id := range ids["event"] {
					hit = hit || strings.Contains(s, id)
				}
				if strings.HasSuffix(column, "lead_id") || table == "leads" && column == "id" {
					hit = hit || slices.Contains(ids["lead"], s)
				}
				if hit && !allowed(table, column, s) {
					found = append(found, table+"."+column+": "+truncateForLog(s))
				}
			}
		}
	}
	sort.Strings(found)
	return found
}

func truncateForLog(s string) string {
	if len(s) > 160 {
		return s[:160] + "…"
	}
	return s
}

// tablesOf lists the tables of the "table.column: value" findings.
func tablesOf(found []string) map[string]bool {
	out := map[string]bool{}
	for _, f := range found {
		table, _, _ := strings.Cut(f, ".")
		out[table] = true
	}
	return out
}

// After eraseLead of a person with devices, a device move, events with
// URLs, referrers, titles and properties, webhook deliveries (retried,
// replayed, their error texts quoting the person), a rule tried on them
// and a test delivery, no table of the store holds the person's email,
// device ids, lead id, event ids or any value of their events, except
// what the README names: the tombstones of their messageIds, the lead id
// in the erasure's record (30 days), and the event log's watermarks. A
// neighbour's data stays, and the scan finds the person's data before the
// erasure (so it can fail).
func TestEraseLeadLeavesNothingInAnyTable(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a, x, secret, tag := erasureApp(t, db, "Erasure scan")
		recv := echoingReceiver(t, "Erasee."+tag+"@Example.com", "erasee-dev-"+tag+"-1", "erasee-dev-"+tag+"-2")
		ruleID, _ := x.rule("Quote", recv.URL+"/crm")
		p := seedErasee(t, x, secret, tag, time.Now().Add(-time.Hour))
		keep := seedErasee(t, x, secret, "k"+tag, time.Now().Add(-time.Hour))

		rng := map[string]any{"from": time.Now().Add(-2 * time.Hour), "to": time.Now().Add(time.Minute)}
		var tried struct{ TestRule struct{ Matched int } }
		a.ok(`query($a: ID!, $r: RangeInput!) { testRule(appId: $a, input: {matcher: "Signups"}, range: $r) { matched } }`, &tried,
			client.Var("a", x.app), client.Var("r", rng))
		if tried.TestRule.Matched != 4 {
			t.Fatalf("testRule matched %d, want 4", tried.TestRule.Matched)
		}
		a.ok(`mutation($a: ID!, $r: ID!, $range: RangeInput!) { replayRule(appId: $a, ruleId: $r, range: $range) { __typename } }`,
			&map[string]any{}, client.Var("a", x.app), client.Var("r", fmt.Sprint(ruleID)), client.Var("range", rng))
		waitAttempts(t, db, x.appID, 8)
		a.settle()

		allowed := func(table, column, value string) bool {
			switch table + "." + column {
			case "erased_messages.message_id", // tombstones (ids only, 30 days)
				"erase_jobs.lead_id",           // the erasure's record (30 days)
				"event_log_consumers.position", // a watermark, not a reference
				"event_log_slots.sealed_id":    // likewise
				return true
			}
			return false
		}
		before := scanTables(t, db, p.needles, p.ids, allowed)
		for _, table := range []string{"events", "devices", "device_moves", "leads", "automation_deliveries", "automation_attempts"} {
			if !tablesOf(before)[table] {
				t.Fatalf("before the erasure the scan finds nothing of the person in %s; found %v", table, before)
			}
		}

		var out struct{ EraseLead erasePayload }
		a.ok(`mutation($a: ID!, $e: String!) { eraseLead(appId: $a, email: $e) `+erasePayloadFields+` }`, &out,
			client.Var("a", x.app), client.Var("e", p.email))
		if !out.EraseLead.Done || out.EraseLead.DeletedEvents != 2 || out.EraseLead.DeletedDevices != 2 {
			t.Fatalf("eraseLead answered %+v", out.EraseLead)
		}
		a.settle()
		if left := scanTables(t, db, p.needles, p.ids, allowed); len(left) > 0 {
			t.Errorf("after eraseLead the store still holds the person:\n%s", strings.Join(left, "\n"))
		}
		kept := scanTables(t, db, keep.needles, keep.ids, allowed)
		for _, table := range []string{"events", "devices", "leads", "automation_deliveries"} {
			if !tablesOf(kept)[table] {
				t.Errorf("the neighbour's %s went with the person: %v", table, kept)
			}
		}
	})
}

// waitAttempts waits until the app's delivery log holds at least n attempts.
func waitAttempts(t *testing.T, db *gorm.DB, appID uint64, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var got int64
		if err := db.Model(&models.DeliveryAttempt{}).Where("app_id = ?", appID).Count(&got).Error; err != nil {
			t.Fatal(err)
		}
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d attempts after 30s, want %d", got, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// An event committed just before an erasure and derived by the
// automations consumer just after must not come back: here the consumer
// has read the person's event and is sending its webhook when the lead is
// erased; the receiver then answers quoting the person. Nothing of the
// delivery may be recorded (before, the consumer's transaction inserted
// the delivery of the erased event with the receiver's answer, email
// included, after the erasure had deleted its deliveries). A consumer
// that reads the event before the erasure and prepares it after goes
// through the same check (recordFirstAttempts); it would have recorded
// the delivery pending, then dead, naming the event.
func TestErasureRacingTheAutomationsConsumer(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a, x, secret, tag := erasureApp(t, db, "Erasure race")
		email, device := "Racer."+tag+"@Example.com", "racer-dev-"+tag
		arrived, answer := make(chan struct{}, 1), make(chan struct{})
		recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-answer
			w.WriteHeader(http.StatusUnprocessableEntity)
			fmt.Fprintf(w, "no contact %s on %s", email, device)
		}))
		t.Cleanup(recv.Close)
		t.Cleanup(func() {
			select {
			case <-answer:
			default:
				close(answer)
			}
		})
		x.rule("Quote", recv.URL+"/crm")
		a.ok(`mutation($a: ID!, $d: String!, $e: String!) { identify(input: {appId: $a, deviceId: $d, email: $e}) { lead { id } } }`,
			&map[string]any{}, client.Var("a", x.app), client.Var("d", device), client.Var("e", email), as(secret))
		var trig struct{ Trigger struct{ EventID string } }
		a.ok(`mutation($a: ID!, $d: String!) { trigger(input: {appId: $a, deviceId: $d, code: "signup"}) { eventId } }`,
			&trig, client.Var("a", x.app), client.Var("d", device), as(secret))
		select {
		case <-arrived: // the consumer holds the event and waits for the receiver
		case <-time.After(30 * time.Second):
			t.Fatal("the automations consumer sent nothing")
		}
		var out struct{ EraseLead erasePayload }
		a.ok(`mutation($a: ID!, $e: String!) { eraseLead(appId: $a, email: $e) `+erasePayloadFields+` }`, &out,
			client.Var("a", x.app), client.Var("e", email))
		if !out.EraseLead.Done || out.EraseLead.DeletedEvents != 1 {
			t.Fatalf("eraseLead answered %+v", out.EraseLead)
		}
		close(answer)
		a.settle()
		allowed := func(table, column, _ string) bool {
			return table == "erase_jobs" && column == "lead_id" || strings.HasPrefix(table, "event_log_")
		}
		if left := scanTables(t, db, []string{email, device}, map[string][]string{"event": {trig.Trigger.EventID}}, allowed); len(left) > 0 {
			t.Errorf("the consumer recorded the erased person after the erasure:\n%s", strings.Join(left, "\n"))
		}
	})
}

// olderThan reads every row of every table of the store that belongs to
// the app (has its app_id) and returns the times before cutoff, as
// "table.column: value".
func olderThan(t *testing.T, db *gorm.DB, appID uint64, cutoff time.Time) []string {
	t.Helper()
	tables, err := db.Migrator().GetTables()
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, table := range tables {
		if !db.Migrator().HasColumn(table, "app_id") {
			continue
		}
		var rows []map[string]any
		if err := db.Table(table).Where("app_id = ?", appID).Find(&rows).Error; err != nil {
			t.Fatalf("reading %s: %v", table, err)
		}
		for _, row := range rows {
			for column, v := range row {
				at, ok := v.(time.Time)
				if ok && table == "rollups" && column == "bucket" {
					// A bucket is old when it ends before the cutoff: the day
					// bucket the cutoff falls in also counts later events
					// (those of an hour ago, from midnight to 1 am UTC).
					at = at.Add(time.Hour)
					if fmt.Sprint(row["grain"]) == "2" {
						at = at.Add(23 * time.Hour)
					}
					at = at.Add(-time.Nanosecond)
				}
				if ok && at.Before(cutoff) {
					found = append(found, table+"."+column+": "+at.String())
				}
			}
		}
	}
	sort.Strings(found)
	return found
}

// eraseDevice takes the device, its events and what was derived from them
// (deliveries, attempts, rollup rows of its pages) from every table; the
// lead and its other device stay. eraseBefore leaves no time of the app's
// data before its date in any table, and none of the values of the events
// before it.
func TestEraseDeviceAndBeforeLeaveNothingInAnyTable(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a, x, secret, tag := erasureApp(t, db, "Erasure scan by device and date")
		recv := echoingReceiver(t, "Erasee."+tag+"@Example.com", "erasee-dev-"+tag+"-1", "erasee-dev-"+tag+"-2")
		x.rule("Quote", recv.URL+"/crm")
		old := seedErasee(t, x, secret, tag, time.Now().Add(-72*time.Hour))
		recent := seedErasee(t, x, secret, "r"+tag, time.Now().Add(-time.Hour))
		waitAttempts(t, db, x.appID, 4)
		a.settle()
		allowed := func(table, column, value string) bool {
			switch table + "." + column {
			case "erased_messages.message_id", "erase_jobs.lead_id", "event_log_consumers.position", "event_log_slots.sealed_id":
				return true
			}
			return false
		}

		// eraseDevice: the recent person's first device (one event).
		var dev struct{ EraseDevice erasePayload }
		a.ok(`mutation($a: ID!, $d: ID!) { eraseDevice(appId: $a, deviceId: $d) `+erasePayloadFields+` }`, &dev,
			client.Var("a", x.app), client.Var("d", recent.devices[0]))
		if !dev.EraseDevice.Done || dev.EraseDevice.DeletedEvents != 1 || dev.EraseDevice.DeletedDevices != 1 {
			t.Fatalf("eraseDevice answered %+v", dev.EraseDevice)
		}
		a.settle()
		if left := scanTables(t, db, []string{recent.devices[0]}, map[string][]string{"event": recent.events[:1]}, allowed); len(left) > 0 {
			t.Errorf("after eraseDevice the store still holds the device:\n%s", strings.Join(left, "\n"))
		}
		if kept := tablesOf(scanTables(t, db, []string{recent.devices[1]}, nil, allowed)); !kept["events"] || !kept["devices"] {
			t.Errorf("the lead's other device went with the erased one: %v", kept)
		}

		// eraseBefore: a day ago, after the old person's events.
		cutoff := time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Second)
		if older := tablesOf(olderThan(t, db, x.appID, cutoff)); !older["events"] || !older["rollups"] || !older["event_definitions"] {
			t.Fatalf("before eraseBefore the scan finds no old events, rollups or definition times: %v", older)
		}
		var before struct{ EraseBefore erasePayload }
		a.ok(`mutation($a: ID!, $b: Time!) { eraseBefore(appId: $a, before: $b) `+erasePayloadFields+` }`, &before,
			client.Var("a", x.app), client.Var("b", cutoff))
		if !before.EraseBefore.Done || before.EraseBefore.DeletedEvents != 2 {
			t.Fatalf("eraseBefore answered %+v", before.EraseBefore)
		}
		a.settle()
		if left := olderThan(t, db, x.appID, cutoff); len(left) > 0 {
			t.Errorf("after eraseBefore the app still has data from before %s:\n%s", cutoff, strings.Join(left, "\n"))
		}
		var eventValues []string
		for _, n := range old.needles {
			if strings.HasPrefix(n, "erasee-") && !strings.Contains(n, "-dev-") && !strings.Contains(n, "-name-") && !strings.Contains(n, "-field-") {
				eventValues = append(eventValues, n)
			}
		}
		if left := scanTables(t, db, eventValues, map[string][]string{"event": old.events}, allowed); len(left) > 0 {
			t.Errorf("after eraseBefore the store still holds the old events:\n%s", strings.Join(left, "\n"))
		}
	})
}

// erasureApp is an app of automations on a server that sends webhooks to
// loopback, with its secret key and a tag that keeps this test's values
// apart from any other's in the store.
func erasureApp(t *testing.T, db *gorm.DB, name string) (a *api, x *automationApp, secret, tag string) {
	t.Helper()
	a = newAPI(t, db, func(c *config) { c.Webhooks.Guard.AllowPrivate = true })
	x = newAutomationApp(t, a, name)
	var created struct{ RotateAppSecret struct{ SecretKey string } }
	a.ok(`mutation($a: ID!) { rotateAppSecret(id: $a) { secretKey } }`, &created, client.Var("a", x.app))
	return a, x, created.RotateAppSecret.SecretKey, fmt.Sprint(time.Now().UnixNano())
}
