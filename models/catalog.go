package models

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"
	"gorm.io/gorm"
)

// Catalog caches each app and its definitions by code, so the trigger hot path
// reads neither per request. Every function that writes an app or a definition
// clears it at once (clearCatalogs, cache.go); changes made by other replicas
// are picked up after the TTL. The writer re-checks enabled and existence
// under a row lock, so a stale entry can never record a refused event.
//
// Unknown app ids are remembered for the TTL too (a bounded number of them),
// so a flood of requests for one made-up appId costs one read per TTL.
type Catalog struct {
	db         *gorm.DB
	ttl        time.Duration
	generation atomic.Uint64
	group      singleflight.Group
	// timeout bounds one lookup: the store's timeout (storeTimeout). A
	// lookup is shared by every request waiting for the same app, so no
	// single caller's context bounds it.
	timeout time.Duration
	// load reads an app and its definitions; tests wrap it.
	load func(ctx context.Context, publicID string) (*catalogEntry, error)

	mu      sync.RWMutex
	entries map[string]*catalogEntry
	misses  map[string]catalogMiss
	// secrets maps a secret key's hash to its app's public id (appsecret.go),
	// tokens an ingest token's hash (ingesttoken.go).
	secrets, tokens sync.Map
}

type catalogMiss struct {
	at         time.Time
	generation uint64
}

// maxCatalogMisses is how many unknown app ids are remembered.
const maxCatalogMisses = 10000

type catalogEntry struct {
	app        *App
	defs       map[string]*EventDefinition
	loadedAt   time.Time
	generation uint64
}

// NewCatalog returns a catalog over db whose entries live at most ttl.
func NewCatalog(db *gorm.DB, ttl time.Duration) *Catalog {
	c := &Catalog{db: db, ttl: ttl, timeout: storeTimeout(db), entries: map[string]*catalogEntry{}, misses: map[string]catalogMiss{}}
	c.load = c.loadEntry
	registerCatalog(db, c)
	return c
}

// Invalidate drops every entry, e.g. after the writer found a definition changed.
func (c *Catalog) Invalidate() { c.generation.Add(1) }

func (c *Catalog) entry(ctx context.Context, publicID string, maxAge time.Duration) (*catalogEntry, error) {
	gen := c.generation.Load()
	c.mu.RLock()
	e := c.entries[publicID]
	miss, missed := c.misses[publicID]
	c.mu.RUnlock()
	if e != nil && e.generation == gen && time.Since(e.loadedAt) < maxAge {
		return e, nil
	}
	if missed && miss.generation == gen && time.Since(miss.at) < c.ttl {
		return nil, errAppNotFound()
	}
	// The lookup is shared by every request for this app that arrives
	// meanwhile, so it runs detached from the caller that started it, with
	// its own deadline: that caller going away must not fail the others.
	// Each caller still stops waiting when its own context ends.
	ch := c.group.DoChan(publicID, func() (any, error) {
		lookupCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
		defer cancel()
		e, err := c.load(lookupCtx, publicID)
		c.mu.Lock()
		defer c.mu.Unlock()
		switch {
		case err == nil:
			c.entries[publicID] = e
			delete(c.misses, publicID)
		case errors.Is(err, ErrNotFound):
			c.rememberMiss(publicID, catalogMiss{at: time.Now(), generation: gen})
		}
		return e, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*catalogEntry), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// loadEntry reads an app and its definitions.
func (c *Catalog) loadEntry(ctx context.Context, publicID string) (*catalogEntry, error) {
	gen := c.generation.Load()
	app, err := AppByPublicID(ctx, c.db, publicID)
	if err != nil {
		return nil, err
	}
	defs, err := EventDefinitions(ctx, c.db, app.ID, nil)
	if err != nil {
		return nil, err
	}
	e := &catalogEntry{app: app, defs: make(map[string]*EventDefinition, len(defs)), loadedAt: time.Now(), generation: gen}
	for _, d := range defs {
		e.defs[d.Code] = d
	}
	return e, nil
}

// rememberMiss records an unknown app id; c.mu is held. When the map is
// full, expired misses go, and if none had expired, all of them.
func (c *Catalog) rememberMiss(publicID string, m catalogMiss) {
	if len(c.misses) >= maxCatalogMisses {
		for id, old := range c.misses {
			if time.Since(old.at) >= c.ttl {
				delete(c.misses, id)
			}
		}
		if len(c.misses) >= maxCatalogMisses {
			clear(c.misses)
		}
	}
	c.misses[publicID] = m
}

func errAppNotFound() error { return newError(ErrNotFound, "app not found") }

// App returns the cached app with this public id.
func (c *Catalog) App(ctx context.Context, publicID string) (*App, error) {
	e, err := c.entry(ctx, publicID, c.ttl)
	if err != nil {
		return nil, err
	}
	return e.app, nil
}

// Definition returns the app and its definition for code. A miss re-reads the
// app once the entry is older than a second, so a code just created on another
// replica is found quickly while a flood of typos cannot hammer the database.
func (c *Catalog) Definition(ctx context.Context, publicID, code string) (*App, *EventDefinition, error) {
	e, err := c.entry(ctx, publicID, c.ttl)
	if err != nil {
		return nil, nil, err
	}
	def := e.defs[code]
	if def == nil && time.Since(e.loadedAt) > time.Second {
		if e, err = c.entry(ctx, publicID, time.Second); err != nil {
			return nil, nil, err
		}
		def = e.defs[code]
	}
	return e.app, def, nil
}
