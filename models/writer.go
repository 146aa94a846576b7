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
	bots     BotFilter
	origins  *originTally
	devices  *recentDevices
	ids      *idGenerator
	maxBatch int
	maxBytes int
	delay    time.Duration
	timeout  time.Duration
	log      *slog.Logger
	observer WriterObserver

	// stage is held from forming a batch until its statements have run, so
	// batches form and reach the store one after the other.
	stage  sync.Mutex
	queued *semaphore.Weighted // bytes of triggers queued or in flight
	stats  writerStats

	mu      sync.RWMutex
	closed  bool
	queue   chan *job
	running sync.WaitGroup

	// ctx ends every commit when the writer is aborted.
	ctx    context.Context
	cancel context.CancelFunc
	// inflight is the batch each writer goroutine is committing, for Abort.
	flightMu sync.Mutex
	inflight [][]*job
	stopOnce sync.Once

	// events derives rollups (and whatever else is registered) from the
	// events this and every other replica store; nil when disabled.
	events *EventLog
}

type job struct {
	items []*pending
	bytes int64
	// deadline is when the job's caller must have its answer: the writer's
	// timeout after it was submitted, time in the queue included.
	deadline time.Time
	done     chan struct{}
	once     sync.Once
	// err, when set, answers every item: the job was given up (see Abort)
	// and its items' results are not to be read.
	err error
}

// finish answers the job's caller, once: a job given up by Abort may still
// be finished by its writer later.
func (j *job) finish(err error) {
	j.once.Do(func() {
		j.err = err
		close(j.done)
	})
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
	// CommitTimeout bounds how long a trigger waits for its group commit,
	// time queued behind other commits and retries included (default 30s).
	// Past it the transaction is rolled back and its triggers are answered
	// UNAVAILABLE; none of them was acknowledged.
	CommitTimeout time.Duration
	Log           *slog.Logger
	// Limits rate-limits triggers per client IP and per device; nil means none.
	Limits *RateLimits
	// BotFilter refuses browser triggers of bot User-Agents (BOT_FILTERED);
	// the zero value filters none.
	BotFilter BotFilter
	// Observer is told about triggers and group commits (metrics); nil means none.
	Observer WriterObserver
	// NoDerive leaves deriving from the stored events to other replicas (or
	// another EventLog); by default the writer runs the event log's rollups
	// consumer and Consumers, as every replica should.
	NoDerive bool
	// Consumers are more event log consumers (automations, retention) to
	// run beside the rollups consumer; see LogConsumer.
	Consumers []LogConsumer
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
	if opts.Observer == nil {
		opts.Observer = noObserver{}
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
		observer: opts.Observer, bots: opts.BotFilter, origins: newOriginTally(),
		queued: semaphore.NewWeighted(opts.MaxQueueBytes), stats: newWriterStats(opts.MaxQueueBytes),
		queue: make(chan *job, 4096), inflight: make([][]*job, opts.Writers),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	go w.origins.run(db, w.mysql, min(opts.CommitTimeout, 10*time.Second), opts.Log)
	base := int(nextSlot.Add(int64(opts.Writers))) - opts.Writers
	for i := range opts.Writers {
		slot := (base + i) % eventLogSlots
		w.running.Go(func() { w.run(i, slot) })
	}
	if !opts.NoDerive {
		if opts.EventLog.Log == nil {
			opts.EventLog.Log = opts.Log
		}
		w.events = NewEventLog(db, opts.EventLog)
		w.events.Start(RollupsConsumer())
		for _, c := range opts.Consumers {
			w.events.Start(c)
		}
	}
	return w
}

// Catalog returns the definition cache the writer resolves codes with.
func (w *Writer) Catalog() *Catalog { return w.catalog }

// Limits returns the per-IP and per-device limits of anonymous writes, which
// identify shares with triggers.
func (w *Writer) Limits() *RateLimits { return w.limits }

// EventLog returns the event log consumers the writer runs (nil with
// NoDerive): add consumers with EventLog().Start, read their state with
// EventLog().Stats.
func (w *Writer) EventLog() *EventLog { return w.events }

// Close stores everything already submitted, derives what it can of it
// (within a few seconds), then stops the writer and its consumers.
func (w *Writer) Close() { w.Shutdown(context.Background()) }

// Shutdown is Close within ctx: if ctx ends first, the writer is aborted.
func (w *Writer) Shutdown(ctx context.Context) error {
	w.closeQueue()
	stopped := make(chan struct{})
	go func() {
		w.running.Wait()
		close(stopped)
	}()
	select {
	case <-stopped:
		w.stop(ctx)
		return nil
	case <-ctx.Done():
		w.Abort()
		// The commits end at once now; what runs beside them stops after.
		go func() {
			<-stopped
			w.stop(ctx)
		}()
		return ctx.Err()
	}
}

// Abort stops the writer without waiting: commits in flight are cancelled,
// and every trigger not answered yet is answered ErrShuttingDown
// (UNAVAILABLE) at once, even one whose commit is stuck on a frozen store.
// None of them was acknowledged; a commit that lands anyway is found as a
// duplicate when the client retries with the same messageId. The event
// log's consumers stop too, leaving what they had not derived to the next
// holder of their lease.
func (w *Writer) Abort() {
	w.cancel()
	if w.events != nil {
		w.events.cancel()
	}
	w.closeQueue()
	w.flightMu.Lock()
	for _, batch := range w.inflight {
		for _, j := range batch {
			j.finish(ErrShuttingDown)
		}
	}
	w.flightMu.Unlock()
	for j := range w.queue { // closed: this drains it, with the writers
		w.queued.Release(j.bytes)
		w.stats.dequeued(len(j.items), j.bytes)
		j.finish(ErrShuttingDown)
	}
}

// stop ends what runs beside the group commits, once they have stopped:
// the event log's consumers, after deriving what they can of what was
// stored (unless aborted; within ctx and a few seconds), and the writer's
// connections.
func (w *Writer) stop(ctx context.Context) {
	w.stopOnce.Do(func() {
		if w.events != nil {
			if w.ctx.Err() == nil {
				drain, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := w.events.Drain(drain); err != nil {
					w.log.Warn("deriving the last events before closing", "err", err)
				}
				cancel()
			}
			w.events.Close()
		}
		w.origins.close()
		w.runner.close()
		w.cancel()
	})
}

func (w *Writer) closeQueue() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.queue)
	}
	w.mu.Unlock()
}

func (w *Writer) submit(ctx context.Context, items []*pending) error {
	j := &job{items: items, deadline: time.Now().Add(w.timeout), done: make(chan struct{})}
	for _, p := range items {
		j.bytes += int64(p.size())
	}
	// Bound what waits in memory: a request over the whole bound waits for
	// an empty queue. Waiting counts against the request's deadline.
	j.bytes = min(j.bytes, w.stats.queueLimit)
	wait, cancel := context.WithDeadline(ctx, j.deadline)
	defer cancel()
	stopWaiting := context.AfterFunc(w.ctx, cancel)
	defer stopWaiting()
	if err := w.queued.Acquire(wait, j.bytes); err != nil {
		switch {
		case w.ctx.Err() != nil:
			return ErrShuttingDown
		case ctx.Err() != nil:
			return ctx.Err()
		}
		return errWaitedTooLong
	}
	w.stats.enqueued(len(items), j.bytes)
	if err := w.enqueue(wait, j); err != nil {
		w.queued.Release(j.bytes)
		w.stats.dequeued(len(items), j.bytes)
		switch {
		case w.ctx.Err() != nil || errors.Is(err, ErrShuttingDown):
			return ErrShuttingDown
		case ctx.Err() != nil:
			return ctx.Err()
		}
		return errWaitedTooLong
	}
	// Once queued, the job is written even if the caller goes away; waiting
	// for it keeps the answer truthful.
	<-j.done
	return j.err
}

// enqueue hands j to the writers, unless the writer is closed or wait ends
// first (the channel is full only when the store is slow or stalled).
func (w *Writer) enqueue(wait context.Context, j *job) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		return ErrShuttingDown
	}
	select {
	case w.queue <- j:
		return nil
	case <-wait.Done():
		return wait.Err()
	}
}

func (w *Writer) run(i, slot int) {
	for {
		w.stage.Lock()
		batch, ok := w.collect()
		if !ok {
			w.stage.Unlock()
			return
		}
		w.flightMu.Lock()
		w.inflight[i] = batch
		w.flightMu.Unlock()
		start := time.Now()
		var once sync.Once
		staged := func() { once.Do(w.stage.Unlock) }
		stored, err, events := 0, errWaitedTooLong, 0
		for _, j := range batch {
			events += len(j.items)
		}
		if live := w.dropExpired(batch); len(live) > 0 {
			stored, err = w.commitSafely(slot, live, staged)
		}
		staged()
		took := time.Since(start)
		w.stats.committed(stored, took)
		w.observer.Committed(len(batch), events, took, err)
		w.log.Debug("group commit", "requests", len(batch), "events", events, "stored", stored, "took", took)
		w.flightMu.Lock()
		w.inflight[i] = nil
		w.flightMu.Unlock()
		for _, j := range batch {
			w.queued.Release(j.bytes)
			w.stats.dequeued(len(j.items), j.bytes)
			j.finish(nil)
		}
	}
}

// errWaitedTooLong answers triggers that waited the writer's whole timeout
// for a group commit to take them, behind commits stalled on the store.
var errWaitedTooLong = fmt.Errorf("models.Writer: waited too long for the store: %w", context.DeadlineExceeded)

// dropExpired fails the jobs whose deadline has passed and returns the
// others: a commit stalled on the store must not make the triggers queued
// behind it wait for a whole timeout of their own.
func (w *Writer) dropExpired(batch []*job) []*job {
	now := time.Now()
	live := batch[:0:0]
	var expired []*pending
	for _, j := range batch {
		if now.Before(j.deadline) {
			live = append(live, j)
		} else {
			expired = append(expired, j.items...)
		}
	}
	if len(expired) > 0 {
		w.fail(expired, errWaitedTooLong)
	}
	return live
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
// the next batch. It returns how many events were stored, and the error of
// the batch as a whole.
func (w *Writer) commitSafely(slot int, batch []*job, staged func()) (stored int, failed error) {
	defer func() {
		if r := recover(); r != nil {
			err := newPanicError(r)
			failed = err
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

// commit writes a batch, by the earliest deadline of its jobs. If it fails
// for a reason retrying cannot cure, each request is written on its own, so
// one bad request cannot sink the others; not when the store failed (a
// timeout, a lost connection), which would only fail again once per request.
func (w *Writer) commit(slot int, batch []*job, staged func()) (int, error) {
	var all []*pending
	deadline := batch[0].deadline
	for _, j := range batch {
		all = append(all, j.items...)
		if j.deadline.Before(deadline) {
			deadline = j.deadline
		}
	}
	stored, err := w.write(slot, all, deadline, staged)
	if err == nil {
		return stored, nil
	}
	if len(batch) == 1 || storeFault(err) {
		w.fail(all, err)
		return 0, err
	}
	stored = 0
	for _, j := range batch {
		n, err := w.write(slot, j.items, j.deadline, func() {})
		if err != nil {
			w.fail(j.items, err)
		}
		stored += n
	}
	return stored, err
}

func (w *Writer) fail(items []*pending, err error) {
	switch {
	case w.ctx.Err() != nil:
		// Aborted: the commit was cut off by the shutdown, not by the store.
		err = ErrShuttingDown
	case storeFault(err):
		w.log.Error(MsgStoreUnavailable, "in", "models.Writer", "events", len(items), "err", err)
	default:
		w.log.Error("storing triggers failed", "events", len(items), "err", err)
	}
	w.stats.failed(len(items))
	for _, p := range items {
		p.result = TriggerResult{Err: err}
	}
}

// write stores items in one transaction, written again as often as the
// store surprises it (see writer_tx.go) or fails for a transient reason,
// until deadline, and returns how many events it stored. staged is called
// once its statements have run.
func (w *Writer) write(slot int, items []*pending, deadline time.Time, staged func()) (int, error) {
	ctx, cancel := context.WithDeadline(w.ctx, deadline)
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
