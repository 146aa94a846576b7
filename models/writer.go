package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Writer stores triggers with group commit: requests wait while one goroutine
// turns everything that arrived meanwhile into one transaction of multi-row
// statements, then every waiting request is answered after the commit. Nothing
// is acknowledged before it is durable, and throughput grows with load
// because each commit (and its fsync) is shared by the whole batch.
type Writer struct {
	db       *gorm.DB
	catalog  *Catalog
	limits   *RateLimits
	devices  *recentDevices
	ids      *idGenerator
	maxBatch int
	delay    time.Duration
	timeout  time.Duration
	log      *slog.Logger
	observer WriterObserver

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
}

type job struct {
	items []*pending
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
	// Writers is how many transactions may be in flight at once on MySQL
	// (default 1; SQLite has one writer by design). Every group commit locks
	// the rollup rows of the current hour and day until it commits, so a
	// second writer mostly waits for the first and adds deadlock retries;
	// more writers help only when apps' traffic is spread over many apps.
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
	// Observer is told about triggers and group commits (metrics); nil means none.
	Observer WriterObserver
}

// NewWriter starts a writer; Close stops it after storing what was submitted.
func NewWriter(db *gorm.DB, catalog *Catalog, opts WriterOptions) *Writer {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 2000
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.CommitTimeout <= 0 {
		opts.CommitTimeout = 30 * time.Second
	}
	if opts.Writers <= 0 || !isMySQL(db) {
		opts.Writers = 1
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	w := &Writer{
		db: db, catalog: catalog, limits: opts.Limits, devices: newRecentDevices(db), ids: newIDGenerator(),
		maxBatch: opts.MaxBatch, delay: opts.Delay, timeout: opts.CommitTimeout, log: opts.Log, observer: opts.Observer,
		queue: make(chan *job, 4096), inflight: make([][]*job, opts.Writers),
	}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	for i := range opts.Writers {
		w.running.Go(func() { w.run(i) })
	}
	return w
}

// Limits returns the per-IP and per-device limits of anonymous writes, which
// identify shares with triggers.
func (w *Writer) Limits() *RateLimits { return w.limits }

// Catalog returns the definition cache the writer resolves codes with.
func (w *Writer) Catalog() *Catalog { return w.catalog }

// Close stores everything already submitted, then stops the writer.
func (w *Writer) Close() {
	w.closeQueue()
	w.running.Wait()
	w.cancel()
}

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
		w.cancel()
		return nil
	case <-ctx.Done():
		w.Abort()
		return ctx.Err()
	}
}

// Abort stops the writer without waiting: commits in flight are cancelled,
// and every trigger not answered yet is answered ErrShuttingDown
// (UNAVAILABLE) at once, even one whose commit is stuck on a frozen store.
// None of them was acknowledged; a commit that lands anyway is found as a
// duplicate when the client retries with the same messageId.
func (w *Writer) Abort() {
	w.closeQueue()
	w.cancel()
	w.flightMu.Lock()
	for _, batch := range w.inflight {
		for _, j := range batch {
			j.finish(ErrShuttingDown)
		}
	}
	w.flightMu.Unlock()
	for j := range w.queue { // closed: this drains it
		j.finish(ErrShuttingDown)
	}
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
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrShuttingDown
	}
	select {
	case w.queue <- j:
	default:
		// The queue is full: the store is slow or stalled.
		full := time.NewTimer(w.timeout)
		defer full.Stop()
		select {
		case w.queue <- j:
		case <-ctx.Done():
			w.mu.RUnlock()
			return ctx.Err()
		case <-full.C:
			w.mu.RUnlock()
			return errWaitedTooLong
		}
	}
	w.mu.RUnlock()
	// Once queued, the job is written even if the caller goes away; waiting
	// for it keeps the answer truthful.
	<-j.done
	return j.err
}

func (w *Writer) run(slot int) {
	for first := range w.queue {
		batch, n := []*job{first}, len(first.items)
		var timeout <-chan time.Time
		if w.delay > 0 {
			timeout = time.After(w.delay)
		}
	collect:
		for n < w.maxBatch {
			select {
			case j, ok := <-w.queue:
				if !ok {
					break collect
				}
				batch, n = append(batch, j), n+len(j.items)
			default:
				if timeout == nil {
					break collect
				}
				select {
				case j, ok := <-w.queue:
					if !ok {
						break collect
					}
					batch, n = append(batch, j), n+len(j.items)
				case <-timeout:
					break collect
				}
			}
		}
		w.flightMu.Lock()
		w.inflight[slot] = batch
		w.flightMu.Unlock()
		start := time.Now()
		err := errWaitedTooLong
		if live := w.dropExpired(batch); len(live) > 0 {
			err = w.commitSafely(live)
		}
		took := time.Since(start)
		w.observer.Committed(len(batch), n, took, err)
		w.log.Debug("group commit", "requests", len(batch), "events", n, "took", took)
		w.flightMu.Lock()
		w.inflight[slot] = nil
		w.flightMu.Unlock()
		for _, j := range batch {
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

// commitSafely commits a batch and keeps the writer alive whatever happens:
// a panic outside the transaction (one inside is already an error of its
// batch, see write) fails the triggers not answered yet, and the writer
// goes on with the next batch.
func (w *Writer) commitSafely(batch []*job) (failed error) {
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
	return w.commit(batch)
}

// commit writes a batch. If it fails for a reason retrying cannot cure, each
// request is written on its own, so one bad request cannot sink the others;
// not when the store failed (a timeout, a lost connection), which would only
// fail again once per request. It returns the error of the batch as a whole.
func (w *Writer) commit(batch []*job) error {
	var all []*pending
	deadline := batch[0].deadline
	for _, j := range batch {
		all = append(all, j.items...)
		if j.deadline.Before(deadline) {
			deadline = j.deadline
		}
	}
	err := w.write(all, deadline)
	if err == nil {
		return nil
	}
	if len(batch) == 1 || storeFault(err) {
		w.fail(all, err)
		return err
	}
	for _, j := range batch {
		if err := w.write(j.items, j.deadline); err != nil {
			w.fail(j.items, err)
		}
	}
	return err
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
	for _, p := range items {
		p.result = TriggerResult{Err: err}
	}
}

// write stores items in one transaction, retried on transient errors until
// deadline.
func (w *Writer) write(items []*pending, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(w.ctx, deadline)
	defer cancel()
	db := w.db.WithContext(ctx)
	for {
		var upserted []*deviceSeen
		err := withRetry(ctx, func() error {
			err := db.Transaction(func(tx *gorm.DB) (err error) {
				// A panic becomes this batch's error; gorm rolls back.
				defer func() {
					if r := recover(); r != nil {
						perr := newPanicError(r)
						w.log.Error("group commit panicked", "err", perr, "stack", string(perr.stack))
						err = perr
					}
				}()
				upserted, err = w.writeTx(tx, items)
				return err
			})
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				// A messageId stored by another replica meanwhile, or an id
				// collision: the retry re-reads duplicates and draws new ids.
				w.ids.reseed()
			}
			return err
		})
		if err == nil {
			w.devices.remember(upserted, time.Now())
		}
		// Each round refuses at least one definition's triggers, so this ends.
		if !errors.Is(err, errRefusals) {
			return err
		}
	}
}

// panicError is a panic recovered in the writer. Its text is for the log;
// callers see INTERNAL_SERVER_ERROR.
type panicError struct {
	value any
	stack []byte
}

func newPanicError(v any) *panicError { return &panicError{value: v, stack: debug.Stack()} }

func (e *panicError) Error() string { return fmt.Sprintf("models.Writer: panic: %v", e.value) }
