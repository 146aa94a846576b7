package models

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"gorm.io/gorm"
)

// Live streaming polls the database, so a subscriber sees the events stored
// by every replica, not only its own. Event ids begin with the millisecond
// they were made (idgen.go), so "events made in the last few seconds" is a
// short range of the primary key. Each poll re-reads that whole lookback
// and skips ids already sent: a transaction that commits late, or a replica
// whose clock is a little behind, is still caught as long as its event
// becomes visible within the lookback.
const (
	livePoll     = time.Second
	liveLookback = 10 * time.Second
	liveMaxPoll  = 1000
)

// StreamEvents sends the app's events as they are stored until ctx ends.
// Events stored before the call are not sent. Each poll reads at most the
// newest liveMaxPoll events of the lookback, so on an app storing more than
// that per poll some events are skipped: the stream is for watching, the
// event browser for reading everything.
func StreamEvents(ctx context.Context, db *gorm.DB, appID uint64, log *slog.Logger) <-chan *Event {
	out := make(chan *Event, 64)
	go func() {
		defer close(out)
		start := time.Now()
		sent := map[uint64]time.Time{}
		tick := time.NewTicker(livePoll)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			now := time.Now()
			since := now.Add(-liveLookback)
			if since.Before(start.Add(-livePoll)) {
				since = start.Add(-livePoll)
			}
			events, err := eventsMadeSince(ctx, db, appID, since)
			if err != nil {
				switch {
				case ctx.Err() != nil:
				case storeFault(err):
					log.Error(MsgStoreUnavailable, "in", "models.StreamEvents", "app", appID, "err", err)
				default:
					log.Warn("live events poll failed", "app", appID, "err", err)
				}
				continue
			}
			for _, e := range events {
				if _, ok := sent[e.ID]; ok || e.ReceivedAt.Before(start) {
					continue
				}
				sent[e.ID] = now
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
			for id, at := range sent {
				if now.Sub(at) > 2*liveLookback {
					delete(sent, id)
				}
			}
		}
	}()
	return out
}

// eventsMadeSince returns the newest liveMaxPoll of the app's events whose
// ids were made at or after since, in id order.
func eventsMadeSince(ctx context.Context, db *gorm.DB, appID uint64, since time.Time) ([]*Event, error) {
	minID := uint64(max(since.Sub(idEpoch).Milliseconds(), 0)) << 22
	var events []*Event
	err := db.WithContext(ctx).Where("id >= ? AND app_id = ?", minID, appID).Order("id DESC").Limit(liveMaxPoll).Find(&events).Error
	slices.Reverse(events)
	return events, err
}
