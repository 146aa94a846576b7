package models

import (
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens a second, holding at most one
// second's worth (and at least one token).
type bucket struct {
	tokens float64
	at     time.Time
}

// rateBuckets are the dispatcher loop's buckets, one per rule (keyed by
// its id); only the loop uses them, so they need no lock.
type rateBuckets struct {
	rate float64 // tokens a second; <= 0: no cap
	m    map[uint64]*bucket
}

func (r *rateBuckets) capacity() float64 { return max(r.rate, 1) }

// take spends a token of key's bucket if it has one.
func (r *rateBuckets) take(key uint64, now time.Time) bool {
	if r.rate <= 0 {
		return true
	}
	b := r.m[key]
	if b == nil {
		b = &bucket{tokens: r.capacity(), at: now}
		r.m[key] = b
	}
	b.tokens = min(r.capacity(), b.tokens+now.Sub(b.at).Seconds()*r.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// wait is how long until key's bucket has a token again.
func (r *rateBuckets) wait(key uint64, now time.Time) time.Duration {
	b := r.m[key]
	if r.rate <= 0 || b == nil {
		return 0
	}
	have := min(r.capacity(), b.tokens+now.Sub(b.at).Seconds()*r.rate)
	if have >= 1 {
		return 0
	}
	return time.Duration((1 - have) / r.rate * float64(time.Second))
}

// forget drops the buckets that are full again, so the map holds only
// rules that sent within the last second or so.
func (r *rateBuckets) forget(now time.Time) {
	for id, b := range r.m {
		if b.tokens+now.Sub(b.at).Seconds()*r.rate >= r.capacity() {
			delete(r.m, id)
		}
	}
}

// queueCap is how many claimed deliveries a rule may hold waiting,
// besides those in flight: twice its concurrency, and no more than its
// rate lets start well within the lease they were claimed with.
func (d *Dispatcher) queueCap() int {
	c := 2 * d.opts.PerRule
	if d.opts.Rate > 0 {
		c = min(c, max(1, int(d.opts.Rate*d.opts.Timeout.Seconds())))
	}
	return c
}

type warnState struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// warn logs a store fault or the like at most once a second per message,
// saying how many were left out since the last one.
func (d *Dispatcher) warn(msg string, args ...any) {
	v, _ := d.warned.LoadOrStore(msg, &warnState{})
	w := v.(*warnState)
	w.mu.Lock()
	now := time.Now()
	if now.Sub(w.last) < time.Second {
		w.suppressed++
		w.mu.Unlock()
		return
	}
	w.last = now
	n := w.suppressed
	w.suppressed = 0
	w.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	d.opts.Log.Warn(msg, args...)
}
