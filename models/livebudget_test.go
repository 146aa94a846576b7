package models_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// The streams of one reader (a websocket's subscriptions) share a budget
// of bytes: events that would take what waits for them past it are
// skipped, not buffered, and room comes back as the reader takes events.
// Without it, each stream buffered its 1,000 copies whatever their size.
func TestLiveBudgetBoundsWaitingEvents(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		ctx, cancel := context.WithCancel(e.ctx)
		defer cancel()
		const budgetBytes = 20 << 10
		b := models.NewLiveBudget(budgetBytes)
		pos := livePosition(t, db)
		budgeted := []<-chan *models.Event{
			models.StreamEvents(models.WithLiveBudget(ctx, b), db, e.app.ID, pos, log),
			models.StreamEvents(models.WithLiveBudget(ctx, b), db, e.app.ID, pos, log),
		}
		unbounded := models.StreamEvents(ctx, db, e.app.ID, pos, log)
		// 20 events of about 4 KB each: 160 KB for the two streams, eight
		// times the budget.
		const events = 20
		big := map[string]any{"a": strings.Repeat("x", 2000), "b": strings.Repeat("y", 2000)}
		var last uint64
		for range events {
			last = e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "live-budget", Properties: big}).EventID
		}
		for got := 0; got < events; {
			select {
			case ev := <-unbounded:
				ev.Received()
				got++
				if ev.ID == last && got != events {
					t.Fatalf("the unbounded stream got %d events, want %d", got, events)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the unbounded stream got %d events, want %d", got, events)
			}
		}
		// The poll that sent the last event has sent it to every stream once
		// it has let go of the streams' lock.
		models.LiveSubscribers()
		if used := b.Used(); used <= 0 || used > budgetBytes {
			t.Fatalf("%d bytes wait for the reader, want some and at most %d", used, budgetBytes)
		}
		waiting := len(budgeted[0]) + len(budgeted[1])
		if waiting == 0 || waiting > budgetBytes/4000 {
			t.Fatalf("%d events of 4 KB wait in the budgeted streams (of %d sent), want some and at most %d", waiting, 2*events, budgetBytes/4000)
		}
		for _, s := range budgeted {
			for len(s) > 0 {
				(<-s).Received()
			}
		}
		if used := b.Used(); used != 0 {
			t.Fatalf("%d bytes still held once the reader took every event", used)
		}
		// With the room back, the next event reaches both streams.
		next := e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "live-budget", Properties: big}).EventID
		for i, s := range budgeted {
			select {
			case ev := <-s:
				if ev.ID != next {
					t.Fatalf("stream %d got event %d, want %d", i, ev.ID, next)
				}
				ev.Received()
			case <-time.After(30 * time.Second):
				t.Fatalf("stream %d got nothing once the reader caught up", i)
			}
		}
	})
}
