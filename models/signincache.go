package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"gorm.io/gorm"
)

// signInCache remembers which sign-ins are live, so that verifying an access
// token asks the store at most once per ttl per sign-in. A sign-in ended on
// this replica is marked at once; one ended on another replica is noticed
// when the entry is next re-read, within ttl. Ended sign-ins stay ended, so
// they are remembered for as long as an access token of theirs may live.
type signInCache struct {
	ttl, ended time.Duration
	mu         sync.Mutex
	m          map[string]signInEntry
	lastSweep  time.Time
	reads      singleflight.Group
}

type signInEntry struct {
	userID uint64
	live   bool
	until  time.Time
}

// maxCachedSignIns bounds the cache; only sign-ins of validly signed tokens
// get here, and a full cache is cleared rather than grown.
const maxCachedSignIns = 100_000

// signInReadTimeout bounds the store read one verification waits for, which
// runs detached from the request that started it, so that one client
// hanging up does not fail the others waiting on the same read.
const signInReadTimeout = 5 * time.Second

func newSignInCache(ttl, ended time.Duration) *signInCache {
	return &signInCache{ttl: ttl, ended: ended, m: map[string]signInEntry{}}
}

// live reports whether sign-in id is live and belongs to userID.
func (c *signInCache) live(ctx context.Context, db *gorm.DB, id string, userID uint64) (bool, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if !ok || !now.Before(e.until) {
		v, err, _ := c.reads.Do(id, func() (any, error) {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), signInReadTimeout)
			defer cancel()
			return c.read(rctx, db, id)
		})
		if err != nil {
			return false, err
		}
		e = v.(signInEntry)
	}
	return e.live && e.userID == userID, nil
}

func (c *signInCache) read(ctx context.Context, db *gorm.DB, id string) (signInEntry, error) {
	var row SignIn
	err := db.WithContext(ctx).Select("user_id", "revoked_at").Where("id = ?", id).Take(&row).Error
	if err != nil && !errors.Is(err, gorm.ErrRecordNotFound) {
		return signInEntry{}, fmt.Errorf("read sign-in: %w", err)
	}
	now := time.Now()
	e := signInEntry{userID: row.UserID, live: err == nil && row.RevokedAt == nil, until: now.Add(c.ttl)}
	if !e.live {
		e.until = now.Add(c.ended)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// An end marked meanwhile by this replica wins over what was read.
	if old, ok := c.m[id]; ok && !old.live && now.Before(old.until) {
		return old, nil
	}
	c.put(id, e, now)
	return e, nil
}

// end marks sign-ins as ended.
func (c *signInCache) end(ids ...string) {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		c.put(id, signInEntry{userID: c.m[id].userID, until: now.Add(c.ended)}, now)
	}
}

// endUser marks every cached sign-in of a user but except as ended.
func (c *signInCache) endUser(userID uint64, except string) {
	until := time.Now().Add(c.ended)
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.m {
		if e.userID == userID && id != except {
			c.m[id] = signInEntry{userID: userID, until: until}
		}
	}
}

func (c *signInCache) put(id string, e signInEntry, now time.Time) {
	if now.Sub(c.lastSweep) > time.Minute {
		c.lastSweep = now
		for k, old := range c.m {
			if !now.Before(old.until) {
				delete(c.m, k)
			}
		}
	}
	if len(c.m) >= maxCachedSignIns {
		clear(c.m)
	}
	c.m[id] = e
}
