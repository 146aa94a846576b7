package models_test

import (
	"context"
	"io"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// Every subscriber of an app on this replica shares one poll; each gets
// every event stored after it subscribed, and the poll ends with its last
// subscriber.
func TestLiveStreamSharesOnePollPerApp(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		other := newEnv(t, db)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		ctx, cancel := context.WithCancel(e.ctx)
		const subs = 20
		streams := make([]<-chan *models.Event, subs)
		for i := range streams {
			streams[i] = models.StreamEvents(ctx, db, e.app.ID, log)
		}
		otherCtx, cancelOther := context.WithCancel(e.ctx)
		otherStream := models.StreamEvents(otherCtx, db, other.app.ID, log)
		if n, polls := models.LiveSubscribers(); n < subs+1 || polls < 2 {
			t.Fatalf("%d streams in %d polls, want at least %d in 2", n, polls, subs+1)
		}
		id := e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "live-a"}).EventID
		otherID := other.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "live-b"}).EventID
		for i, s := range streams {
			select {
			case ev := <-s:
				if ev.ID != id || ev.AppID != e.app.ID {
					t.Fatalf("stream %d got event %d of app %d, want %d of app %d", i, ev.ID, ev.AppID, id, e.app.ID)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("stream %d got nothing", i)
			}
		}
		select {
		case ev := <-otherStream:
			if ev.ID != otherID {
				t.Fatalf("other app's stream got event %d, want %d", ev.ID, otherID)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("other app's stream got nothing")
		}
		// A late subscriber gets only what is stored after it came.
		late := models.StreamEvents(ctx, db, e.app.ID, log)
		time.Sleep(1500 * time.Millisecond)
		id2 := e.mustTrigger(models.TriggerInput{Code: "click", DeviceID: "live-a"}).EventID
		select {
		case ev := <-late:
			if ev.ID != id2 {
				t.Fatalf("late stream got event %d, want only %d", ev.ID, id2)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("late stream got nothing")
		}
		cancel()
		cancelOther()
		for _, s := range append(streams, late, otherStream) {
			for range s { // closed once its context ends
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			n, polls := models.LiveSubscribers()
			if n == 0 && polls == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d streams in %d polls still running after every subscriber left", n, polls)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
}

// BenchmarkLiveIdleSubscribers measures what 1,000 idle live subscribers of
// one app cost this process (CPU time per wall second; the target is under
// 10% of a core), including the database's share only as far as it runs in
// process (SQLite):
//
//	go test ./models -run '^$' -bench LiveIdleSubscribers -benchtime 1x
func BenchmarkLiveIdleSubscribers(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchLiveIdle(b, modelstest.SQLite(b)) })
	b.Run("mysql", func(b *testing.B) { benchLiveIdle(b, modelstest.MySQL(b)) })
}

func benchLiveIdle(b *testing.B, db *gorm.DB) {
	ctx, cancel := context.WithCancel(b.Context())
	defer cancel()
	name := "live bench"
	app, _, err := models.CreateApp(ctx, db, newUser(b, db), models.AppInput{Name: &name})
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	const subscribers = 1000
	for range subscribers {
		models.StreamEvents(ctx, db, app.ID, log)
	}
	time.Sleep(2 * time.Second) // past the first polls
	b.ResetTimer()
	for range b.N {
		cpu0, wall0 := cpuTime(b), time.Now()
		time.Sleep(5 * time.Second)
		share := float64(cpuTime(b)-cpu0) / float64(time.Since(wall0))
		b.ReportMetric(100*share, "%core")
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
