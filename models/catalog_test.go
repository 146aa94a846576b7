package models_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// TestCatalogLookupOutlivesItsFirstCaller starts a lookup, cancels the
// request that started it while it runs, and checks that the lookup goes on
// with a context (and deadline) of its own, so that the requests waiting on
// it are not failed by someone else's disconnect.
func TestCatalogLookupOutlivesItsFirstCaller(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		c := models.NewCatalog(db, time.Minute)
		started, release := make(chan context.Context, 1), make(chan struct{})
		models.WrapCatalogLoad(c, func(ctx context.Context, _ string) {
			started <- ctx
			<-release
		})
		released := false
		defer func() {
			if !released {
				close(release)
			}
		}()
		firstCtx, cancelFirst := context.WithCancel(e.ctx)
		first := make(chan error, 1)
		go func() {
			_, err := c.App(firstCtx, e.app.PublicID)
			first <- err
		}()
		lookupCtx := <-started
		cancelFirst()
		// The first caller stops waiting at once; the lookup it started goes on.
		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Fatalf("the cancelled caller got %v, want context.Canceled", err)
		}
		if err := lookupCtx.Err(); err != nil {
			t.Fatalf("the shared lookup was cancelled with its first caller: %v", err)
		}
		if _, ok := lookupCtx.Deadline(); !ok {
			t.Fatal("the shared lookup has no deadline of its own")
		}
		second := make(chan error, 1)
		go func() {
			got, err := c.App(e.ctx, e.app.PublicID)
			if err == nil && got.ID != e.app.ID {
				err = fmt.Errorf("got app %d", got.ID)
			}
			second <- err
		}()
		close(release)
		released = true
		if err := <-second; err != nil {
			t.Fatalf("a request waiting on the same app: %v", err)
		}
	})
}

// TestCatalogRemembersUnknownApps checks that a flood of requests for a
// made-up appId reads the store once per TTL, that an app appearing here
// meanwhile is found at once, and that the misses kept are bounded.
func TestCatalogRemembersUnknownApps(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		c := models.NewCatalog(db, time.Minute)
		var loads atomic.Int64
		models.WrapCatalogLoad(c, func(context.Context, string) { loads.Add(1) })
		madeUp := "app_madeup_" + e.app.PublicID
		for range 50 {
			if _, err := c.App(e.ctx, madeUp); !errors.Is(err, models.ErrNotFound) {
				t.Fatalf("unknown app: %v", err)
			}
		}
		if n := loads.Load(); n != 1 {
			t.Fatalf("%d lookups of one unknown app, want 1", n)
		}
		// A local write to apps (here: an app takes that id) is seen at once:
		// writers clear the catalogs by name after writing (cache.go).
		if err := db.Model(&models.App{}).Where("id = ?", e.app.ID).Update("public_id", madeUp).Error; err != nil {
			t.Fatal(err)
		}
		models.ClearCatalogs(db.WithContext(e.ctx))
		if got, err := c.App(e.ctx, madeUp); err != nil || got.ID != e.app.ID {
			t.Fatalf("an app that appeared under a remembered miss: %v", err)
		}
		for i := range models.MaxCatalogMisses + 10 {
			models.RememberCatalogMiss(c, fmt.Sprint("app_junk_", i))
		}
		if n := models.CatalogMisses(c); n > models.MaxCatalogMisses {
			t.Fatalf("%d misses kept, at most %d", n, models.MaxCatalogMisses)
		}
	})
}
