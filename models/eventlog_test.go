package models_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// newQuietEnv is an env whose writer derives nothing, so that a test
// decides when the event log's consumers run.
func newQuietEnv(t *testing.T, db *gorm.DB) *env {
	t.Helper()
	ctx := context.Background()
	name := "Test " + t.Name()
	owner := newUser(t, db)
	tz := "Europe/Amsterdam"
	app, secret, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: &name, Timezone: &tz})
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so run last, after the test's dispatchers closed:
	// the app's rules go with their deliveries, so that the next tests'
	// dispatchers in the shared MySQL database do not attempt them once
	// their receivers are gone.
	t.Cleanup(func() { deleteRules(t, db, owner, app) })
	w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{NoDerive: true})
	t.Cleanup(w.Close)
	return &env{t: t, ctx: ctx, db: db, app: app, secret: secret, owner: owner, writer: w}
}

// deleteRules deletes the automation rules of an app with their actions
// and delivery logs; an app its owner can no longer reach is left.
func deleteRules(t *testing.T, db *gorm.DB, owner models.Viewer, app *models.App) {
	ctx := context.Background()
	rules, err := models.AutomationRulesFor(ctx, db, owner, app.PublicID)
	if err != nil {
		return
	}
	for _, r := range rules {
		if _, err := models.DeleteAutomationRuleFor(ctx, db, owner, app.PublicID, models.FormatID(r.ID)); err != nil && !errors.Is(err, models.ErrNotFound) {
			t.Errorf("deleting rule %q at cleanup: %v", r.Name, err)
		}
	}
}

// generate stores n events around the 2026-10-25 DST change, like
// newInsightsEnv, in batches of up to 50.
func generate(e *env, seed uint64, n int) *insightsEnv {
	ie := &insightsEnv{env: e, defs: map[uint64]string{}}
	defs, _ := models.EventDefinitions(e.ctx, e.db, e.app.ID, nil)
	var codes []string
	for _, d := range defs {
		ie.defs[d.ID] = d.Code
		codes = append(codes, d.Code)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(n)))
	start := time.Date(2026, 10, 22, 0, 0, 0, 0, time.UTC)
	var batch []models.TriggerInput
	size := 1 + rng.IntN(50)
	for i := range n {
		at := start.Add(time.Duration(rng.Int64N(int64(6 * 24 * time.Hour))))
		if i%10 == 0 {
			at = time.Date(2026, 10, 24, 23, 0, 0, 0, time.UTC).Add(time.Duration(rng.Int64N(int64(3 * time.Hour))))
		}
		batch = append(batch, models.TriggerInput{Secret: e.secret,
			AppPublicID: e.app.PublicID, DeviceID: fmt.Sprintf("dev-%d", rng.IntN(40)), Code: codes[rng.IntN(len(codes))],
			URL: genPages[rng.IntN(len(genPages))], Referrer: genRefs[rng.IntN(len(genRefs))], Source: genSources[rng.IntN(len(genSources))],
			OccurredAt: &at,
		})
		if len(batch) == size || i == n-1 {
			size = 1 + rng.IntN(50)
			for _, r := range e.writer.Trigger(e.ctx, batch) {
				if !r.Accepted {
					e.t.Error(r.Err) // generate may run in several goroutines
					return ie
				}
			}
			batch = nil
		}
	}
	return ie
}

// checkOverview compares daily and hourly overviews in the app's timezone
// (Amsterdam, read from hourly rollups) and daily ones in UTC (read from
// daily rollups), with estimated and exact uniques, with a brute-force count
// of the raw events.
func checkOverview(t *testing.T, e *insightsEnv) {
	t.Helper()
	from, to := time.Date(2026, 10, 22, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 28, 0, 0, 0, 0, time.UTC)
	events := e.events()
	for _, c := range []struct {
		tz string
		iv models.Interval
	}{{"Europe/Amsterdam", models.IntervalDay}, {"Europe/Amsterdam", models.IntervalHour}, {"UTC", models.IntervalDay}} {
		loc, _ := time.LoadLocation(c.tz)
		iv := c.iv
		for _, exact := range []bool{false, true} {
			o, err := models.AppOverview(e.ctx, e.db, e.app, models.RangeInput{From: from, To: to, Interval: iv, Timezone: c.tz}, exact)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[uint64]map[string]int64{}
			devices := map[uint64]map[string]bool{}
			for _, ev := range events {
				if ev.OccurredAt.Before(o.From) || !ev.OccurredAt.Before(o.To) {
					continue
				}
				for _, id := range []uint64{0, ev.DefinitionID} {
					if counts[id] == nil {
						counts[id], devices[id] = map[string]int64{}, map[string]bool{}
					}
					counts[id][localKey(ev.OccurredAt, loc, iv)]++
					devices[id][ev.DeviceID] = true
				}
			}
			check := func(name string, id uint64, total, uniques int64, series []models.Bucket) {
				t.Helper()
				var sum int64
				for _, b := range series {
					if b.Count != counts[id][localKey(b.Start, loc, iv)] {
						t.Fatalf("%s %s: bucket %v = %d, raw %d", iv, name, b.Start, b.Count, counts[id][localKey(b.Start, loc, iv)])
					}
					sum += b.Count
				}
				want := int64(len(devices[id]))
				if sum != total || (exact && uniques != want) || (!exact && (uniques < want-1 || uniques > want+1)) {
					t.Fatalf("%s %s exact=%v: total %d (series %d) uniques %d, raw %d devices", iv, name, exact, total, sum, uniques, want)
				}
			}
			check("all", 0, o.TotalEvents, o.UniqueDevices, o.Series)
			for _, d := range o.Definitions {
				check(d.Definition.Code, d.Definition.ID, d.Count, d.UniqueDevices, d.Series)
			}
		}
	}
}

// smallBatches is the rollups consumer flushing a few events at a time.
func smallBatches(n int) models.LogConsumer {
	c := models.RollupsConsumer()
	c.Batch = n
	return c
}

// Insights answer exactly at every watermark: before the consumer ran,
// after each of its small flushes, and once it caught up; and the stored
// rollups equal those computed from the derived raw events.
func TestInsightsExactAtEveryWatermark(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := generate(newQuietEnv(t, db), 7, 500)
		log := models.NewEventLog(db, models.EventLogOptions{})
		log.Add(smallBatches(71)) // not started: the test steps it
		defer log.Close()
		checkOverview(t, e)
		checkBreakdowns(t, e)
		steps := 0
		for more := true; more; steps++ {
			var err error
			if more, err = log.Step(e.ctx); err != nil {
				t.Fatal(err)
			}
			if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
				t.Fatalf("step %d: %v", steps, err)
			}
			if steps%4 == 1 {
				checkOverview(t, e)
				checkBreakdowns(t, e)
			}
		}
		if steps < 7 {
			t.Fatalf("caught up after %d steps of 71 events, want at least 7", steps)
		}
		checkOverview(t, e)
		checkBreakdowns(t, e)
		var newest uint64
		db.Model(&models.Event{}).Select("MAX(id)").Scan(&newest)
		if pos := models.RollupsWatermark(db); pos < newest {
			t.Fatalf("watermark %d behind the newest event %d", pos, newest)
		}

		// More events, then an erasure while some are derived and some not.
		for i := range 6 {
			if _, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{Secret: e.secret,
				AppPublicID: e.app.PublicID, DeviceID: fmt.Sprintf("dev-%d", i), Email: fmt.Sprintf("lead%d@example.com", i%3)}); err != nil {
				t.Fatal(err)
			}
		}
		generate(e.env, 8, 300)
		if _, err := log.Step(e.ctx); err != nil {
			t.Fatal(err)
		}
		generate(e.env, 9, 100)
		if _, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "lead1@example.com"); err != nil {
			t.Fatal(err)
		}
		if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
			t.Fatal(err)
		}
		checkOverview(t, e)
		checkBreakdowns(t, e)
		if err := log.Drain(e.ctx); err != nil {
			t.Fatal(err)
		}
		if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
			t.Fatal(err)
		}
		checkOverview(t, e)
		checkBreakdowns(t, e)
	})
}

// Insights stay exact while the consumer flushes under them: each answer
// is checked against the raw events of the same moment.
func TestInsightsExactWhileDeriving(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newQuietEnv(t, db)
		log := models.NewEventLog(db, models.EventLogOptions{Interval: time.Millisecond, SealMargin: time.Millisecond, MinAge: time.Millisecond})
		log.Start(smallBatches(23))
		defer log.Close()
		for round := range 4 {
			ie := generate(e, uint64(round), 150)
			checkOverview(t, ie)
			checkBreakdowns(t, ie)
		}
	})
}

// Replicas race for the consumer's lease: several event logs with short
// leases run side by side while writers store events, one stalls inside
// its flush past its lease and another takes over, and some stop and
// start. Every event is derived exactly once.
func TestReplicasRaceForTheLease(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newQuietEnv(t, db)
		var stalls atomic.Int32
		stalling := func() models.LogConsumer {
			c := smallBatches(40)
			derive := c.Derive
			c.Derive = func(ctx context.Context, db *gorm.DB, events []*models.Event) (func(*gorm.DB) error, error) {
				// Read, then stall past the lease: another replica takes over
				// and this flush's fence must fail.
				write, err := derive(ctx, db, events)
				if stalls.Add(1)%7 == 0 {
					time.Sleep(250 * time.Millisecond)
				}
				return write, err
			}
			return c
		}
		opts := models.EventLogOptions{Interval: 5 * time.Millisecond, LeaseTTL: 100 * time.Millisecond, SealMargin: 5 * time.Millisecond, MinAge: 5 * time.Millisecond}
		var mu sync.Mutex
		var logs []*models.EventLog
		start := func() {
			l := models.NewEventLog(db, opts)
			l.Start(stalling())
			mu.Lock()
			logs = append(logs, l)
			mu.Unlock()
		}
		for range 3 {
			start()
		}
		// A flush stalling inside its transaction holds the row others fence on.
		restore := models.SetDerivedCommitHook(func(*gorm.DB, string) error {
			if rand.IntN(10) == 0 {
				time.Sleep(150 * time.Millisecond)
			}
			return nil
		})
		defer restore()
		var wg sync.WaitGroup
		for w := range 3 {
			wg.Go(func() {
				for i := range 10 {
					generate(e, uint64(100*w+i), 25)
					time.Sleep(30 * time.Millisecond)
				}
			})
		}
		wg.Go(func() {
			for range 4 {
				time.Sleep(60 * time.Millisecond)
				mu.Lock()
				victim := logs[0]
				logs = logs[1:]
				mu.Unlock()
				victim.Close()
				start()
			}
		})
		wg.Wait()
		mu.Lock()
		for _, l := range logs {
			l.Close()
		}
		mu.Unlock()
		restore()
		final := models.NewEventLog(db, models.EventLogOptions{})
		final.Start(models.RollupsConsumer())
		defer final.Close()
		deadline := time.Now().Add(time.Minute)
		for {
			err := final.Drain(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if s := final.Stats()[0]; s.Holding || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // a stopped replica's lease may still run
		}
		if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
			t.Fatal(err)
		}
		if n := e.countEvents("1 = 1"); n != 750 {
			t.Fatalf("%d events stored, want 750", n)
		}
		checkOverview(t, &insightsEnv{env: e})
		t.Logf("%d flushes", stalls.Load())
	})
}

// A consumer killed (kill -9) in the middle of a flush leaves neither
// rollups nor its watermark half-written; another replica takes over once
// its lease runs out and derives every event exactly once.
func TestConsumerKilledMidFlush(t *testing.T) {
	if os.Getenv("CRUMBS_CHILD_DATABASE_URL") != "" {
		return // this process is the child
	}
	for _, store := range []string{"sqlite", "mysql"} {
		t.Run(store, func(t *testing.T) {
			var db *gorm.DB
			var url string
			if store == "sqlite" {
				path := filepath.Join(t.TempDir(), "crumbs.db")
				url = "sqlite:" + path
				var err error
				if db, err = models.Open(context.Background(), url, models.DBOptions{}); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if sqlDB, err := db.DB(); err == nil {
						sqlDB.Close()
					}
				})
				if err := models.Migrate(context.Background(), db); err != nil {
					t.Fatal(err)
				}
			} else {
				db = modelstest.MySQL(t)
				url = modelstest.MySQLDSN(t)
			}
			e := generate(newQuietEnv(t, db), 3, 400)
			before := models.RollupsWatermark(db)
			var rollupsBefore int64
			db.Table("rollups").Where("app_id = ?", e.app.ID).Count(&rollupsBefore)

			child := exec.Command(os.Args[0], "-test.run=^TestConsumerChild$", "-test.v")
			child.Env = append(os.Environ(), "CRUMBS_CHILD_DATABASE_URL="+url)
			out, err := child.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			child.Stderr = os.Stderr
			if err := child.Start(); err != nil {
				t.Fatal(err)
			}
			defer child.Process.Kill()
			lines := bufio.NewScanner(out)
			inFlush := false
			for lines.Scan() {
				if strings.Contains(lines.Text(), "IN FLUSH") {
					inFlush = true
					break
				}
			}
			if !inFlush {
				t.Fatal("the child never reached its flush")
			}
			if err := child.Process.Kill(); err != nil { // SIGKILL
				t.Fatal(err)
			}
			child.Wait()

			var rollupsAfter int64
			db.Table("rollups").Where("app_id = ?", e.app.ID).Count(&rollupsAfter)
			if pos := models.RollupsWatermark(db); pos != before || rollupsAfter != rollupsBefore {
				t.Fatalf("after the kill: watermark %d (was %d), %d rollup rows (were %d)", pos, before, rollupsAfter, rollupsBefore)
			}
			takeover := models.NewEventLog(db, models.EventLogOptions{Interval: 20 * time.Millisecond})
			takeover.Start(models.RollupsConsumer())
			defer takeover.Close()
			deadline := time.Now().Add(30 * time.Second) // the child's lease is 1 s
			for models.RollupsWatermark(db) == before {
				if time.Now().After(deadline) {
					t.Fatal("no replica took over from the killed one")
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err := takeover.Drain(e.ctx); err != nil {
				t.Fatal(err)
			}
			if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
				t.Fatal(err)
			}
			checkOverview(t, e)
		})
	}
}

// TestConsumerChild is the process TestConsumerKilledMidFlush kills: it
// derives rollups and stops inside its first flush's transaction, after
// some of the rollups are written.
func TestConsumerChild(t *testing.T) {
	url := os.Getenv("CRUMBS_CHILD_DATABASE_URL")
	if url == "" {
		return // only TestConsumerKilledMidFlush runs it, as a child process
	}
	db, err := models.Open(context.Background(), url, models.DBOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := models.RollupsConsumer()
	derive := c.Derive
	c.Derive = func(ctx context.Context, db *gorm.DB, events []*models.Event) (func(*gorm.DB) error, error) {
		write, err := derive(ctx, db, events)
		return func(tx *gorm.DB) error {
			if err := write(tx); err != nil {
				return err
			}
			fmt.Println("IN FLUSH")
			select {} // until killed
		}, err
	}
	log := models.NewEventLog(db, models.EventLogOptions{LeaseTTL: time.Second, Interval: 10 * time.Millisecond, SealMargin: time.Millisecond, MinAge: time.Millisecond})
	log.Start(c)
	time.Sleep(time.Minute)
	t.Fatal(errors.New("not killed"))
}

// A group commit that is slow between its statements and its COMMIT holds
// up the consumer's seal instead of being passed over: a later event
// commits meanwhile (on MySQL, through another replica's writer), and the
// consumer derives both once the slow one commits.
func TestLateCommitIsWaitedFor(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newQuietEnv(t, db)
		other := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{NoDerive: true})
		defer other.Close()
		generate(e, 1, 30)
		log := models.NewEventLog(db, models.EventLogOptions{})
		log.Add(models.RollupsConsumer())
		defer log.Close()
		if err := log.Drain(e.ctx); err != nil {
			t.Fatal(err)
		}

		inCommit, release := make(chan struct{}), make(chan struct{})
		var releaseOnce sync.Once
		defer releaseOnce.Do(func() { close(release) })
		var first atomic.Bool
		restore := models.SetWriterHooks(nil, func() {
			if first.CompareAndSwap(false, true) { // the first commit only
				close(inCommit)
				<-release
			}
		})
		defer restore()
		slow := make(chan models.TriggerResult)
		go func() {
			slow <- e.trigger(models.TriggerInput{Secret: e.secret, Code: "click", DeviceID: "late", URL: "https://x.example/late"})
		}()
		<-inCommit
		later := make(chan models.TriggerResult, 1)
		go func() {
			later <- other.Trigger(e.ctx, []models.TriggerInput{{Secret: e.secret, AppPublicID: e.app.PublicID, Code: "view", DeviceID: "later"}})[0]
		}()
		if db.Dialector.Name() == "mysql" {
			// SQLite's one connection is the slow commit's until it commits.
			if res := <-later; !res.Accepted {
				t.Fatalf("later trigger: %+v", res)
			}
		}
		drained := make(chan error)
		go func() { drained <- log.Drain(e.ctx) }()
		time.Sleep(300 * time.Millisecond) // the seal waits for the slow commit
		releaseOnce.Do(func() { close(release) })
		res := <-slow
		if err := <-drained; err != nil {
			t.Fatal(err)
		}
		if !res.Accepted {
			t.Fatalf("slow trigger: %+v", res)
		}
		if err := log.Drain(e.ctx); err != nil {
			t.Fatal(err)
		}
		if pos := models.RollupsWatermark(db); pos < res.EventID {
			t.Fatalf("watermark %d did not pass the slow event %d", pos, res.EventID)
		}
		if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
			t.Fatal(err)
		}
		if n := e.countEvents("device_id IN ('late', 'later')"); n != 2 {
			t.Fatalf("%d of the 2 events stored", n)
		}
	})
}

// A group commit whose ids were sealed over before it claimed its slot (a
// later event from another replica's writer was derived meanwhile) is
// written again with ids above the seal, and derived like any other.
func TestSealedOverCommitIsRetried(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newQuietEnv(t, db)
		other := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{NoDerive: true})
		defer other.Close()
		log := models.NewEventLog(db, models.EventLogOptions{})
		log.Add(models.RollupsConsumer())
		defer log.Close()

		planned, release := make(chan struct{}), make(chan struct{})
		var releaseOnce sync.Once
		defer releaseOnce.Do(func() { close(release) })
		var first atomic.Bool
		restore := models.SetWriterHooks(func() {
			if first.CompareAndSwap(false, true) { // the first group commit only
				close(planned)
				<-release
			}
		}, nil)
		defer restore()
		done := make(chan models.TriggerResult)
		go func() {
			done <- e.trigger(models.TriggerInput{Secret: e.secret, Code: "view", DeviceID: "sealed", URL: "https://x.example/s"})
		}()
		<-planned // the batch has its ids
		if res := other.Trigger(e.ctx, []models.TriggerInput{{Secret: e.secret, AppPublicID: e.app.PublicID, Code: "click", DeviceID: "later"}})[0]; !res.Accepted {
			t.Fatalf("later trigger: %+v", res)
		}
		if err := log.Drain(e.ctx); err != nil { // seals up to now, past the held batch's ids
			t.Fatal(err)
		}
		sealed := models.RollupsWatermark(db)
		releaseOnce.Do(func() { close(release) })
		res := <-done
		if !res.Accepted || res.EventID <= sealed {
			t.Fatalf("trigger sealed over: %+v, seal %d", res, sealed)
		}
		if s := e.writer.Stats(); s.Retries == 0 || s.Events != 1 {
			t.Fatalf("writer stats %+v", s)
		}
		if err := log.Drain(e.ctx); err != nil {
			t.Fatal(err)
		}
		if pos := models.RollupsWatermark(db); pos < res.EventID {
			t.Fatalf("watermark %d did not pass the event %d", pos, res.EventID)
		}
		if err := models.RollupsMatchEvents(e.ctx, db, e.app.ID); err != nil {
			t.Fatal(err)
		}
	})
}

// A consumer reports how many events wait past its watermark (the lag
// metric's crumbs_derived_lag_events), and how long the oldest has waited.
func TestConsumerReportsWhatIsBehind(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newQuietEnv(t, db)
		name := fmt.Sprintf("behind-%d", time.Now().UnixNano())
		log := models.NewEventLog(db, models.EventLogOptions{})
		defer log.Close()
		var derived atomic.Int64
		// The database is shared with the package's other tests, whose
		// leftovers (late commits, ids made ahead of the clock) this global
		// consumer derives too: derived counts this test's app only.
		log.Add(models.LogConsumer{Name: name, Columns: "id, app_id", StartAtEnd: true,
			Derive: func(_ context.Context, _ *gorm.DB, events []*models.Event) (func(*gorm.DB) error, error) {
				own := 0
				for _, ev := range events {
					if ev.AppID == e.app.ID {
						own++
					}
				}
				return func(*gorm.DB) error { derived.Add(int64(own)); return nil }, nil
			}})
		behind := func() models.ConsumerStats {
			t.Helper()
			if err := log.CountBehind(e.ctx); err != nil {
				t.Fatal(err)
			}
			s, ok := log.StatsOf(name)
			if !ok || !s.Holding {
				t.Fatalf("stats %+v %v", s, ok)
			}
			return s
		}
		if s := behind(); s.Behind != 0 {
			t.Fatalf("a new consumer starting at the end: %d behind", s.Behind)
		}
		for i := range 7 {
			e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: fmt.Sprint("d-", i), Secret: e.secret})
		}
		if s := behind(); s.Behind != 7 {
			t.Fatalf("%d behind, want the 7 stored", s.Behind)
		}
		// Step until nothing is behind; another test's event stored with an
		// id ahead of the clock is derived once the clock passes it.
		var s models.ConsumerStats
		for deadline := time.Now().Add(10 * time.Second); ; {
			for more := true; more; {
				var err error
				if more, err = log.Step(e.ctx); err != nil {
					t.Fatal(err)
				}
			}
			if s = behind(); s.Behind == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if s.Behind != 0 || s.Lag != 0 || derived.Load() != 7 || s.Events < 7 {
			t.Fatalf("after deriving: %+v, %d of this app's derived", s, derived.Load())
		}
	})
}

// A consumer passed to the writer (as automations and retention will be)
// runs beside the rollups consumer and sees every event stored after it
// started exactly once; closing the writer derives what was stored.
func TestWriterRunsMoreConsumers(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		ctx := context.Background()
		owner := newUser(t, db)
		name := "More consumers " + t.Name()
		app, secret, err := models.CreateApp(ctx, db, owner, models.AppInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		seen := map[uint64]int{}
		consumer := models.LogConsumer{Name: fmt.Sprintf("recorder-%d", time.Now().UnixNano()), Columns: "id, app_id", StartAtEnd: true,
			Derive: func(_ context.Context, _ *gorm.DB, events []*models.Event) (func(*gorm.DB) error, error) {
				return func(*gorm.DB) error {
					mu.Lock()
					defer mu.Unlock()
					for _, e := range events {
						if e.AppID == app.ID {
							seen[e.ID]++
						}
					}
					return nil
				}, nil
			}}
		w := models.NewWriter(db, models.NewCatalog(db, time.Minute), models.WriterOptions{Consumers: []models.LogConsumer{consumer},
			EventLog: models.EventLogOptions{Interval: 10 * time.Millisecond, SealMargin: time.Millisecond, MinAge: time.Millisecond}})
		if _, ok := w.EventLog().StatsOf(consumer.Name); !ok {
			t.Fatal("the writer does not run the consumer")
		}
		var ids []uint64
		for i := range 20 {
			r := w.Trigger(ctx, []models.TriggerInput{{AppPublicID: app.PublicID, DeviceID: fmt.Sprint("d-", i%3), Code: "view", Secret: secret}})[0]
			if !r.Accepted {
				t.Fatal(r.Err)
			}
			ids = append(ids, r.EventID)
		}
		w.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if seen[id] != 1 {
				t.Fatalf("event %d derived %d times", id, seen[id])
			}
		}
		if len(seen) != len(ids) {
			t.Fatalf("derived %d events, stored %d", len(seen), len(ids))
		}
		if pos := models.RollupsWatermark(db); pos < ids[len(ids)-1] {
			t.Fatalf("rollups watermark %d behind the last event %d", pos, ids[len(ids)-1])
		}
	})
}
