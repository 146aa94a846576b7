package models

import (
	"context"
	"time"
)

// Hooks for the external tests (package models_test), which can use
// modelstest; this file is compiled only into the package's test binary.

// WrapCatalogLoad runs before(ctx, publicID) ahead of every store read of
// the catalog, with the context the read will use.
func WrapCatalogLoad(c *Catalog, before func(ctx context.Context, publicID string)) {
	load := c.load
	c.load = func(ctx context.Context, publicID string) (*catalogEntry, error) {
		before(ctx, publicID)
		return load(ctx, publicID)
	}
}

// MaxCatalogMisses is how many unknown app ids a catalog remembers.
const MaxCatalogMisses = maxCatalogMisses

// RememberCatalogMiss records publicID as unknown, as a failed lookup does.
func RememberCatalogMiss(c *Catalog, publicID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rememberMiss(publicID, catalogMiss{at: time.Now(), generation: c.generation.Load()})
}

// CatalogMisses returns how many unknown app ids c remembers.
func CatalogMisses(c *Catalog) int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.misses)
}
