package models

import (
	"context"
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
type Catalog struct {
	db         *gorm.DB
	ttl        time.Duration
	generation atomic.Uint64
	group      singleflight.Group

	mu      sync.RWMutex
	entries map[string]*catalogEntry
}

type catalogEntry struct {
	app        *App
	defs       map[string]*EventDefinition
	loadedAt   time.Time
	generation uint64
}

// NewCatalog returns a catalog over db whose entries live at most ttl.
func NewCatalog(db *gorm.DB, ttl time.Duration) *Catalog {
	c := &Catalog{db: db, ttl: ttl, entries: map[string]*catalogEntry{}}
	registerCatalog(db, c)
	return c
}

// Invalidate drops every entry, e.g. after the writer found a definition changed.
func (c *Catalog) Invalidate() { c.generation.Add(1) }

func (c *Catalog) entry(ctx context.Context, publicID string, maxAge time.Duration) (*catalogEntry, error) {
	c.mu.RLock()
	e := c.entries[publicID]
	c.mu.RUnlock()
	if e != nil && e.generation == c.generation.Load() && time.Since(e.loadedAt) < maxAge {
		return e, nil
	}
	v, err, _ := c.group.Do(publicID, func() (any, error) {
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
		c.mu.Lock()
		c.entries[publicID] = e
		c.mu.Unlock()
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*catalogEntry), nil
}

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
