package models

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Live streaming polls the database, so a subscriber sees the events stored
// by every replica, not only its own. Event ids begin with the millisecond
// they were made (idgen.go), so "the app's events made in the last few
// seconds" is a short range of the (app_id, id) index. Each poll re-reads
// that whole lookback and skips ids already sent: a transaction that commits
// late, or a replica whose clock is a little behind, is still caught as long
// as its event becomes visible within the lookback.
//
// One poll per app and database serves every subscriber of the app on this
// replica: the cost at idle is one indexed range read per app per second,
// however many dashboards watch it.
const (
	livePoll     = time.Second
	liveLookback = 10 * time.Second
	liveMaxPoll  = 1000
	// liveBuffer is how many events may wait for a slow subscriber; past it
	// the subscriber misses events (the poll never waits for one).
	liveBuffer = liveMaxPoll
)

// liveKey names one shared poll.
type liveKey struct {
	db    *gorm.DB
	appID uint64
}

// livePolls holds the running polls; a poll ends at its first tick without
// subscribers, under the same lock that adds them.
var livePolls = struct {
	sync.Mutex
	m map[liveKey]*livePoller
}{m: map[liveKey]*livePoller{}}

type livePoller struct {
	key   liveKey
	log   *slog.Logger
	start time.Time
	subs  map[*liveSub]struct{} // under livePolls' lock
}

type liveSub struct {
	start time.Time
	out   chan *Event
}

// StreamEvents sends the app's events as they are stored until ctx ends.
// Events stored before the call are not sent. Each poll reads at most the
// newest liveMaxPoll events of the lookback, and at most liveBuffer events
// wait for a subscriber that does not keep up, so on an app storing more
// than that per second some events are skipped: the stream is for watching,
// the event browser for reading everything.
func StreamEvents(ctx context.Context, db *gorm.DB, appID uint64, log *slog.Logger) <-chan *Event {
	// Received times are kept to the millisecond: so is the start.
	sub := &liveSub{start: Now(), out: make(chan *Event, liveBuffer)}
	key := liveKey{db, appID}
	livePolls.Lock()
	p := livePolls.m[key]
	if p == nil {
		p = &livePoller{key: key, log: log, start: sub.start, subs: map[*liveSub]struct{}{}}
		livePolls.m[key] = p
		go p.run()
	}
	p.subs[sub] = struct{}{}
	livePolls.Unlock()
	context.AfterFunc(ctx, func() {
		livePolls.Lock()
		delete(p.subs, sub)
		close(sub.out)
		livePolls.Unlock()
	})
	return sub.out
}

// liveSubscribers returns how many streams and shared polls are running, for
// tests and benchmarks.
func liveSubscribers() (streams, polls int) {
	livePolls.Lock()
	defer livePolls.Unlock()
	for _, p := range livePolls.m {
		streams += len(p.subs)
	}
	return streams, len(livePolls.m)
}

func (p *livePoller) run() {
	sent := map[uint64]time.Time{}
	tick := time.NewTicker(livePoll)
	defer tick.Stop()
	for range tick.C {
		livePolls.Lock()
		if len(p.subs) == 0 {
			delete(livePolls.m, p.key)
			livePolls.Unlock()
			return
		}
		livePolls.Unlock()
		now := time.Now()
		since := now.Add(-liveLookback)
		if since.Before(p.start.Add(-livePoll)) {
			since = p.start.Add(-livePoll)
		}
		events, err := eventsMadeSince(context.Background(), p.key.db, p.key.appID, since)
		if err != nil {
			if storeFault(err) {
				p.log.Error(MsgStoreUnavailable, "in", "models.StreamEvents", "app", p.key.appID, "err", err)
			} else {
				p.log.Warn("live events poll failed", "app", p.key.appID, "err", err)
			}
			continue
		}
		livePolls.Lock()
		for _, e := range events {
			if _, ok := sent[e.ID]; ok {
				continue
			}
			sent[e.ID] = now
			for sub := range p.subs {
				if e.ReceivedAt.Before(sub.start) {
					continue
				}
				c := *e // each subscriber resolves its own copy
				select {
				case sub.out <- &c:
				default:
				}
			}
		}
		livePolls.Unlock()
		for id, at := range sent {
			if now.Sub(at) > 2*liveLookback {
				delete(sent, id)
			}
		}
	}
}

// eventsMadeSince returns the newest liveMaxPoll of the app's events whose
// ids were made at or after since, in id order.
func eventsMadeSince(ctx context.Context, db *gorm.DB, appID uint64, since time.Time) ([]*Event, error) {
	minID := uint64(max(since.Sub(idEpoch).Milliseconds(), 0)) << 22
	var events []*Event
	err := db.WithContext(ctx).Where("app_id = ? AND id >= ?", appID, minID).Order("id DESC").Limit(liveMaxPoll).Find(&events).Error
	slices.Reverse(events)
	return events, err
}
