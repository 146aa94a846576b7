package models

import (
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sync"
	"time"
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
	return l.ips.allow("IP address", ipKey(ip), l.PerIP, now, true)
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
		return l.failures.allow("IP address", ipKey(ip), l.PerIP, now, false)
	}
	return l.ips.allow("IP address", ipKey(ip), l.PerIP, now, true)
}

// checkBeforeLookup is beforeLookup without taking a token: for a request
// whose triggers take theirs afterwards (see Writer.CheckTriggerAccess).
func (l *RateLimits) checkBeforeLookup(ip string, withSecret bool, now time.Time) error {
	if l == nil || ip == "" {
		return nil
	}
	if withSecret {
		return l.failures.allow("IP address", ipKey(ip), l.PerIP, now, false)
	}
	return l.ips.allow("IP address", ipKey(ip), l.PerIP, now, false)
}

// lookupFailed counts a server's failed lookup (see beforeLookup).
func (l *RateLimits) lookupFailed(ip string, withSecret bool, err error, now time.Time) {
	if l == nil || ip == "" || !withSecret || !(errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnauthenticated)) {
		return
	}
	l.failures.allow("IP address", ipKey(ip), l.PerIP, now, true)
}

// ipKey groups IPv6 clients by their /64, which one subscriber usually holds
// whole (and could otherwise take a fresh bucket from each of its
// addresses); IPv4 clients count one address each. Sign-in attempts and
// anonymous writes both count by it.
func ipKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// allowDevice takes a token from the device's bucket. Calls with the app's
// secret key (checked before this) are exempt on every ingestion surface:
// they are servers importing or relaying for many visitors.
func (l *RateLimits) allowDevice(key string, withSecret bool, now time.Time) error {
	if l == nil || withSecret {
		return nil
	}
	return l.devices.allow("device", key, l.PerDevice, now, true)
}

// keyedLimiter holds one token bucket per key as a single number, its
// "theoretical arrival time" (the generic cell rate algorithm, which is a
// token bucket), keyed by a 64-bit hash of the key. A bucket that has
// filled up again is the same as none, so it is forgotten: memory follows
// the keys seen in the last few seconds, about 16 bytes each. Keys are
// spread over shards so concurrent triggers rarely wait on one another.
type keyedLimiter struct {
	shards [64]limiterShard
}

type limiterShard struct {
	mu        sync.Mutex
	tat       map[uint64]int64 // key hash → theoretical arrival time, unix ns
	lastSweep int64
}

// allow takes a token for key, or with take false only checks that one is
// there.
func (k *keyedLimiter) allow(scope, key string, r Rate, now time.Time, take bool) error {
	if r.PerSecond <= 0 {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte(key))
	sum := h.Sum64()
	sh := &k.shards[sum%uint64(len(k.shards))]
	interval := int64(float64(time.Second) / r.PerSecond)
	burst := int64(max(r.Burst, 1)) * interval
	t := now.UnixNano()
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.tat == nil {
		sh.tat = map[uint64]int64{}
	}
	if t-sh.lastSweep > int64(time.Second) {
		for key, tat := range sh.tat {
			if tat <= t {
				delete(sh.tat, key)
			}
		}
		sh.lastSweep = t
	}
	next := max(sh.tat[sum], t) + interval
	if wait := next - t - burst; wait > 0 {
		return &RateLimitError{Scope: scope, RetryAfter: max(time.Duration(wait), time.Second)}
	}
	if take {
		sh.tat[sum] = next
	}
	return nil
}
