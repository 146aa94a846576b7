package graph

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// A bounded cache keeps the most recently used entries that fit its budget,
// whatever their number, and never an entry heavier than the budget.
func TestBoundedCacheKeepsItsBudget(t *testing.T) {
	ctx := context.Background()
	c := newTextCache(10 * (entryBytes + 100))
	value := strings.Repeat("v", 97)
	for i := range 25 {
		c.Add(ctx, fmt.Sprintf("k%02d", i), value) // weighs entryBytes + 3 + 97
	}
	if entries, used := c.weight(); entries != 10 || used != 10*(entryBytes+100) {
		t.Fatalf("%d entries weighing %d, want 10 of %d", entries, used, 10*(entryBytes+100))
	}
	if _, ok := c.Get(ctx, "k14"); ok {
		t.Fatal("k14 was kept past the budget")
	}
	// Reading k15 makes k16 the least recently used.
	if v, ok := c.Get(ctx, "k15"); !ok || v != value {
		t.Fatal("k15 was dropped")
	}
	c.Add(ctx, "k25", value)
	if _, ok := c.Get(ctx, "k16"); ok {
		t.Fatal("k16 outlived k15, read since")
	}
	if _, ok := c.Get(ctx, "k15"); !ok {
		t.Fatal("k15, read recently, was dropped")
	}
	// Adding a key again replaces its weight.
	c.Add(ctx, "k25", "")
	c.Add(ctx, "k25", value)
	if entries, used := c.weight(); entries != 10 || used != 10*(entryBytes+100) {
		t.Fatalf("after adding again: %d entries weighing %d", entries, used)
	}
	c.Add(ctx, "huge", strings.Repeat("v", 20*(entryBytes+100)))
	if _, ok := c.Get(ctx, "huge"); ok {
		t.Fatal("an entry heavier than the budget was kept")
	}
	if entries, _ := c.weight(); entries != 10 {
		t.Fatalf("an entry heavier than the budget pushed out others: %d left", entries)
	}
}

// A parsed document weighs its text and tokenBytes per token, so documents
// of many small tokens, which cost the most once parsed, weigh the most.
func TestDocumentCacheWeighsTokens(t *testing.T) {
	ctx := context.Background()
	c := newDocumentCache(1 << 20)
	q := "{ a: __typename b: __typename }" // 8 tokens
	c.Add(ctx, q, nil)
	if _, used := c.weight(); used != entryBytes+len(q)+8*tokenBytes {
		t.Fatalf("weighs %d, want %d", used, entryBytes+len(q)+8*tokenBytes)
	}
}
