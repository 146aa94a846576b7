package graph

import (
	"container/list"
	"context"
	"sync"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
)

// Budgets of the caches keyed by documents that callers send, anonymous
// ones included. A cache bounded by its number of entries holds that many
// of the largest entries a caller can make: 1,000 parsed documents of 990
// aliases each (16 KB of text, every one within DocumentLimits) grew the
// server to 818 MB in twelve seconds of anonymous requests. These bound the
// bytes instead; the documents of real clients weigh a few KB to a few
// hundred KB each.
const (
	documentCacheBytes  = 32 << 20
	persistedCacheBytes = 8 << 20
	planCacheBytes      = 4 << 20
)

// tokenBytes is what one lexical token of a document costs in the query
// cache once parsed and validated: measured at up to 140 bytes of heap
// (a document of aliased __typename fields; arguments and directives cost
// less), doubled for what the measure does not see.
const tokenBytes = 256

// entryBytes is the cost of an entry besides its key and value: the map
// slot, the list element and the entry.
const entryBytes = 128

// boundedCache is a least recently used cache whose entries together weigh
// at most max, their weight being about the bytes they hold.
type boundedCache[T any] struct {
	max   int
	weigh func(key string, value T) int

	mu    sync.Mutex
	used  int
	order *list.List // of *cacheEntry[T], most recently used first
	items map[string]*list.Element
}

type cacheEntry[T any] struct {
	key    string
	value  T
	weight int
}

var _ graphql.Cache[string] = (*boundedCache[string])(nil)

func newBoundedCache[T any](max int, weigh func(key string, value T) int) *boundedCache[T] {
	return &boundedCache[T]{max: max, weigh: weigh, order: list.New(), items: map[string]*list.Element{}}
}

// newDocumentCache is the parsed-query cache: a document weighs its text
// and tokenBytes per token.
func newDocumentCache(max int) *boundedCache[*ast.QueryDocument] {
	return newBoundedCache(max, func(query string, _ *ast.QueryDocument) int {
		tokens, _ := scanDocument(query, len(query), len(query))
		return len(query) + tokens*tokenBytes
	})
}

// newTextCache caches strings (persisted queries by hash), weighing both.
func newTextCache(max int) *boundedCache[string] {
	return newBoundedCache(max, func(key, value string) int { return len(key) + len(value) })
}

// Get implements graphql.Cache.
func (c *boundedCache[T]) Get(_ context.Context, key string) (T, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key]
	if !ok {
		var zero T
		return zero, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry[T]).value, true
}

// Add implements graphql.Cache. An entry heavier than the whole budget is
// not kept; others push out the least recently used until they fit.
func (c *boundedCache[T]) Add(_ context.Context, key string, value T) {
	w := entryBytes + c.weigh(key, value)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[key]; ok {
		c.remove(e)
	}
	if w > c.max {
		return
	}
	for c.used+w > c.max {
		c.remove(c.order.Back())
	}
	c.items[key] = c.order.PushFront(&cacheEntry[T]{key: key, value: value, weight: w})
	c.used += w
}

func (c *boundedCache[T]) remove(e *list.Element) {
	entry := e.Value.(*cacheEntry[T])
	c.order.Remove(e)
	delete(c.items, entry.key)
	c.used -= entry.weight
}

// weight returns the entries and their total weight, for tests.
func (c *boundedCache[T]) weight() (entries, used int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items), c.used
}
