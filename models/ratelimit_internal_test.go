package models

import (
	"fmt"
	"hash/fnv"
	"testing"
	"time"
)

// A bucket is refused past its burst, refills at its rate, and is
// forgotten once full again, so memory follows the recent keys only.
func TestKeyedLimiterRefillsAndForgets(t *testing.T) {
	var k keyedLimiter
	r := Rate{PerSecond: 10, Burst: 3}
	now := time.Unix(1_000_000, 0)
	for i := range 3 {
		if err := k.allow("device", "a", r, now, true); err != nil {
			t.Fatalf("token %d refused: %v", i, err)
		}
	}
	err := k.allow("device", "a", r, now, true)
	limited, ok := err.(*RateLimitError)
	if !ok || limited.RetryAfter < time.Second {
		t.Fatalf("fourth token: %v", err)
	}
	if err := k.allow("device", "b", r, now, true); err != nil {
		t.Fatalf("another key was limited: %v", err)
	}
	if err := k.allow("device", "a", r, now.Add(100*time.Millisecond), true); err != nil {
		t.Fatalf("refilled token refused: %v", err)
	}
	for i := range 5000 {
		k.allow("device", fmt.Sprint("flood-", i), r, now, true)
	}
	// Two seconds later every bucket has refilled: one key per shard
	// sweeps it, and only those keys remain.
	later := now.Add(2 * time.Second)
	for shard := range len(k.shards) {
		for i := 0; ; i++ {
			key := fmt.Sprint("late-", i)
			h := fnv.New64a()
			h.Write([]byte(key))
			if h.Sum64()%uint64(len(k.shards)) == uint64(shard) {
				k.allow("device", key, r, later, true)
				break
			}
		}
	}
	n := 0
	for i := range k.shards {
		n += len(k.shards[i].tat)
	}
	if n != len(k.shards) {
		t.Fatalf("%d buckets kept after they refilled; want the %d just used", n, len(k.shards))
	}
}

// An IPv6 client counts by its /64, as sign-in attempts do: one subscriber
// holds the whole /64, and could otherwise take a fresh bucket for every
// trigger, identify or failed key from another of its addresses.
func TestIPRateCountsIPv6ByItsSlash64(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	for _, step := range []struct {
		name string
		take func(l *RateLimits, ip string) error
	}{
		{"browser write", func(l *RateLimits, ip string) error { return l.beforeLookup(ip, false, now) }},
		{"failed key", func(l *RateLimits, ip string) error {
			l.lookupFailed(ip, true, ErrUnauthenticated, now)
			return l.checkBeforeLookup(ip, true, now)
		}},
	} {
		l := NewRateLimits(Rate{PerSecond: 1, Burst: 2}, Rate{})
		step.take(l, "2001:db8::1")
		step.take(l, "2001:db8::1")
		if err := step.take(l, "2001:db8::2"); err == nil {
			t.Errorf("%s: another address of the same /64 was not limited", step.name)
		}
		if err := step.take(l, "2001:db8:0:1::1"); err != nil {
			t.Errorf("%s: another /64 was limited: %v", step.name, err)
		}
		if err := step.take(l, "192.0.2.1"); err != nil {
			t.Errorf("%s: an IPv4 client was limited: %v", step.name, err)
		}
	}
}
