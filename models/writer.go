package models

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
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
	log      *slog.Logger

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
	done  chan struct{}
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
	Log   *slog.Logger
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
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Writers <= 0 || !isMySQL(db) {
		opts.Writers = 1
	}
	w := &Writer{
		db: db, catalog: catalog, limits: opts.Limits, devices: newRecentDevices(db), ids: newIDGenerator(),
		maxBatch: opts.MaxBatch, delay: opts.Delay, log: opts.Log,
		queue: make(chan *job, 4096),
	}
	base := rand.IntN(eventLogSlots)
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

// EventLog returns the event log consumers the writer runs (nil with
// NoDerive), e.g. to add more or read their stats.
func (w *Writer) EventLog() *EventLog { return w.events }

// Catalog returns the definition cache the writer resolves codes with.
func (w *Writer) Catalog() *Catalog { return w.catalog }

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
	if w.events != nil && closing {
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
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrShuttingDown
	}
	select {
	case w.queue <- j:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	// Once queued, the job is written even if the caller goes away; waiting
	// for it keeps the answer truthful.
	<-j.done
	return nil
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
		start := time.Now()
		w.commit(slot, batch)
		w.log.Debug("group commit", "requests", len(batch), "events", n, "took", time.Since(start))
		for _, j := range batch {
			close(j.done)
		}
	}
}

// commit writes a batch. If it fails for a reason retrying cannot cure, each
// request is written on its own, so one bad request cannot sink the others.
func (w *Writer) commit(slot int, batch []*job) {
	var all []*pending
	for _, j := range batch {
		all = append(all, j.items...)
	}
	err := w.write(slot, all)
	if err == nil {
		return
	}
	if len(batch) == 1 {
		w.fail(all, err)
		return
	}
	for _, j := range batch {
		if err := w.write(slot, j.items); err != nil {
			w.fail(j.items, err)
		}
	}
}

func (w *Writer) fail(items []*pending, err error) {
	w.log.Error("storing triggers failed", "events", len(items), "err", err)
	for _, p := range items {
		p.result = TriggerResult{Err: err}
	}
}

func (w *Writer) write(slot int, items []*pending) error {
	for {
		var upserted []*deviceSeen
		epoch := w.devices.epoch()
		err := withRetry(context.Background(), func() error {
			err := w.db.Transaction(func(tx *gorm.DB) (err error) {
				upserted, err = w.writeTx(tx, slot, items)
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
			w.devices.remember(upserted, epoch, time.Now())
		}
		if errors.Is(err, errSealedOver) {
			// The event log was sealed past these ids: take ids above the seal.
			if err := raiseFloorToSeal(context.Background(), w.db); err != nil {
				return err
			}
			continue
		}
		// Each round refuses at least one definition's triggers, so this ends.
		if !errors.Is(err, errRefusals) {
			return err
		}
	}
}
