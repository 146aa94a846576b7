package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/server/cmd/loadgen/bare"
	"gorm.io/gorm"
)

// compare runs Crumbs and the references the issue measures it against in
// one run, interleaved round by round, on each store given, and prints
// every figure with its ratio:
//
//   - trigger over GraphQL, 64 connections, against a bare gqlgen mutation
//     doing a group-commit INSERT (bare/), both as separate processes;
//   - the JSON endpoint, 64 connections (target: 15,000 events/s);
//   - triggerBatch of 500, 8 connections, against multi-row INSERTs of
//     1,000 rows from 4 clients straight into a table like events;
//   - the server's RSS, its CPU per event, the database's CPU per event,
//     and the lag of derived data (acknowledgement to rollups) at each load;
//   - catch-up: how fast rollups are derived for a backlog.
type compareOptions struct {
	stores    []string
	rounds    int
	duration  time.Duration
	serverBin string
	backlog   int
	devices   int
	codes     int
	rules     int    // enabled automation rules in the rules measurement
	only      string // comma-separated substrings of the measurements to run
}

func runCompare(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadgen compare", flag.ContinueOnError)
	var o compareOptions
	var stores string
	fs.StringVar(&stores, "stores", "mysql://root@127.0.0.1:3306/,sqlite:", "comma-separated stores: a MySQL server URL (databases are made and dropped there) and/or sqlite: (temporary files)")
	fs.IntVar(&o.rounds, "rounds", 3, "interleaved rounds")
	fs.DurationVar(&o.duration, "d", 10*time.Second, "duration of each measurement")
	fs.StringVar(&o.serverBin, "server-bin", "", "a built Crumbs server (default: go build ./server)")
	fs.IntVar(&o.backlog, "backlog", 300000, "events in the catch-up backlog (0 skips it)")
	fs.IntVar(&o.devices, "devices", 100000, "distinct device ids")
	fs.IntVar(&o.codes, "codes", 10, "distinct event codes")
	fs.IntVar(&o.rules, "rules", 10, "enabled automation rules (webhooks to a receiver in loadgen) on a tenth of the events in the rules measurements (each on that tenth, or each on a hundredth and together on that tenth); 0 skips them")
	fs.StringVar(&o.only, "steps", "", "comma-separated substrings of the measurements to run, e.g. \"crumbs trigger\" (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	o.stores = strings.Split(stores, ",")
	if o.serverBin == "" {
		dir, err := os.MkdirTemp("", "crumbs-bench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.serverBin = filepath.Join(dir, "crumbs")
		build := exec.Command("go", "build", "-o", o.serverBin, "./server")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("go build ./server (run from the repository root, or pass -server-bin): %w", err)
		}
	}
	ctx := context.Background()
	var envs []*benchEnv
	defer func() {
		for _, e := range envs {
			e.close()
		}
	}()
	for _, store := range o.stores {
		e, err := newBenchEnv(ctx, o, strings.TrimSpace(store))
		if err != nil {
			return fmt.Errorf("%s: %w", store, err)
		}
		envs = append(envs, e)
	}
	fmt.Fprintf(out, "loadgen compare: %d rounds of %s per measurement, interleaved; %s\n", o.rounds, o.duration, machine())
	results := map[string][]stepResult{}
	for round := 1; round <= o.rounds; round++ {
		for _, e := range envs {
			for _, s := range e.steps() {
				r, err := s.run(ctx)
				if err != nil {
					return fmt.Errorf("%s %s: %w", e.name, s.name, err)
				}
				r.round = round
				key := e.name + "\t" + s.name
				results[key] = append(results[key], r)
				fmt.Fprintf(out, "round %d  %-7s %-44s %s\n", round, e.name, s.name, r)
			}
		}
	}
	for _, e := range envs {
		if o.backlog > 0 {
			r, err := e.catchUp(ctx)
			if err != nil {
				return fmt.Errorf("%s catch-up: %w", e.name, err)
			}
			results[e.name+"\tcatch-up"] = []stepResult{r}
		}
	}
	report(out, o, envs, results)
	return nil
}

// stepResult is one measurement.
type stepResult struct {
	round            int
	events           int
	elapsed          time.Duration
	p50, p99         time.Duration
	failed           int
	rssMax           int64   // bytes, of the measured server
	serverCPU, dbCPU float64 // seconds
	lags             []time.Duration
	drain            time.Duration // rules: until every delivery was attempted
	delivered        int64         // rules: webhooks received for the measurement
}

func (r stepResult) rate() float64 { return float64(r.events) / r.elapsed.Seconds() }

func (r stepResult) lagP99() time.Duration { return percentile(r.lags, 0.99) }

func (r stepResult) String() string {
	s := fmt.Sprintf("%8.0f events/s  p50 %7s  p99 %7s", r.rate(), r.p50.Round(10*time.Microsecond), r.p99.Round(10*time.Microsecond))
	if r.rssMax > 0 {
		s += fmt.Sprintf("  rss %4d MB", r.rssMax>>20)
	}
	if r.events > 0 && r.serverCPU > 0 {
		s += fmt.Sprintf("  cpu/event %3.0f µs server", r.serverCPU/float64(r.events)*1e6)
	}
	if r.events > 0 && r.dbCPU > 0 {
		s += fmt.Sprintf(" %3.0f µs db", r.dbCPU/float64(r.events)*1e6)
	}
	if len(r.lags) > 0 {
		s += fmt.Sprintf("  derived lag p99 %s", r.lagP99().Round(time.Millisecond))
	}
	if r.failed > 0 {
		s += fmt.Sprintf("  %d FAILED", r.failed)
	}
	return s
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

type step struct {
	name string
	run  func(ctx context.Context) (stepResult, error)
}

// benchEnv is one store with a Crumbs server and a reference server on it.
type benchEnv struct {
	o          compareOptions
	name       string
	crumbsURL  string // database URL of Crumbs
	refURL     string // database URL of the references
	cleanup    []func()
	crumbs     *process
	reference  *process
	refDB      *sql.DB
	crumbsDB   *gorm.DB
	appID      string
	secret     string
	client     *http.Client
	dbPID      int
	mysql      bool
	adminEmail string
	jwtSecret  string // the server runs as in production, which needs one
	stepSeq    int
	rules      *rulesLoad
}

func newBenchEnv(ctx context.Context, o compareOptions, store string) (*benchEnv, error) {
	e := &benchEnv{o: o, client: &http.Client{Transport: &http.Transport{MaxIdleConns: 128, MaxIdleConnsPerHost: 128, IdleConnTimeout: time.Minute}, Timeout: time.Minute},
		jwtSecret: randomHex(32)}
	suffix := fmt.Sprintf("%d", os.Getpid())
	switch {
	case strings.HasPrefix(store, "sqlite:"):
		dir, err := os.MkdirTemp("", "crumbs-bench-sqlite")
		if err != nil {
			return nil, err
		}
		e.cleanup = append(e.cleanup, func() { os.RemoveAll(dir) })
		e.name, e.crumbsURL, e.refURL = "sqlite", "sqlite:"+filepath.Join(dir, "crumbs.db"), "sqlite:"+filepath.Join(dir, "ref.db")
	case strings.HasPrefix(store, "mysql://"):
		e.name, e.mysql = "mariadb", true
		admin, err := models.Open(ctx, strings.TrimSuffix(store, "/")+"/mysql", models.DBOptions{MaxOpenConns: 1})
		if err != nil {
			return nil, err
		}
		var version string
		admin.Raw("SELECT VERSION()").Scan(&version)
		if !strings.Contains(strings.ToLower(version), "mariadb") {
			e.name = "mysql"
		}
		for _, db := range []string{"crumbs_bench_" + suffix, "crumbs_bench_ref_" + suffix} {
			if err := admin.Exec("CREATE DATABASE " + db + " CHARACTER SET utf8mb4 COLLATE utf8mb4_bin").Error; err != nil {
				return nil, err
			}
			e.cleanup = append(e.cleanup, func() { admin.Exec("DROP DATABASE IF EXISTS " + db) })
		}
		base := strings.TrimSuffix(store, "/")
		e.crumbsURL, e.refURL = base+"/crumbs_bench_"+suffix, base+"/crumbs_bench_ref_"+suffix
		e.dbPID = findProcess("mariadbd", "mysqld")
	default:
		return nil, fmt.Errorf("unsupported store %q", store)
	}
	// References: a table like events, and the bare gqlgen server.
	refGorm, err := models.Open(ctx, e.refURL, models.DBOptions{MaxOpenConns: 8})
	if err != nil {
		return nil, err
	}
	e.refDB, _ = refGorm.DB()
	for _, q := range bare.Table(e.mysql) {
		if _, err := e.refDB.ExecContext(ctx, q); err != nil {
			return nil, err
		}
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	if e.reference, err = start(self, []string{"serve-reference", "-database-url", e.refURL}, nil, "listening on "); err != nil {
		return nil, err
	}
	// Crumbs: a user, the server, an app with the codes the load uses.
	e.adminEmail = "bench@example.com"
	env := []string{"CRUMBS_DATABASE_URL=" + e.crumbsURL, "CRUMBS_ADMIN_PASSWORD=bench password 123"}
	admin := exec.Command(o.serverBin, "admin", "create", "--email", e.adminEmail)
	admin.Env = append(os.Environ(), env...)
	if out, err := admin.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("admin create: %v: %s", err, out)
	}
	if err := e.startCrumbs(); err != nil {
		return nil, err
	}
	lo := options{target: e.crumbs.url + "/graphql", email: e.adminEmail, password: "bench password 123", codes: o.codes}
	if e.appID, e.secret, err = setup(e.client, lo); err != nil {
		return nil, err
	}
	if e.crumbsDB, err = models.Open(ctx, e.crumbsURL, models.DBOptions{MaxOpenConns: 2}); err != nil {
		return nil, err
	}
	if o.rules > 0 {
		if err := e.setupRules(); err != nil {
			return nil, fmt.Errorf("rules: %w", err)
		}
	}
	return e, nil
}

func (e *benchEnv) startCrumbs() error {
	env := []string{"CRUMBS_DATABASE_URL=" + e.crumbsURL, "CRUMBS_ADDR=127.0.0.1:0", "CRUMBS_LOG_LEVEL=warn",
		"CRUMBS_ENV=production", "CRUMBS_JWT_SECRET=" + e.jwtSecret, "CRUMBS_WEBHOOK_ALLOW_PRIVATE=true",
		"CRUMBS_WEBHOOK_RATE=0"} // the drain measures the dispatcher, not the rate cap
	var err error
	e.crumbs, err = start(e.o.serverBin, nil, env, "crumbs listening on ")
	return err
}

func (e *benchEnv) close() {
	for _, p := range []*process{e.crumbs, e.reference} {
		if p != nil {
			p.stop()
		}
	}
	if e.refDB != nil {
		e.refDB.Close()
	}
	if e.crumbsDB != nil {
		if db, err := e.crumbsDB.DB(); err == nil {
			db.Close()
		}
	}
	for _, f := range slices.Backward(e.cleanup) {
		f()
	}
}

func (e *benchEnv) steps() []step {
	d := e.o.duration
	e.stepSeq++
	// Every measurement sends messageIds of its own.
	lo := func(kind string, batch int) options {
		return options{devices: e.o.devices, codes: e.o.codes, batch: batch, prefix: fmt.Sprintf("%s-%d%s", runID, e.stepSeq, kind)}
	}
	bareLoad, trigger, json, batch, ruled, spread, alone := lo("b", 0), lo("t", 0), lo("j", 0), lo("m", 500), lo("r", 0), lo("s", 0), lo("a", 0)
	all := []step{
		{"bare gqlgen group-commit mutation, c=64", func(ctx context.Context) (stepResult, error) {
			return e.drive(ctx, e.reference, 64, d, false, func(w, seq int) (string, []byte) {
				return "/graphql", requestBody(bareLoad, e.appID, w, seq)
			})
		}},
		{"crumbs trigger (GraphQL), c=64", func(ctx context.Context) (stepResult, error) {
			return e.drive(ctx, e.crumbs, 64, d, true, func(w, seq int) (string, []byte) {
				return "/graphql", requestBody(trigger, e.appID, w, seq)
			})
		}},
		{fmt.Sprintf("crumbs trigger with %d rules on 10%% of events (GraphQL), c=64", e.o.rules), func(ctx context.Context) (stepResult, error) {
			return e.driveRules(ctx, ruled, false)
		}},
		{fmt.Sprintf("crumbs trigger with %d rules on 1%% of events each, 10%% in all (GraphQL), c=64", e.o.rules), func(ctx context.Context) (stepResult, error) {
			return e.driveRules(ctx, spread, true)
		}},
		{fmt.Sprintf("webhooks alone: crumbs trigger without rules while loadgen sends the %d webhooks of 10%% of events, c=64", e.o.rules), func(ctx context.Context) (stepResult, error) {
			if e.rules == nil {
				return stepResult{}, fmt.Errorf("no rules app (-rules 0)")
			}
			hooks := e.rules.startWebhooksAlone()
			before := e.rules.received.Load()
			var seqs atomic.Int64
			r, err := e.drive(ctx, e.crumbs, 64, d, true, func(w, seq int) (string, []byte) {
				if seq%e.o.codes == 0 { // load_0, as the rules match
					hooks.send(seqs.Add(1), e.o.rules)
				}
				return "/graphql", requestBody(alone, e.appID, w, seq)
			})
			r.drain = hooks.drain()
			r.delivered = e.rules.received.Load() - before
			return r, err
		}},
		{"crumbs JSON endpoint, one event, c=64", func(ctx context.Context) (stepResult, error) {
			return e.drive(ctx, e.crumbs, 64, d, true, func(w, seq int) (string, []byte) {
				return "/api/v1/apps/" + e.appID + "/events", jsonBody(json, w, seq)
			})
		}},
		{"multi-row INSERT, 4 clients x 1,000 rows", func(ctx context.Context) (stepResult, error) {
			return e.multiRow(ctx, 4, 1000, d)
		}},
		{"crumbs triggerBatch of 500 (GraphQL), c=8", func(ctx context.Context) (stepResult, error) {
			return e.drive(ctx, e.crumbs, 8, d, true, func(w, seq int) (string, []byte) {
				return "/graphql", requestBody(batch, e.appID, w, seq)
			})
		}},
	}
	var out []step
	for _, s := range all {
		if e.o.wanted(s.name) && (e.o.rules > 0 || (!strings.Contains(s.name, "rules") && !strings.HasPrefix(s.name, "webhooks alone"))) {
			out = append(out, s)
		}
	}
	return out
}

// driveRules drives the app whose rules each match the same tenth of the
// events, or with spread the one whose rules match a hundredth each, then
// waits until their deliveries are done and counts the webhooks received.
func (e *benchEnv) driveRules(ctx context.Context, load options, spread bool) (stepResult, error) {
	if e.rules == nil {
		return stepResult{}, fmt.Errorf("no rules app (-rules 0)")
	}
	appID, secret := e.rules.appID, e.rules.secret
	if spread {
		appID, secret = e.rules.spreadAppID, e.rules.spreadSecret
	}
	before := e.rules.received.Load()
	r, err := e.driveAs(ctx, e.crumbs, secret, 64, e.o.duration, true, func(w, seq int) (string, []byte) {
		return "/graphql", requestBody(load, appID, w, seq)
	})
	if err == nil {
		r.drain, err = e.drainDeliveries(ctx)
		r.delivered = e.rules.received.Load() - before
	}
	return r, err
}

// drive sends requests from c connections for d and measures them, the
// server process's RSS and CPU, and, for Crumbs, how long its acknowledged
// events wait for the rollups consumer to derive them.
func (e *benchEnv) drive(ctx context.Context, p *process, c int, d time.Duration, crumbs bool, body func(worker, seq int) (string, []byte)) (stepResult, error) {
	return e.driveAs(ctx, p, e.secret, c, d, crumbs, body)
}

// driveAs is drive with the secret key of another app.
func (e *benchEnv) driveAs(ctx context.Context, p *process, secret string, c int, d time.Duration, crumbs bool, body func(worker, seq int) (string, []byte)) (stepResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var r stepResult
	var latencies []time.Duration
	var firstErr error
	lag := newLagProbe()
	stopSampling := e.sample(p, &r, crumbs, lag)
	cpu0, db0 := processCPU(p.pid()), processCPU(e.dbPID)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range c {
		wg.Go(func() {
			var mine []time.Duration
			n, failed := 0, 0
			for seq := 0; ctx.Err() == nil; seq++ {
				path, b := body(w, seq)
				t0 := time.Now()
				accepted, ids, err := postAny(e.client, p.url+path, secret, b)
				if ctx.Err() != nil && err != nil {
					break
				}
				mine = append(mine, time.Since(t0))
				n += accepted
				if err != nil {
					failed++
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
				if crumbs && seq%20 == 0 && len(ids) > 0 {
					lag.acked(ids[len(ids)-1], time.Now())
				}
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			r.events += n
			r.failed += failed
			mu.Unlock()
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.serverCPU, r.dbCPU = processCPU(p.pid())-cpu0, processCPU(e.dbPID)-db0
	if crumbs {
		// Wait (up to 30 s) for the consumer to derive what was acknowledged.
		deadline := time.Now().Add(30 * time.Second)
		for lag.pending() > 0 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopSampling()
	r.lags = lag.lags()
	r.p50, r.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
	if firstErr != nil && r.failed*100 > len(latencies) {
		return r, fmt.Errorf("%d of %d requests failed, first: %w", r.failed, len(latencies), firstErr)
	}
	return r, nil
}

// sample records the process's peak RSS and, for Crumbs, polls the rollups
// watermark to see when acknowledged events are derived.
func (e *benchEnv) sample(p *process, r *stepResult, crumbs bool, lag *lagProbe) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(25 * time.Millisecond)
		defer tick.Stop()
		for {
			r.rssMax = max(r.rssMax, processRSS(p.pid()))
			if crumbs {
				var pos uint64
				e.crumbsDB.Raw("SELECT position FROM event_log_consumers WHERE name = 'rollups'").Scan(&pos)
				lag.derived(pos, time.Now())
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// lagProbe pairs acknowledged event ids with the time the watermark passed them.
type lagProbe struct {
	mu    sync.Mutex
	acks  map[uint64]time.Time
	found []time.Duration
}

func newLagProbe() *lagProbe { return &lagProbe{acks: map[uint64]time.Time{}} }

func (l *lagProbe) acked(id uint64, at time.Time) {
	l.mu.Lock()
	l.acks[id] = at
	l.mu.Unlock()
}

func (l *lagProbe) derived(position uint64, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, acked := range l.acks {
		if id <= position {
			l.found = append(l.found, max(at.Sub(acked), 0))
			delete(l.acks, id)
		}
	}
}

func (l *lagProbe) pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acks)
}

func (l *lagProbe) lags() []time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.found)
}

// multiRow inserts rows of events' shape, rows at a time, from clients
// connections, straight into the store: the ceiling for batched ingestion.
func (e *benchEnv) multiRow(ctx context.Context, clients, rows int, d time.Duration) (stepResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	query := bare.Insert(rows)
	var mu sync.Mutex
	var r stepResult
	var latencies []time.Duration
	db0 := processCPU(e.dbPID)
	start := time.Now()
	var wg sync.WaitGroup
	var firstErr error
	for w := range clients {
		wg.Go(func() {
			args := make([]any, 0, rows*12)
			for seq := 0; ctx.Err() == nil; seq++ {
				args = args[:0]
				now := time.Now().UTC()
				for i := range rows {
					n := seq*rows + i
					msg := fmt.Sprintf("%s-r%d-%d-%d", runID, start.UnixNano(), w, n)
					args = append(args, bare.NextID(), 1, 1+n%e.o.codes, fmt.Sprintf("dev-%d", (w*7919+n)%e.o.devices), msg,
						fmt.Sprintf("https://example.com/page/%d", n%50), "", "", fmt.Sprintf(`{"n":%d}`, n), "api", now, now)
				}
				t0 := time.Now()
				_, err := e.refDB.ExecContext(context.Background(), query, args...)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
				} else {
					r.events += rows
					latencies = append(latencies, time.Since(t0))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	r.elapsed = time.Since(start)
	r.dbCPU = processCPU(e.dbPID) - db0
	r.p50, r.p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
	return r, firstErr
}

// catchUp stops Crumbs, stores a backlog of events spread over an hour
// behind its back (as after a long outage of every consumer), starts it
// again and measures how fast the rollups consumer derives the backlog.
func (e *benchEnv) catchUp(ctx context.Context) (stepResult, error) {
	e.crumbs.stop()
	var app models.App
	if err := e.crumbsDB.Where("public_id = ?", e.appID).Take(&app).Error; err != nil {
		return stepResult{}, err
	}
	defs, err := models.EventDefinitions(ctx, e.crumbsDB, app.ID, nil)
	if err != nil {
		return stepResult{}, err
	}
	hour := time.Now().UTC().Add(-time.Hour)
	for start := 0; start < e.o.backlog; start += 5000 {
		batch := make([]*models.Event, 0, 5000)
		for i := start; i < min(start+5000, e.o.backlog); i++ {
			batch = append(batch, &models.Event{AppID: app.ID, DefinitionID: defs[i%len(defs)].ID,
				DeviceID: fmt.Sprintf("dev-%d", i%e.o.devices), URL: fmt.Sprintf("https://example.com/page/%d", i%50), Source: "api",
				OccurredAt: hour.Add(time.Duration(i) * time.Hour / time.Duration(e.o.backlog)), ReceivedAt: time.Now()})
		}
		if err := models.ImportEvents(ctx, e.crumbsDB, batch); err != nil {
			return stepResult{}, err
		}
	}
	var newest uint64
	e.crumbsDB.Raw("SELECT MAX(id) FROM events").Scan(&newest)
	start := time.Now()
	if err := e.startCrumbs(); err != nil {
		return stepResult{}, err
	}
	r := stepResult{events: e.o.backlog}
	stop := e.sample(e.crumbs, &r, false, nil)
	for {
		var pos uint64
		e.crumbsDB.Raw("SELECT position FROM event_log_consumers WHERE name = 'rollups'").Scan(&pos)
		if pos >= newest {
			break
		}
		if time.Since(start) > 10*time.Minute {
			stop()
			return r, errors.New("the backlog was not derived within 10 minutes")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.elapsed = time.Since(start)
	stop()
	return r, nil
}

// process is a server the bench started.
type process struct {
	cmd *exec.Cmd
	url string
}

// start runs bin and waits for the line that says where it listens.
func start(bin string, args, env []string, ready string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if _, url, ok := strings.Cut(lines.Text(), ready); ok {
			go io.Copy(io.Discard, stdout)
			return &process{cmd: cmd, url: strings.TrimSpace(url)}, nil
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	return nil, fmt.Errorf("%s exited before it listened", bin)
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) stop() {
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
	}
}

// serveReference runs the bare gqlgen reference server (a child of compare).
func serveReference(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadgen serve-reference", flag.ContinueOnError)
	url := fs.String("database-url", "", "the references' database")
	if err := fs.Parse(args); err != nil {
		return err
	}
	db, err := models.Open(context.Background(), *url, models.DBOptions{MaxOpenConns: 4})
	if err != nil {
		return err
	}
	sqlDB, _ := db.DB()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "listening on http://%s\n", ln.Addr())
	return http.Serve(ln, bare.NewHandler(sqlDB))
}

// processRSS is a process's resident set in bytes (Linux).
func processRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// processCPU is a process's user and system CPU time in seconds (Linux).
func processCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100 // USER_HZ
}

// findProcess returns the pid of the first process with one of the names.
func findProcess(names ...string) int {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if slices.Contains(names, strings.TrimSpace(string(comm))) {
			return pid
		}
	}
	return 0
}

func machine() string {
	host, _ := os.Hostname()
	var load string
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("host %s, %d CPUs, load %s", host, numCPU(), load)
}
