package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"gorm.io/gorm"
)

// The Segment and webhook endpoints share the JSON API's writer; these tests
// hold them to the same promise under a store that is stopped, frozen or
// (SQLite) locked: UNAVAILABLE with 503 and Retry-After and a generic
// message, no request left hanging, and every event stored once after the
// sender's retry.

// segmentOver posts a Segment batch of track messages with these message
// ids and, when identify is set, an identify of their device and a group
// call (which stores nothing, so it is taken even while the store is down),
// as Segment's libraries batch them; it reads the answer as jsonEventsOver
// does.
func segmentOver(base, secret string, identify bool, ids ...string) httpAnswer {
	var batch []map[string]any
	for _, id := range ids {
		batch = append(batch, map[string]any{"type": "track", "anonymousId": "fault-seg", "event": "view", "messageId": id})
	}
	if identify {
		// The user's call from a browser, and an alias of another,
		// link each browser to the lead.
		batch = append(batch, map[string]any{"type": "identify", "anonymousId": "fault-seg", "traits": map[string]any{"email": "fault-seg@example.com"}},
			map[string]any{"type": "group", "anonymousId": "fault-seg", "groupId": "g-1"},
			map[string]any{"type": "page", "anonymousId": "browser-" + ids[0], "userId": "fault-seg", "messageId": ids[0] + "-user"},
			map[string]any{"type": "alias", "previousId": "alias-" + ids[0], "userId": "fault-seg"})
	}
	raw, _ := json.Marshal(map[string]any{"batch": batch})
	req, err := http.NewRequest(http.MethodPost, base+"/v1/batch", strings.NewReader(string(raw)))
	if err != nil {
		return httpAnswer{err: err}
	}
	req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(secret+":")))
	return ingestAnswer(fmt.Sprintf("Segment batch %s (identify %v)", strings.Join(ids, ","), identify), req, "results")
}

// webhookOver posts Bento-style events with these ids for one lead.
func webhookOver(base, token string, ids ...string) httpAnswer {
	events := make([]map[string]any, len(ids))
	for i, id := range ids {
		events[i] = map[string]any{"id": id, "type": "view", "email": "fault-lead@example.com", "fields": map[string]any{"plan": "pro"}}
	}
	raw, _ := json.Marshal(map[string]any{"events": events})
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/"+token+"/generic/track", strings.NewReader(string(raw)))
	if err != nil {
		return httpAnswer{err: err}
	}
	return ingestAnswer("webhook "+strings.Join(ids, ","), req, "items")
}

// subscribersOver imports Bento subscribers through the webhook URL.
func subscribersOver(base, token string, emails ...string) httpAnswer {
	subscribers := make([]map[string]any, len(emails))
	for i, email := range emails {
		subscribers[i] = map[string]any{"email": email, "plan": "pro"}
	}
	raw, _ := json.Marshal(map[string]any{"subscribers": subscribers})
	req, err := http.NewRequest(http.MethodPost, base+"/webhooks/"+token+"/generic/batch/subscribers", strings.NewReader(string(raw)))
	if err != nil {
		return httpAnswer{err: err}
	}
	return ingestAnswer("subscribers "+strings.Join(emails, ","), req, "items")
}

// ingestAnswer sends req and reads its answer: a whole-request error, or
// the outcomes listed under key, each error an entry of errors and the
// accepted ones a "triggerBatch" datum, so that ack, wantAccepted and
// wantUnavailable judge it.
func ingestAnswer(what string, req *http.Request, key string) httpAnswer {
	req.Header.Set("Content-Type", "application/json")
	resp, err := faultClient.Do(req)
	if err != nil {
		return httpAnswer{what: what, err: err}
	}
	defer resp.Body.Close()
	a := httpAnswer{what: what, status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), data: map[string]json.RawMessage{}}
	var out map[string]json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		a.err = fmt.Errorf("HTTP %d, body: %w", resp.StatusCode, err)
		return a
	}
	if raw := out["error"]; raw != nil {
		var e struct{ Code, Message string }
		json.Unmarshal(raw, &e)
		a.refuse(e.Code, e.Message)
		return a
	}
	var items []apiItem
	if err := json.Unmarshal(out[key], &items); err != nil || len(items) == 0 {
		a.err = fmt.Errorf("HTTP %d without %s", resp.StatusCode, key)
		return a
	}
	var accepted []map[string]bool
	for _, it := range items {
		if it.Error != nil {
			a.refuse(it.Error.Code, it.Error.Message)
		}
		accepted = append(accepted, map[string]bool{"accepted": it.Accepted})
	}
	if len(a.errors) == 0 {
		a.data["triggerBatch"], _ = json.Marshal(accepted)
	}
	return a
}

// wantLead fails unless device belongs to the lead with email.
func wantLead(t *testing.T, db *gorm.DB, appID, device, email string) {
	t.Helper()
	var got string
	err := db.Raw(`SELECT l.email FROM devices d JOIN leads l ON l.id = d.lead_id JOIN apps a ON a.id = d.app_id
		WHERE a.public_id = ? AND d.device_id = ?`, appID, device).Scan(&got).Error
	if err != nil || got != email {
		t.Fatalf("device %s belongs to %q (%v), want %s", device, got, err, email)
	}
}

func TestSegmentStoreFaults(t *testing.T) {
	for _, fault := range storeFaults {
		t.Run(fault.name, func(t *testing.T) {
			proxy, db, a, base := proxiedServer(t)
			appID, secret := a.createApp("Segment faults " + fault.name)
			acked := messageIDs("seg-"+fault.name+"-acked", 2)
			ack(t, func() httpAnswer { return segmentOver(base, secret, true, acked...) })

			fault.break_(proxy)
			mend := func() { fault.fix(proxy) }
			refused := messageIDs("seg-"+fault.name+"-refused", 3)
			answers := make(chan httpAnswer, 2)
			go func() { answers <- segmentOver(base, secret, false, refused[0]) }()
			go func() { answers <- segmentOver(base, secret, true, refused[1:]...) }()
			for _, ans := range collectAnswers(t, answers, 2, mend) {
				wantUnavailable(t, ans, "the store is unavailable; retry later")
			}
			// A new sender's key is looked up in the store, which is down too.
			if ans := segmentOver(base, "sk_"+strings.Repeat("z", 32), false, "seg-unknown-key"); ans.status != http.StatusServiceUnavailable {
				mend()
				t.Fatalf("%s: HTTP %d %v, want 503", ans.what, ans.status, ans.errors)
			} else {
				wantUnavailable(t, ans, "the store is unavailable; retry later")
			}

			mend()
			ack(t, func() httpAnswer { return segmentOver(base, secret, false, refused[0]) })
			ack(t, func() httpAnswer { return segmentOver(base, secret, true, refused[1:]...) })
			wantStoredOnce(t, db, base, appID, append(acked, refused...))
			wantLead(t, db, appID, "fault-seg", "fault-seg@example.com")
			// So does the resend of a batch refused for a fault.
			wantLead(t, db, appID, "browser-"+refused[1], "fault-seg@example.com")
			wantLead(t, db, appID, "alias-"+refused[1], "fault-seg@example.com")
		})
	}
}

func TestWebhookStoreFaults(t *testing.T) {
	for _, fault := range storeFaults {
		t.Run(fault.name, func(t *testing.T) {
			proxy, db, a, base := proxiedServer(t)
			appID, _ := a.createApp("Webhook faults " + fault.name)
			_, token, _ := createIngestToken(a, appID, "Faults")
			acked := messageIDs("hook-"+fault.name+"-acked", 2)
			ack(t, func() httpAnswer { return webhookOver(base, token, acked...) })

			fault.break_(proxy)
			mend := func() { fault.fix(proxy) }
			refused := messageIDs("hook-"+fault.name+"-refused", 3)
			answers := make(chan httpAnswer, 2)
			go func() { answers <- webhookOver(base, token, refused[0]) }()
			go func() { answers <- webhookOver(base, token, refused[1:]...) }()
			for _, ans := range collectAnswers(t, answers, 2, mend) {
				wantUnavailable(t, ans, "the store is unavailable; retry later")
			}
			// So is a token this replica has not seen yet.
			if ans := webhookOver(base, "it_"+strings.Repeat("z", 32), "hook-unknown-token"); ans.status != http.StatusServiceUnavailable {
				mend()
				t.Fatalf("%s: HTTP %d %v, want 503", ans.what, ans.status, ans.errors)
			} else {
				wantUnavailable(t, ans, "the store is unavailable; retry later")
			}
			// A subscriber import too, and it writes nothing.
			if ans := subscribersOver(base, token, "fault-sub-"+fault.name+"@example.com"); ans.status != http.StatusServiceUnavailable {
				mend()
				t.Fatalf("%s: HTTP %d %v, want 503", ans.what, ans.status, ans.errors)
			} else {
				wantUnavailable(t, ans, "the store is unavailable; retry later")
			}

			mend()
			ack(t, func() httpAnswer { return subscribersOver(base, token, "fault-sub-"+fault.name+"@example.com") })
			ack(t, func() httpAnswer { return webhookOver(base, token, refused[0]) })
			ack(t, func() httpAnswer { return webhookOver(base, token, refused[1:]...) })
			var stored []string
			for _, id := range append(acked, refused...) {
				stored = append(stored, "bento:"+id)
			}
			wantStoredOnce(t, db, base, appID, stored)
		})
	}
}

// A SQLite file locked by another process: Segment and the webhook wait the
// busy timeout, answer UNAVAILABLE, and store the retry once.
func TestIngestLockedSQLite(t *testing.T) {
	db, path, a, base := sqliteFileServer(t)
	appID, secret := a.createApp("Locked ingest")
	_, token, _ := createIngestToken(a, appID, "Locked")
	ack(t, func() httpAnswer { return segmentOver(base, secret, true, "seg-locked-acked") })
	ack(t, func() httpAnswer { return webhookOver(base, token, "hook-locked-acked") })
	a.settle() // nothing left for the rollups consumer to wait on the lock for

	unlock := lockSQLite(t, path)
	answers := make(chan httpAnswer, 2)
	go func() { answers <- segmentOver(base, secret, true, "seg-locked-refused") }()
	go func() { answers <- webhookOver(base, token, "hook-locked-refused") }()
	for _, ans := range collectAnswers(t, answers, 2, unlock) {
		wantUnavailable(t, ans, "the store is unavailable; retry later")
	}
	unlock()
	ack(t, func() httpAnswer { return segmentOver(base, secret, true, "seg-locked-refused") })
	ack(t, func() httpAnswer { return webhookOver(base, token, "hook-locked-refused") })
	wantStoredOnce(t, db, base, appID, []string{"seg-locked-acked", "seg-locked-refused", "bento:hook-locked-acked", "bento:hook-locked-refused"})
}
