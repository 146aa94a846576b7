package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"gorm.io/gorm"
)

// Writer stores triggers with group commit: requests wait while one goroutine
// turns everything that arrived meanwhile into one transaction of multi-row
// statements, then every waiting request is answered after the commit. Nothing
// is acknowledged before it is durable, and throughput grows with load
// because each commit (and its fsync) is shared by the whole batch.
//
// The next batch forms from everything that queued while one committed, so
// more connections make bigger commits rather than a longer queue. With
// WriterOptions.Writers above 1, commits also pipeline: while one commits,
// the next forms and sends its statements, which wait inside the store only
// for the rows the first still holds.
type Writer struct {
	db       *gorm.DB
	mysql    bool
	runner   txRunner
	catalog  *Catalog
	limits   *RateLimits
	devices  *recentDevices
	ids      *idGenerator
	maxBatch int
	maxBytes int
	delay    time.Duration
	timeout  time.Duration
	log      *slog.Logger

	// stage is held from forming a batch until its statements have run, so
	// batches form and reach the store one after the other.
	stage  sync.Mutex
	queued *semaphore.Weighted // bytes of triggers queued or in flight
	stats  writerStats

	mu      sync.RWMutex
	closed  bool
	queue   chan *job
	running sync.WaitGroup

	// events derives rollups (and whatever else is registered) from the
	// events this and every other replica store; nil when disabled.
	events *EventLog
}

type job struct {
	items []*pending
	bytes int64
	done  chan struct{}
}

// WriterOptions tune group commit.
type WriterOptions struct {
	// MaxBatch caps the events in one transaction (default 2000).
	MaxBatch int
	// MaxBatchBytes caps the bytes of triggers in one transaction (default
	// 4 MiB, and never more than a third of MySQL's max_allowed_packet); a
	// single larger request still makes one transaction of its own.
	MaxBatchBytes int
	// MaxQueueBytes bounds the triggers waiting for or in a group commit
	// (default 32 MiB); requests beyond it wait to be queued.
	MaxQueueBytes int64
	// Writers is how many group commits may be in flight at once (default
	// 1). With more, the next batch forms and sends its statements while one
	// commits, waiting in the store for the definitions' rows the first
	// holds. Measured on MariaDB with 64 connections at once: one writer
	// stored 2,943 events/s in commits of 31 events, two 1,954 in commits
	// of 24 (their COMMITs took 8.6 ms instead of 3.6): overlapping gains
	// less than smaller batches cost. More help when traffic spreads over
	// apps whose definitions differ.
	Writers int
	// Delay is how long the writer waits for more requests after the first
	// one of a batch. Zero means: take what has queued up while the previous
	// commit ran, which already batches well under load.
	Delay time.Duration
	// CommitTimeout bounds one group commit, retries included (default
	// 30s). Past it the transaction is rolled back and its triggers are
	// answered with the error; none of them was acknowledged.
	CommitTimeout time.Duration
	Log           *slog.Logger
	// Limits rate-limits triggers per client IP and per device; nil means none.
	Limits *RateLimits
	// NoDerive leaves deriving rollups from the stored events to other
	// replicas (or another EventLog); by default the writer runs the
	// rollups consumer of the event log, as every replica should.
	NoDerive bool
	// EventLog tunes the event log consumers the writer runs.
	EventLog EventLogOptions
}

// NewWriter starts a writer; Close stops it after storing what was submitted.
func NewWriter(db *gorm.DB, catalog *Catalog, opts WriterOptions) *Writer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 2000
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 4 << 20
	}
	if opts.MaxQueueBytes <= 0 {
		opts.MaxQueueBytes = 32 << 20
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 30 * time.Second
	}
	if opts.Writers <= 0 {
		opts.Writers = 1
	}
	runner, err := newTxRunner(db, opts.Writers)
	if err != nil {
		// The store answers, or Open would have failed: use the shared pool.
		opts.Log.Warn("writer: no connections of its own; one round trip per statement", "err", err)
		runner = &sqliteRunner{db: db}
	}
	if r, ok := runner.(*mysqlRunner); ok {
		opts.MaxBatchBytes = min(opts.MaxBatchBytes, r.maxPacket/3)
	}
	w := &Writer{
		db: db, mysql: isMySQL(db), runner: runner, catalog: catalog, limits: opts.Limits,
		devices: newRecentDevices(db), ids: newIDGenerator(),
		maxBatch: opts.MaxBatch, maxBytes: opts.MaxBatchBytes, delay: opts.Delay, timeout: opts.CommitTimeout, log: opts.Log,
		queued: semaphore.NewWeighted(opts.MaxQueueBytes), stats: newWriterStats(opts.MaxQueueBytes),
		queue: make(chan *job, 4096),
	}
	base := int(nextSlot.Add(int64(opts.Writers))) - opts.Writers
	for i := range opts.Writers {
		slot := (base + i) % eventLogSlots
		w.running.Go(func() { w.run(slot) })
	}
	if !opts.NoDerive {
		if opts.EventLog.Log == nil {
			opts.EventLog.Log = opts.Log
		}
		w.events = NewEventLog(db, opts.EventLog)
		w.events.Start(RollupsConsumer())
	}
	return w
}

// Catalog returns the definition cache the writer resolves codes with.
func (w *Writer) Catalog() *Catalog { return w.catalog }

// EventLog returns the event log consumers the writer runs (nil with
// NoDerive), e.g. to add more or read their stats.
func (w *Writer) EventLog() *EventLog { return w.events }

// Close stores everything already submitted, derives what it can of it
// (within a few seconds), then stops the writer and its consumers.
func (w *Writer) Close() {
	w.mu.Lock()
	closing := !w.closed
	if closing {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
	w.running.Wait()
	if !closing {
		return
	}
	w.runner.close()
	if w.events != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := w.events.Drain(ctx); err != nil {
			w.log.Warn("deriving the last events before closing", "err", err)
		}
		cancel()
		w.events.Close()
	}
}

func (w *Writer) submit(ctx context.Context, items []*pending) error {
	j := &job{items: items, done: make(chan struct{})}
	for _, p := range items {
		j.bytes += int64(p.size())
	}
	// Bound what waits in memory: a request over the whole bound waits for
	// an empty queue.
	j.bytes = min(j.bytes, w.stats.queueLimit)
	if err := w.queued.Acquire(ctx, j.bytes); err != nil {
		return err
	}
	w.stats.enqueued(len(items), j.bytes)
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		w.queued.Release(j.bytes)
		w.stats.dequeued(len(items), j.bytes)
		return ErrShuttingDown
	}
	w.queue <- j // never blocks for long: the bytes bound keeps the queue short
	w.mu.RUnlock()
	// Once queued, the job is written even if the caller goes away; waiting
	// for it keeps the answer truthful.
	<-j.done
	return nil
}

func (w *Writer) run(slot int) {
	for {
		w.stage.Lock()
		batch, ok := w.collect()
		if !ok {
			w.stage.Unlock()
			return
		}
		start := time.Now()
		var once sync.Once
		staged := func() { once.Do(w.stage.Unlock) }
		events := w.commitSafely(slot, batch, staged)
		staged()
		w.stats.committed(events, time.Since(start))
		w.log.Debug("group commit", "requests", len(batch), "events", events, "took", time.Since(start))
		for _, j := range batch {
			w.queued.Release(j.bytes)
			w.stats.dequeued(len(j.items), j.bytes)
			close(j.done)
		}
	}
}

// collect waits for a job and adds what else is queued, up to the batch
// bounds. It reports false once the writer is closed and drained.
func (w *Writer) collect() ([]*job, bool) {
	first, ok := <-w.queue
	if !ok {
		return nil, false
	}
	batch, n, bytes := []*job{first}, len(first.items), first.bytes
	var timeout <-chan time.Time
	if w.delay > 0 {
		timeout = time.After(w.delay)
	}
	for n < w.maxBatch && bytes < int64(w.maxBytes) {
		var j *job
		select {
		case j, ok = <-w.queue:
		default:
			if timeout == nil {
				return batch, true
			}
			select {
			case j, ok = <-w.queue:
			case <-timeout:
				return batch, true
			}
		}
		if !ok {
			break
		}
		batch, n, bytes = append(batch, j), n+len(j.items), bytes+j.bytes
	}
	return batch, true
}

// commitSafely commits a batch and keeps the writer alive whatever happens:
// a panic fails the triggers not answered yet, and the writer goes on with
// the next batch. It returns how many events were stored.
func (w *Writer) commitSafely(slot int, batch []*job, staged func()) (stored int) {
	defer func() {
		if r := recover(); r != nil {
			err := newPanicError(r)
			w.log.Error("group commit panicked", "err", err, "stack", string(err.stack))
			for _, j := range batch {
				for _, p := range j.items {
					if !p.result.Accepted && p.result.Err == nil {
						p.result = TriggerResult{Err: err}
					}
				}
			}
		}
	}()
	return w.commit(slot, batch, staged)
}

// commit writes a batch. If it fails for a reason retrying cannot cure, each
// request is written on its own, so one bad request cannot sink the others;
// not when the store failed (a timeout, a lost connection), which would only
// fail again once per request.
func (w *Writer) commit(slot int, batch []*job, staged func()) int {
	var all []*pending
	for _, j := range batch {
		all = append(all, j.items...)
	}
	stored, err := w.write(slot, all, staged)
	if err == nil {
		return stored
	}
	if len(batch) == 1 || storeFault(err) {
		w.fail(all, err)
		return 0
	}
	stored = 0
	for _, j := range batch {
		n, err := w.write(slot, j.items, func() {})
		if err != nil {
			w.fail(j.items, err)
		}
		stored += n
	}
	return stored
}

func (w *Writer) fail(items []*pending, err error) {
	w.log.Error("storing triggers failed", "events", len(items), "err", err)
	w.stats.failed(len(items))
	for _, p := range items {
		p.result = TriggerResult{Err: err}
	}
}

// write stores items in one transaction, written again as often as the
// store surprises it (see writer_tx.go), and returns how many events it
// stored. staged is called once its statements have run.
func (w *Writer) write(slot int, items []*pending, staged func()) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), w.timeout)
	defer cancel()
	epoch := w.devices.epoch()
	for attempt := 0; ; attempt++ {
		if attempt == maxRounds {
			return 0, errTooManyRounds
		}
		if attempt > 0 {
			w.stats.retried()
		}
		c, err := w.attempt(ctx, slot, items, staged)
		switch {
		case err == nil:
			c.answer()
			w.devices.remember(c.devices, epoch, time.Now())
			return len(c.store), nil
		case errors.Is(err, errSurprise) && ctx.Err() == nil:
			continue
		case errors.Is(err, gorm.ErrDuplicatedKey):
			// An id another replica made too (SQLite reports it).
			w.ids.reseed()
		}
		if retryable(err) && !storeFault(err) && backoff(ctx, attempt) {
			continue
		}
		return 0, err
	}
}

// attempt runs one try at a group commit: its statements, their check and
// the COMMIT. A panic becomes its error, after a rollback.
func (w *Writer) attempt(ctx context.Context, slot int, items []*pending, staged func()) (c *commitPlan, err error) {
	var tx openTx
	defer func() {
		if r := recover(); r != nil {
			perr := newPanicError(r)
			w.log.Error("group commit panicked", "err", perr, "stack", string(perr.stack))
			if tx != nil {
				tx.rollback()
			}
			err = perr
		}
	}()
	c = w.plan(slot, items)
	if len(c.stmts) == 0 {
		return c, nil
	}
	w.announce(c.stmts)
	if hook := testHookBeforeStatements.Load(); hook != nil {
		(*hook)()
	}
	start := time.Now()
	tx, affected, err := w.runner.run(ctx, c.stmts)
	if err != nil {
		tx = nil // the runner rolled back
		return c, err
	}
	if s := c.check(affected); s != noSurprise {
		tx.rollback()
		tx = nil
		return c, w.explain(ctx, c, s)
	}
	statements := time.Since(start)
	staged()
	if hook := testHookBeforeCommit.Load(); hook != nil {
		(*hook)()
	}
	start = time.Now()
	err = tx.commit(ctx)
	tx = nil
	w.log.Debug("group commit phases", "statements", statements, "commit", time.Since(start), "events", len(c.store), "devices", len(c.devices))
	return c, err
}

// announce passes the statements through gorm's callbacks without running
// them (DryRun): they run on the writer's own connections, and this keeps
// them visible to whatever watches gorm's statements (tracing plugins,
// tests that inject faults).
func (w *Writer) announce(stmts []stmt) {
	dry := w.db.Session(&gorm.Session{DryRun: true, NewDB: true})
	for _, s := range stmts {
		dry.Exec(s.query, s.args...)
	}
}

// backoff waits before another attempt, and reports false if the commit's
// time ran out.
func backoff(ctx context.Context, attempt int) bool {
	d := time.Duration(1<<min(attempt, 6)) * time.Millisecond
	select {
	case <-time.After(d + rand.N(d)):
		return true
	case <-ctx.Done():
		return false
	}
}

// nextSlot spreads the writers of a process over the event log's slots;
// each process starts at a random one, so replicas rarely share.
var nextSlot = func() *atomic.Int64 {
	var n atomic.Int64
	n.Store(int64(rand.IntN(eventLogSlots)))
	return &n
}()

// Test hooks: run before a group commit sends its statements, and between
// its statements and its COMMIT.
var testHookBeforeStatements, testHookBeforeCommit atomicHook

// panicError is a panic recovered in the writer. Its text is for the log;
// callers see INTERNAL_SERVER_ERROR.
type panicError struct {
	value any
	stack []byte
}

func newPanicError(v any) *panicError { return &panicError{value: v, stack: debug.Stack()} }

func (e *panicError) Error() string { return fmt.Sprintf("models.Writer: panic: %v", e.value) }

// storeFault reports whether err says the store could not be reached or did
// not answer in time, rather than refusing this batch's content.
func storeFault(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
