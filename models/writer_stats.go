package models

import (
	"sync"
	"sync/atomic"
	"time"
)

// WriterStats describe a writer since it started: what waits for it now,
// and what its group commits did. Counters only grow.
type WriterStats struct {
	// QueuedEvents and QueuedBytes are the triggers waiting for a group
	// commit or in one; QueueLimitBytes is the bound on QueuedBytes.
	QueuedEvents    int64
	QueuedBytes     int64
	QueueLimitBytes int64
	// Commits counts group commits; Events the events they stored, Failed
	// the triggers answered with an error because their commit failed, and
	// Retries the attempts written again after a surprise or a deadlock.
	Commits, Events, Failed, Retries uint64
	// CommitSeconds is the time from forming a batch to answering it.
	CommitSeconds Histogram
	// CommitEvents is the number of events stored per group commit.
	CommitEvents Histogram
}

// Histogram counts observations in buckets, as Prometheus does: Counts[i]
// is the number of observations at most Bounds[i] (cumulative); Count and
// Sum cover all of them.
type Histogram struct {
	Bounds []float64
	Counts []uint64
	Count  uint64
	Sum    float64
}

// Stats reports the writer's queue and group commits.
func (w *Writer) Stats() WriterStats { return w.stats.snapshot() }

var (
	commitSecondsBounds = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	commitEventsBounds  = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000}
)

type writerStats struct {
	queueLimit            int64
	queuedEvents, queued  atomic.Int64
	retries               atomic.Uint64
	mu                    sync.Mutex
	commits, events, fail uint64
	seconds, sizes        Histogram
}

func newWriterStats(queueLimit int64) writerStats {
	return writerStats{
		queueLimit: queueLimit,
		seconds:    Histogram{Bounds: commitSecondsBounds, Counts: make([]uint64, len(commitSecondsBounds))},
		sizes:      Histogram{Bounds: commitEventsBounds, Counts: make([]uint64, len(commitEventsBounds))},
	}
}

func (s *writerStats) enqueued(events int, bytes int64) {
	s.queuedEvents.Add(int64(events))
	s.queued.Add(bytes)
}

func (s *writerStats) dequeued(events int, bytes int64) {
	s.queuedEvents.Add(-int64(events))
	s.queued.Add(-bytes)
}

func (s *writerStats) retried() { s.retries.Add(1) }

func (s *writerStats) failed(events int) {
	s.mu.Lock()
	s.fail += uint64(events)
	s.mu.Unlock()
}

func (s *writerStats) committed(events int, took time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits++
	s.events += uint64(events)
	s.seconds.observe(took.Seconds())
	s.sizes.observe(float64(events))
}

func (s *writerStats) snapshot() WriterStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return WriterStats{
		QueuedEvents: s.queuedEvents.Load(), QueuedBytes: s.queued.Load(), QueueLimitBytes: s.queueLimit,
		Commits: s.commits, Events: s.events, Failed: s.fail, Retries: s.retries.Load(),
		CommitSeconds: s.seconds.clone(), CommitEvents: s.sizes.clone(),
	}
}

func (h *Histogram) observe(v float64) {
	h.Count++
	h.Sum += v
	for i, b := range h.Bounds {
		if v <= b {
			h.Counts[i]++
		}
	}
}

func (h Histogram) clone() Histogram {
	h.Counts = append([]uint64(nil), h.Counts...)
	return h
}

// atomicHook holds a test hook.
type atomicHook = atomic.Pointer[func()]
