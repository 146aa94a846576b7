package models

import (
	"context"
	"sync/atomic"
	"unsafe"
)

// LiveBudget bounds the memory of the live events waiting for one reader,
// shared by every stream it runs (a websocket's subscriptions): at most
// liveBuffer events wait per stream, and at most the budget's bytes for all
// of them together. An event that would take the waiting events past it is
// skipped for that stream, as one past liveBuffer is: the poll never waits
// for a subscriber, and a burst then costs a connection its budget, not
// liveBuffer copies per subscription. A nil budget bounds nothing.
type LiveBudget struct {
	max  int64
	used atomic.Int64
}

// NewLiveBudget returns a budget of max bytes.
func NewLiveBudget(max int64) *LiveBudget {
	return &LiveBudget{max: max}
}

// Used is how many bytes of events wait for the reader now.
func (b *LiveBudget) Used() int64 {
	return b.used.Load()
}

// take takes n bytes, reporting false, and taking nothing, when they do not
// fit.
func (b *LiveBudget) take(n int64) bool {
	if b == nil {
		return true
	}
	for {
		used := b.used.Load()
		if used+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// liveHold is the room a streamed event holds in its reader's budget.
type liveHold struct {
	budget *LiveBudget
	bytes  int64
}

// Received gives back the room e held in its stream's LiveBudget: the
// reader of a stream calls it for each event it takes from the channel.
// Calling it again, or on an event that did not come from a stream, does
// nothing.
func (e *Event) Received() {
	if h := e.live; h.budget != nil {
		h.budget.used.Add(-h.bytes)
		e.live = liveHold{}
	}
}

type liveBudgetKey struct{}

// WithLiveBudget makes the streams started with ctx (StreamEvents) share b.
func WithLiveBudget(ctx context.Context, b *LiveBudget) context.Context {
	return context.WithValue(ctx, liveBudgetKey{}, b)
}

func liveBudgetFrom(ctx context.Context) *LiveBudget {
	b, _ := ctx.Value(liveBudgetKey{}).(*LiveBudget)
	return b
}

// liveBytes estimates the memory a waiting copy of e holds: the struct and
// what it points to, its properties as decoded (maps and strings, with Go's
// overheads), which are larger than their JSON.
func liveBytes(e *Event) int64 {
	n := int64(unsafe.Sizeof(*e)) + int64(len(e.DeviceID)+len(e.URL)+len(e.Referrer)+len(e.Title)+len(e.Source)+len(e.Integration))
	if e.MessageID != nil {
		n += 16 + int64(len(*e.MessageID))
	}
	return n + valueBytes(map[string]any(e.Properties))
}

// valueBytes estimates the memory of a decoded JSON value.
func valueBytes(v any) int64 {
	switch v := v.(type) {
	case map[string]any:
		n := int64(48)
		for k, x := range v {
			n += 32 + int64(len(k)) + valueBytes(x)
		}
		return n
	case []any:
		n := int64(24)
		for _, x := range v {
			n += valueBytes(x)
		}
		return n
	case string:
		return 16 + int64(len(v))
	default:
		return 16
	}
}
