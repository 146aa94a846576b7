package models

import (
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// RateLimitError refuses a request over a rate limit; RetryAfter says when
// the next one will be accepted.
type RateLimitError struct {
	Scope string
	// Action is what was limited; "triggers" when empty.
	Action     string
	RetryAfter time.Duration
}

func (e *RateLimitError) Error() string {
	action := e.Action
	if action == "" {
		action = "triggers"
	}
	wait := max(e.RetryAfter.Round(time.Second), time.Second)
	return fmt.Sprintf("too many %s from this %s; retry after %s", action, e.Scope, wait)
}

// Unwrap makes the error match ErrRateLimited.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// RateLimits are token buckets per client IP and per device, kept in this
// process (each replica limits what reaches it).
type RateLimits struct {
	PerIP     Rate
	PerDevice Rate
	ips       keyedLimiter
	devices   keyedLimiter
	// failures are unknown apps and wrong keys from servers, per IP.
	failures keyedLimiter
}

// Rate is a sustained rate with a burst; a zero Rate means no limit.
type Rate struct {
	PerSecond float64
	Burst     int
}

// NewRateLimits returns limits with the given rates.
func NewRateLimits(perIP, perDevice Rate) *RateLimits {
	return &RateLimits{PerIP: perIP, PerDevice: perDevice}
}

func (l *RateLimits) allowIP(ip string, now time.Time) error {
	if l == nil || ip == "" {
		return nil
	}
	return l.ips.allow("IP address", ip, l.PerIP, now, true)
}

// beforeLookup runs before an anonymous write (trigger, identify) reads its
// app, so a flood is refused before it costs the store anything. A browser
// (no secret) takes a token from its IP's bucket. A server presenting a
// secret is exempt, but only while its key works: lookupFailed counts its
// unknown apps and wrong keys per IP, at the same rate, and once those are
// over the limit its requests are refused here, before the lookup.
func (l *RateLimits) beforeLookup(ip string, withSecret bool, now time.Time) error {
	if l == nil || ip == "" {
		return nil
	}
	if withSecret {
		return l.failures.allow("IP address", ip, l.PerIP, now, false)
	}
	return l.ips.allow("IP address", ip, l.PerIP, now, true)
}

// lookupFailed counts a server's failed lookup (see beforeLookup).
func (l *RateLimits) lookupFailed(ip string, withSecret bool, err error, now time.Time) {
	if l == nil || ip == "" || !withSecret || !(errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthenticated)) {
		return
	}
	l.failures.allow("IP address", ip, l.PerIP, now, true)
}

func (l *RateLimits) allowDevice(key string, now time.Time) error {
	if l == nil {
		return nil
	}
	return l.devices.allow("device", key, l.PerDevice, now, true)
}

// keyedLimiter holds one token bucket per key, forgetting idle ones so that
// memory stays bounded under a flood of distinct keys. Keys are spread over
// shards so concurrent triggers rarely wait on one another's lock, and each
// shard sweeps only its own buckets.
type keyedLimiter struct {
	shards [64]limiterShard
}

type limiterShard struct {
	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	limiter *rate.Limiter
	seen    time.Time
}

const idleBucket = 5 * time.Minute

// allow takes a token for key, or with take false only checks that one is
// there.
func (k *keyedLimiter) allow(scope, key string, r Rate, now time.Time, take bool) error {
	if r.PerSecond <= 0 {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	sh := &k.shards[h.Sum32()%uint32(len(k.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.buckets == nil {
		sh.buckets = map[string]*bucket{}
	}
	if now.Sub(sh.lastSweep) > time.Minute {
		for key, b := range sh.buckets {
			if now.Sub(b.seen) > idleBucket {
				delete(sh.buckets, key)
			}
		}
		sh.lastSweep = now
	}
	b := sh.buckets[key]
	if b == nil {
		b = &bucket{limiter: rate.NewLimiter(rate.Limit(r.PerSecond), max(r.Burst, 1))}
		sh.buckets[key] = b
	}
	b.seen = now
	if !take {
		if b.limiter.TokensAt(now) >= 1 {
			return nil
		}
		res := b.limiter.ReserveN(now, 1)
		delay := res.DelayFrom(now)
		res.CancelAt(now)
		return &RateLimitError{Scope: scope, RetryAfter: max(delay, time.Second)}
	}
	res := b.limiter.ReserveN(now, 1)
	if delay := res.DelayFrom(now); delay > 0 {
		res.CancelAt(now)
		return &RateLimitError{Scope: scope, RetryAfter: max(delay, time.Second)}
	}
	return nil
}
