package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/client"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The dashboard's live page takes a cursor (liveCursor) when it opens and
// subscribes once its websocket is acknowledged. Over a real graphql-ws
// connection whose subscribe comes 1.5 s after the acknowledgement, while
// three senders keep triggering, every event committed after the cursor was
// taken arrives, and each arrives once.
func TestLiveCursorMissesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		a := newAPI(t, db)
		l := newLiveApp(t, a)
		stop := l.sending(3, 20*time.Millisecond)
		defer stop()
		time.Sleep(500 * time.Millisecond)
		var cur struct{ LiveCursor string }
		a.ok(`query($a: ID!) { liveCursor(appId: $a) }`, &cur, client.Var("a", l.appID))
		pos, err := strconv.ParseUint(cur.LiveCursor, 10, 64)
		if err != nil {
			t.Fatalf("cursor %q: %v", cur.LiveCursor, err)
		}
		before := appEventIDs(t, db, l.appID)

		c, _, err := dialWS(t, l.url, "")
		if err != nil {
			t.Fatal(err)
		}
		if ack, err := c.init(map[string]any{"Authorization": "Bearer " + a.ownerToken}); err != nil || ack.Type != "connection_ack" {
			t.Fatalf("connection_init answered %+v %v", ack, err)
		}
		time.Sleep(1500 * time.Millisecond) // "Connected", the subscription not yet started
		c.subscribe("live", `subscription($a: ID!, $after: String) { eventStored(appId: $a, after: $after) { id } }`,
			map[string]any{"a": l.appID, "after": cur.LiveCursor})
		time.Sleep(2 * time.Second)
		stop()

		want := map[string]bool{}
		for id := range appEventIDs(t, db, l.appID) {
			if !before[id] && id <= pos {
				t.Errorf("event %d committed after the cursor %d, yet its id is not past it", id, pos)
			}
			if id > pos {
				want[strconv.FormatUint(id, 10)] = true
			}
		}
		if len(want) < 30 {
			t.Fatalf("only %d events past the cursor: the senders did not keep up", len(want))
		}
		got := map[string]int{}
		for len(got) < len(want) {
			msg, err := c.next()
			if err != nil || msg.Type != "next" {
				t.Fatalf("after %d of %d events: %+v %v", len(got), len(want), msg, err)
			}
			var p struct {
				Data struct{ EventStored struct{ ID string } }
			}
			if err := json.Unmarshal(msg.Payload, &p); err != nil || p.Data.EventStored.ID == "" {
				t.Fatalf("payload %s: %v", msg.Payload, err)
			}
			got[p.Data.EventStored.ID]++
		}
		// Two more polls, for any event sent twice.
		quiet := make(chan struct{})
		go func() {
			time.Sleep(2500 * time.Millisecond)
			close(quiet)
			c.conn.CloseNow()
		}()
		for {
			msg, err := c.next()
			if err != nil {
				break
			}
			var p struct {
				Data struct{ EventStored struct{ ID string } }
			}
			json.Unmarshal(msg.Payload, &p)
			got[p.Data.EventStored.ID]++
		}
		<-quiet
		modelstest.ExactlyOnce(t, got, want) // every event past the position, once
	})
}

// sending triggers events for the app with its secret key (a server's
// triggers are not rate limited per IP) from senders goroutines, each every
// interval, until the returned stop is called (which waits for them;
// calling it again does nothing). Every trigger must be accepted.
func (l *liveApp) sending(senders int, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				case <-time.After(interval):
				}
				var out struct{ Trigger struct{ Accepted bool } }
				err := l.a.gql.Post(`mutation($in: TriggerInput!) { trigger(input: $in) { accepted } }`, &out, l.a.withCredentials([]client.Option{
					client.Var("in", map[string]any{"appId": l.appID, "deviceId": fmt.Sprintf("sender-%d-%d", s, i), "code": "view", "url": fmt.Sprintf("https://s.example/%d/%d", s, i)}),
					client.AddHeader("Authorization", "Bearer "+l.secret)})...)
				if err != nil || !out.Trigger.Accepted {
					l.a.t.Errorf("trigger: %+v %v", out, err)
					return
				}
			}
		})
	}
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// appEventIDs returns the ids of the app's events visible now.
func appEventIDs(t *testing.T, db *gorm.DB, appPublicID string) map[uint64]bool {
	t.Helper()
	var ids []uint64
	err := db.Table("events").Joins("JOIN apps ON apps.id = events.app_id").Where("apps.public_id = ?", appPublicID).Pluck("events.id", &ids).Error
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out
}
