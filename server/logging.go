package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/crumbs-dev/crumbs/models"
)

// throttleStoreFaults passes every record to next, except store faults
// (models.MsgStoreUnavailable): of those at most one line per interval is
// written, the first at once and the rest summed up by the latest of them
// with "count", the number of faults the line stands for. A stopped database
// then costs one log line per second instead of one per request.
func throttleStoreFaults(next slog.Handler, every time.Duration) *throttleHandler {
	return &throttleHandler{next: next, s: &throttleState{every: every}}
}

type throttleHandler struct {
	next slog.Handler
	s    *throttleState // shared by the handlers derived with WithAttrs/WithGroup
}

type throttleState struct {
	every time.Duration
	mu    sync.Mutex
	last  time.Time // when the last fault line was written
	held  int       // faults since then
	rec   slog.Record
	next  slog.Handler
	timer *time.Timer
}

func (h *throttleHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *throttleHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &throttleHandler{next: h.next.WithAttrs(attrs), s: h.s}
}

func (h *throttleHandler) WithGroup(name string) slog.Handler {
	return &throttleHandler{next: h.next.WithGroup(name), s: h.s}
}

func (h *throttleHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message != models.MsgStoreUnavailable {
		return h.next.Handle(ctx, r)
	}
	s := h.s
	s.mu.Lock()
	now := time.Now()
	if s.held == 0 && now.Sub(s.last) >= s.every {
		s.last = now
		s.mu.Unlock()
		return h.next.Handle(ctx, r)
	}
	s.held++
	s.rec, s.next = snapshot(r), h.next
	if s.timer == nil {
		s.timer = time.AfterFunc(s.last.Add(s.every).Sub(now), h.Flush)
	}
	s.mu.Unlock()
	return nil
}

// Flush writes the store fault held back, if any, now: the timer does so
// when the interval is up, and the server before it exits.
func (h *throttleHandler) Flush() {
	s := h.s
	s.mu.Lock()
	rec, next, n := s.rec, s.next, s.held
	if s.timer != nil {
		s.timer.Stop()
	}
	s.held, s.timer, s.rec, s.next = 0, nil, slog.Record{}, nil
	if n > 0 {
		s.last = time.Now()
	}
	s.mu.Unlock()
	if n > 0 {
		rec.AddAttrs(slog.Int("count", n))
		next.Handle(context.Background(), rec)
	}
}

// flushLog writes what log's handler holds back, if it holds anything.
func flushLog(log *slog.Logger) {
	if h, ok := log.Handler().(*throttleHandler); ok {
		h.Flush()
	}
}

// snapshot copies a record with its values turned into text now: a held
// record is written later, when the values it points to (an error a
// resolver goes on to change, say) may have changed or be in use.
func snapshot(r slog.Record) slog.Record {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(frozenAttr(a))
		return true
	})
	return out
}

func frozenAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, err.Error())
		}
		return slog.String(a.Key, fmt.Sprint(v.Any()))
	case slog.KindGroup:
		group := v.Group()
		frozen := make([]slog.Attr, len(group))
		for i, g := range group {
			frozen[i] = frozenAttr(g)
		}
		return slog.Attr{Key: a.Key, Value: slog.GroupValue(frozen...)}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
