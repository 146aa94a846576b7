package models

import (
	"sync"
	"testing"
)

// Writers running in parallel (CRUMBS_WRITERS > 1) reseed the generator
// while others draw ids; under -race this was a data race on the node.
func TestIDGeneratorReseedWhileDrawing(t *testing.T) {
	g := newIDGenerator()
	const workers, each = 4, 2000
	ids := make([][]uint64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				if i%100 == 0 {
					g.reseed()
				}
				ids[w] = append(ids[w], g.next())
			}
		})
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, list := range ids {
		for _, id := range list {
			if seen[id] {
				t.Fatalf("id %d drawn twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != workers*each {
		t.Fatalf("%d ids, want %d", len(seen), workers*each)
	}
}
