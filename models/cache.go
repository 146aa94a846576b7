package models

import (
	"sync"
	"weak"

	"gorm.io/gorm"
)

// The process keeps two caches of database rows: the catalog of apps and
// definitions (catalog.go) and the devices the writer stored moments ago
// (devicecache.go). Every function that writes those rows clears them by
// name, right after its write (STYLE.md: invalidate caches where you
// write), rather than through ORM callbacks, which raw statements bypass.
// Caches register with the database handle they read (keyed by its
// callbacks, which every session and transaction of the handle shares,
// while each gets a *gorm.Config of its own); other replicas' caches
// expire by their TTL.

type dbCaches struct {
	mu       sync.Mutex
	catalogs []weak.Pointer[Catalog]
	devices  []weak.Pointer[recentDevices]
}

var cachesByDB sync.Map // the handle's callbacks → *dbCaches

func cachesOf(db *gorm.DB) *dbCaches {
	c, _ := cachesByDB.LoadOrStore(db.Callback(), &dbCaches{})
	return c.(*dbCaches)
}

// registerCatalog makes clearCatalogs reach c.
func registerCatalog(db *gorm.DB, c *Catalog) {
	cs := cachesOf(db)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.catalogs = append(liveOnly(cs.catalogs), weak.Make(c))
}

// registerRecentDevices makes forgetRecentDevices reach r.
func registerRecentDevices(db *gorm.DB, r *recentDevices) {
	cs := cachesOf(db)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.devices = append(liveOnly(cs.devices), weak.Make(r))
}

// clearCatalogs drops this process's cached apps and definitions; call it
// after writing an app or an event definition.
func clearCatalogs(db *gorm.DB) {
	cs := cachesOf(db)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, p := range cs.catalogs {
		if c := p.Value(); c != nil {
			c.Invalidate()
		}
	}
}

// forgetRecentDevices drops devices from this process's recently-stored
// cache; call it after deleting devices, so their next event stores them
// again.
func forgetRecentDevices(db *gorm.DB, appID uint64, deviceIDs []string) {
	cs := cachesOf(db)
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, p := range cs.devices {
		if r := p.Value(); r != nil {
			r.forget(appID, deviceIDs)
		}
	}
}

// liveOnly drops the pointers whose cache was collected.
func liveOnly[T any](ps []weak.Pointer[T]) []weak.Pointer[T] {
	out := ps[:0]
	for _, p := range ps {
		if p.Value() != nil {
			out = append(out, p)
		}
	}
	return out
}
