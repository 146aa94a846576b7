package models

import (
	"context"
	"fmt"
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
// that whole lookback and sends only ids it has not read before: a
// transaction that commits late, or a replica whose clock is a little
// behind, is still caught as long as its event becomes visible within the
// lookback.
//
// A stream starts from a position (LivePosition): a sealed id, so every
// event up to it was committed before the position was taken or never will
// be. The stream's first poll sends every event past the position (the
// backfill: whatever committed between the position and the subscription),
// later polls only the ids new to the poll. So a dashboard that takes a
// position when it opens and subscribes a moment later misses nothing
// committed after it opened, and gets each event once. Ids are no commit
// order, so "after the newest id I saw" is no position; a sealed id is.
//
// One poll per app and database serves every subscriber of the app on this
// replica: the cost at idle is one indexed range read per app per second,
// and one read of the app's row (its streams end when it is deleted),
// however many dashboards watch it.
const (
	livePoll     = time.Second
	liveLookback = 10 * time.Second
	// liveMaxPoll also caps a backfill at the newest 1,000 events past its
	// position: eventStored's description promises it, and the dashboard's
	// live page dedupes by remembering only that many ids.
	liveMaxPoll = 1000
	// liveBuffer is how many events may wait for a slow subscriber; past it
	// the subscriber misses events (the poll never waits for one).
	liveBuffer = liveMaxPoll
	// liveSealMargin keeps positions this far behind the clock, like the
	// event log's seals, so group commits of ids made just now rarely find
	// them sealed over (and retry); a stream may then also send the events
	// committed in the margin before its position was taken.
	liveSealMargin = 250 * time.Millisecond
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
	subs  map[*liveSub]struct{} // under livePolls' lock
	polls uint64                // polls run so far
}

type liveSub struct {
	after uint64 // ids up to it are never sent
	// firstPoll is the poll that sent the backfill, 0 until it runs (under
	// livePolls' lock).
	firstPoll uint64
	out       chan *Event
	budget    *LiveBudget // nil: none
}

// LivePosition seals the event log a moment behind the clock and returns the
// seal, a position to StreamEvents from: every event not visible when it
// returns has an id past it.
func LivePosition(ctx context.Context, db *gorm.DB) (uint64, error) {
	pos := lastIDAt(time.Now().Add(-liveSealMargin))
	if err := sealEventLog(ctx, db, pos); err != nil {
		return 0, fmt.Errorf("models.LivePosition: %w", err)
	}
	return pos, nil
}

// StreamEvents sends the app's events with ids past after (a LivePosition)
// until ctx ends, each once. Each poll reads at most the newest liveMaxPoll
// events of its range, and at most liveBuffer events, and no more than the
// bytes of ctx's LiveBudget (WithLiveBudget) for all the streams that share
// it, wait for a subscriber that does not keep up, so on an app storing
// more than that per second some events are skipped: the stream is for
// watching, the event browser for reading everything. The reader calls
// Received for each event it takes.
func StreamEvents(ctx context.Context, db *gorm.DB, appID, after uint64, log *slog.Logger) <-chan *Event {
	sub := &liveSub{after: after, out: make(chan *Event, liveBuffer), budget: liveBudgetFrom(ctx)}
	key := liveKey{db, appID}
	livePolls.Lock()
	p := livePolls.m[key]
	if p == nil {
		p = &livePoller{key: key, log: log, subs: map[*liveSub]struct{}{}}
		livePolls.m[key] = p
		go p.run()
	}
	p.subs[sub] = struct{}{}
	livePolls.Unlock()
	context.AfterFunc(ctx, func() {
		livePolls.Lock()
		if _, ok := p.subs[sub]; ok { // not ended by the app's deletion
			delete(p.subs, sub)
			close(sub.out)
		}
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
	// seen holds the ids read within the lookback; low, the lookback's
	// first id, only rises, so an id below it is never new again.
	seen := map[uint64]struct{}{}
	var low uint64
	tick := time.NewTicker(livePoll)
	defer tick.Stop()
	for range tick.C {
		low = max(low, firstIDAt(time.Now().Add(-liveLookback)))
		livePolls.Lock()
		if len(p.subs) == 0 {
			delete(livePolls.m, p.key)
			livePolls.Unlock()
			return
		}
		p.polls++
		poll, from := p.polls, low
		for sub := range p.subs {
			if sub.firstPoll == 0 {
				sub.firstPoll = poll
				from = min(from, sub.after+1)
			}
		}
		livePolls.Unlock()
		events, err := eventsFrom(context.Background(), p.key.db, p.key.appID, from)
		if err == nil {
			// A deleted app's streams end: no event of it comes any more.
			var deleted bool
			if deleted, err = appDeleted(p.key.db, p.key.appID); err == nil && deleted {
				p.end()
				return
			}
		}
		if err != nil {
			if storeFault(err) {
				p.log.Error(MsgStoreUnavailable, "in", "models.StreamEvents", "app", p.key.appID, "err", err)
			} else {
				p.log.Warn("live events poll failed", "app", p.key.appID, "err", err)
			}
			p.retryBackfill(poll)
			continue
		}
		livePolls.Lock()
		for _, e := range events {
			size := liveBytes(e)
			_, old := seen[e.ID]
			isNew := e.ID >= low && !old
			if isNew {
				seen[e.ID] = struct{}{}
			}
			for sub := range p.subs {
				if sub.firstPoll == 0 || e.ID <= sub.after || (!isNew && sub.firstPoll != poll) {
					continue
				}
				if len(sub.out) == cap(sub.out) || !sub.budget.take(size) {
					continue // skipped: the subscriber is too far behind
				}
				c := *e // each subscriber resolves its own copy
				c.live = liveHold{sub.budget, size}
				sub.out <- &c
			}
		}
		livePolls.Unlock()
		for id := range seen {
			if id < low {
				delete(seen, id)
			}
		}
	}
}

// end closes the streams of the poll's app, which was deleted, and the poll.
func (p *livePoller) end() {
	livePolls.Lock()
	defer livePolls.Unlock()
	for sub := range p.subs {
		delete(p.subs, sub)
		close(sub.out)
	}
	delete(livePolls.m, p.key)
}

// appDeleted says whether the app was deleted (appdelete.go), or is gone.
func appDeleted(db *gorm.DB, appID uint64) (bool, error) {
	var live int64
	err := db.Model(&App{}).Where("id = ? AND deleted_at IS NULL", appID).Count(&live).Error
	return live == 0, err
}

// retryBackfill makes the subscribers whose backfill was this failed poll
// get it at the next one.
func (p *livePoller) retryBackfill(poll uint64) {
	livePolls.Lock()
	defer livePolls.Unlock()
	for sub := range p.subs {
		if sub.firstPoll == poll {
			sub.firstPoll = 0
		}
	}
}

// firstIDAt is the lowest id that can be made at or after t.
func firstIDAt(t time.Time) uint64 {
	return uint64(max(t.Sub(idEpoch).Milliseconds(), 0)) << 22
}

// eventsFrom returns the newest liveMaxPoll of the app's events with ids
// from minID on, in id order.
func eventsFrom(ctx context.Context, db *gorm.DB, appID, minID uint64) ([]*Event, error) {
	var events []*Event
	err := db.WithContext(ctx).Where("app_id = ? AND id >= ?", appID, minID).Order("id DESC").Limit(liveMaxPoll).Find(&events).Error
	slices.Reverse(events)
	return events, err
}
