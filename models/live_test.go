package models_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
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
			streams[i] = models.StreamEvents(ctx, db, e.app.ID, livePosition(t, db), log)
		}
		otherCtx, cancelOther := context.WithCancel(e.ctx)
		otherStream := models.StreamEvents(otherCtx, db, other.app.ID, livePosition(t, db), log)
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
		// A late subscriber gets only what is stored after its position
		// (taken past the margin it keeps behind the clock).
		time.Sleep(500 * time.Millisecond)
		late := models.StreamEvents(ctx, db, e.app.ID, livePosition(t, db), log)
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

// A stream from a position sends every event committed after the position
// was taken, each once, though it subscribes a while later and writers
// keep committing (in group commits that interleave with the seal) all along.
func TestLiveStreamFromPositionMissesNothing(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		stop := make(chan struct{})
		var writers sync.WaitGroup
		for w := range 4 {
			writers.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					res := e.writer.Trigger(e.ctx, []models.TriggerInput{{AppPublicID: e.app.PublicID, Code: "view", DeviceID: fmt.Sprintf("writer-%d", w), URL: fmt.Sprintf("https://s.example/%d/%d", w, i)}})[0]
					if res.Err != nil || !res.Accepted {
						t.Errorf("trigger: %+v", res)
						return
					}
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
		pos := livePosition(t, db)
		before := storedIDs(t, db, e.app.ID)
		// The window the dashboard had between "Connected" and the
		// subscription starting on the server.
		time.Sleep(1500 * time.Millisecond)
		stream := models.StreamEvents(streamContext(t), db, e.app.ID, pos, log)
		time.Sleep(2 * time.Second)
		close(stop)
		writers.Wait()
		stored := storedIDs(t, db, e.app.ID)
		want := map[uint64]bool{}
		for id := range stored {
			if !before[id] && id <= pos {
				t.Errorf("event %d committed after the position %d, yet its id is not past it", id, pos)
			}
			if id > pos {
				want[id] = true
			}
		}
		if len(want) < 50 {
			t.Fatalf("only %d events past the position: the writers did not keep up", len(want))
		}
		got := drainStream(t, stream, len(want))
		modelstest.ExactlyOnce(t, got, want) // every event past the position, once
	})
}

// A stream from an old position first sends at most the newest 1,000
// events past it (the dashboard's live page relies on the cap to forget all
// but the highest 1,000 ids it has seen), and never the older ones later.
func TestLiveStreamBackfillSendsTheNewestThousand(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		log := slog.New(slog.NewTextHandler(io.Discard, nil))
		pos := livePosition(t, db)
		for b := range 11 {
			inputs := make([]models.TriggerInput, 100)
			for i := range inputs {
				inputs[i] = models.TriggerInput{AppPublicID: e.app.PublicID, Secret: e.secret, Code: "view", DeviceID: fmt.Sprintf("backfill-%d-%d", b, i)}
			}
			for _, res := range e.writer.Trigger(e.ctx, inputs) {
				if res.Err != nil || !res.Accepted {
					t.Fatalf("trigger: %+v", res)
				}
			}
		}
		stored := slices.Sorted(maps.Keys(storedIDs(t, db, e.app.ID)))
		if len(stored) != 1100 || stored[0] <= pos {
			t.Fatalf("%d events stored, the first %d (position %d), want 1,100 past the position", len(stored), stored[0], pos)
		}
		want := map[uint64]bool{}
		for _, id := range stored[100:] {
			want[id] = true
		}
		stream := models.StreamEvents(streamContext(t), db, e.app.ID, pos, log)
		got := drainStream(t, stream, len(want))
		modelstest.ExactlyOnce(t, got, want) // the newest 1,000, once; none of the 100 older
	})
}

// streamContext ends with the test, and with it a stream's poll: polls
// are per process, and TestLiveStreamSharesOnePollPerApp counts them.
func streamContext(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return ctx
}

func livePosition(t testing.TB, db *gorm.DB) uint64 {
	t.Helper()
	pos, err := models.LivePosition(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// storedIDs returns the ids of the app's events visible now.
func storedIDs(t *testing.T, db *gorm.DB, appID uint64) map[uint64]bool {
	t.Helper()
	var ids []uint64
	if err := db.Model(&models.Event{}).Where("app_id = ?", appID).Pluck("id", &ids).Error; err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bool{}
	for _, id := range ids {
		out[id] = true
	}
	return out
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
		models.StreamEvents(ctx, db, app.ID, livePosition(b, db), log)
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

// drainStream counts what stream sends, by event id, until n distinct
// events came (failing after 30 s), and then for two more polls, so that
// anything sent later or twice is counted too.
func drainStream(t *testing.T, stream <-chan *models.Event, n int) map[uint64]int {
	t.Helper()
	got := map[uint64]int{}
	deadline := time.After(30 * time.Second)
	for len(got) < n {
		select {
		case ev := <-stream:
			got[ev.ID]++
		case <-deadline:
			t.Fatalf("after 30s the stream sent %d distinct events, want %d", len(got), n)
		}
	}
	for quiet := time.After(2500 * time.Millisecond); ; {
		select {
		case ev := <-stream:
			got[ev.ID]++
			continue
		case <-quiet:
		}
		return got
	}
}
