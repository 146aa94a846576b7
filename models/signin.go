package models

import (
	"crypto/sha256"
	"encoding/hex"
	"hash/fnv"
	"strings"
	"sync"
	"time"
)

// SignInLimits slow down password guessing. Every attempt that checks a
// secret (login, refreshToken, acceptInvitation, changePassword) counts as a
// failure from the moment it starts, so concurrent guesses count too, and is
// taken back when it succeeds. Past a few failures a client IP, or an account
// (by email, whether or not it exists), must wait before its next attempt,
// and the wait doubles with every further failure. Like the trigger rate
// limits, they live in each replica's memory.
type SignInLimits struct {
	PerIP      Backoff
	PerAccount Backoff
	ips        failureCounts
	accounts   failureCounts
}

// Backoff says when a key starts to wait and how the wait grows.
type Backoff struct {
	// Free is how many failures cost no wait.
	Free int
	// First is the wait after the first failure past Free; each further
	// failure doubles it, up to Max.
	First, Max time.Duration
	// Forget drops a key's failures once it has had none for this long.
	Forget time.Duration
}

// NewSignInLimits returns the default limits: per account 5 free failures,
// per IP 20 (offices share addresses), then 1 s doubling to 15 minutes;
// failures are forgotten after an hour without one.
func NewSignInLimits() *SignInLimits {
	return &SignInLimits{
		PerIP:      Backoff{Free: 20, First: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
		PerAccount: Backoff{Free: 5, First: time.Second, Max: 15 * time.Minute, Forget: time.Hour},
	}
}

// signInAttempt is one counted attempt; succeeded takes it back.
type signInAttempt struct {
	limits      *SignInLimits
	ip, account string
}

// begin counts an attempt by the client at ip on account ("" for none), or
// refuses it with a *RateLimitError while either has to wait. A refusal does
// not depend on whether the account exists.
func (l *SignInLimits) begin(ip, account string, now time.Time) (*signInAttempt, error) {
	a := &signInAttempt{limits: l, ip: ipKey(ip), account: accountKey(account)}
	if l == nil {
		return a, nil
	}
	if a.ip != "" {
		if wait := l.ips.take(a.ip, l.PerIP, now); wait > 0 {
			return nil, &RateLimitError{Scope: "IP address", Action: "sign-in attempts", RetryAfter: wait}
		}
	}
	if a.account != "" {
		if wait := l.accounts.take(a.account, l.PerAccount, now); wait > 0 {
			if a.ip != "" {
				l.ips.giveBack(a.ip)
			}
			return nil, &RateLimitError{Scope: "account", Action: "sign-in attempts", RetryAfter: wait}
		}
	}
	return a, nil
}

// succeeded takes the attempt back: the account's failures are forgotten,
// the IP's count loses this one (others guessing from it still count).
func (a *signInAttempt) succeeded() {
	if a == nil || a.limits == nil {
		return
	}
	if a.ip != "" {
		a.limits.ips.giveBack(a.ip)
	}
	if a.account != "" {
		a.limits.accounts.forget(a.account)
	}
}

// unjudged takes the attempt back when err is a store fault: the store
// failed before the secret was judged, and the client, answered
// UNAVAILABLE, learned nothing from it. Counting it would throttle every
// client that signs in or refreshes its token through an outage, for up to
// PerIP.Max after the store is back. Other failures stay counted.
func (a *signInAttempt) unjudged(err error) {
	if a == nil || a.limits == nil || !storeFault(err) {
		return
	}
	if a.ip != "" {
		a.limits.ips.giveBack(a.ip)
	}
	if a.account != "" {
		a.limits.accounts.giveBack(a.account)
	}
}

// accountKey is a fixed-size key for an email as sign-in looks it up, so
// that made-up emails of any length cost the same memory.
func accountKey(email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	if email == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(email))
	return hex.EncodeToString(sum[:16])
}

// failureCounts holds failures per key in shards; each shard forgets idle
// keys and never holds more than maxShardKeys.
type failureCounts struct {
	shards [64]failureShard
}

type failureShard struct {
	mu        sync.Mutex
	keys      map[string]*failures
	lastSweep time.Time
}

type failures struct {
	count int
	last  time.Time
	// forget is copied from the Backoff, so sweeping needs no settings.
	forget time.Duration
}

const maxShardKeys = 4096

func (c *failureCounts) shard(key string) *failureShard {
	h := fnv.New32a()
	h.Write([]byte(key))
	return &c.shards[h.Sum32()%uint32(len(c.shards))]
}

// take returns how long key must still wait, or counts a failure and
// returns 0.
func (c *failureCounts) take(key string, b Backoff, now time.Time) time.Duration {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.keys == nil {
		sh.keys = map[string]*failures{}
	}
	sh.sweep(now)
	f := sh.keys[key]
	if f != nil && now.Sub(f.last) > b.Forget {
		f = nil
	}
	if f != nil {
		if wait := f.last.Add(b.delay(f.count)).Sub(now); wait > 0 {
			return wait
		}
	} else {
		if len(sh.keys) >= maxShardKeys {
			// Full of keys still inside their Forget window: drop one
			// (Go's map order is random), rather than grow without bound.
			for k := range sh.keys {
				delete(sh.keys, k)
				break
			}
		}
		f = &failures{forget: b.Forget}
		sh.keys[key] = f
	}
	f.count++
	f.last = now
	return 0
}

func (c *failureCounts) giveBack(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if f := sh.keys[key]; f != nil {
		f.count--
		if f.count <= 0 {
			delete(sh.keys, key)
		}
	}
}

func (c *failureCounts) forget(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	delete(sh.keys, key)
}

func (sh *failureShard) sweep(now time.Time) {
	if now.Sub(sh.lastSweep) < time.Minute {
		return
	}
	sh.lastSweep = now
	for k, f := range sh.keys {
		if now.Sub(f.last) > f.forget {
			delete(sh.keys, k)
		}
	}
}

// delay is the wait after count failures.
func (b Backoff) delay(count int) time.Duration {
	if count < b.Free {
		return 0
	}
	d := b.First
	for i := b.Free; i < count && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}
