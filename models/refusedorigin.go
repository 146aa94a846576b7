package models

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"gorm.io/gorm"
)

// RefusedOrigin counts browser requests refused because the app does not
// allow their Origin, so owners spot a mistyped allowedOrigins entry that
// refuses a whole site (the browser only sees its requests refused).
type RefusedOrigin struct {
	AppID       uint64    `gorm:"primaryKey;autoIncrement:false"`
	Origin      string    `gorm:"primaryKey;size:100"`
	Count       int64     `gorm:"not null"`
	FirstSeenAt time.Time `gorm:"not null"`
	LastSeenAt  time.Time `gorm:"not null;index:idx_refused_origins_last_seen_at"`
}

// RefusedOrigins lists an app's refused origins, most recently seen first.
func RefusedOrigins(ctx context.Context, db *gorm.DB, appID uint64, first int) ([]*RefusedOrigin, error) {
	if err := checkFirst(first); err != nil {
		return nil, err
	}
	var out []*RefusedOrigin
	err := db.WithContext(ctx).Where("app_id = ?", appID).Order("last_seen_at DESC, origin").Limit(first).Find(&out).Error
	return out, err
}

const (
	// maxRefusedOrigins is how many distinct refused origins an app keeps;
	// the least recently seen go first, so anyone who knows an app id
	// cannot grow the table by sending made-up origins.
	maxRefusedOrigins = 100
	// maxRefusedOriginBytes caps a stored origin (a real one is far shorter).
	maxRefusedOriginBytes = 100
	// maxPendingOrigins bounds the counts held in memory between flushes;
	// past it new (app, origin) pairs are not counted until the next flush.
	maxPendingOrigins = 1000
	// originFlushInterval is how often the counts are written: at most one
	// small transaction per interval per replica, whatever the traffic.
	originFlushInterval = time.Second
)

// refusedOriginError is the FORBIDDEN answer to a browser whose origin the
// app does not allow; the writer counts it (refusedOrigins).
type refusedOriginError struct {
	error
	appID  uint64
	origin string
}

func (e *refusedOriginError) Unwrap() error { return e.error }

// cleanOrigin makes an Origin header safe to store and show: valid UTF-8
// without control characters, lowercased (as OriginAllowed compares it),
// at most maxRefusedOriginBytes.
func cleanOrigin(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == utf8RuneError {
			return -1
		}
		return unicode.ToLower(r)
	}, strings.ToValidUTF8(s, ""))
	return clampUTF8(strings.TrimSpace(s), maxRefusedOriginBytes)
}

const utf8RuneError = '\uFFFD'

type originKey struct {
	appID  uint64
	origin string
}

// originTally collects refused origins in memory and writes them in one
// transaction per originFlushInterval: a flood of refused requests costs
// no database write of its own.
type originTally struct {
	mu      sync.Mutex
	pending map[originKey]*RefusedOrigin
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newOriginTally() *originTally {
	return &originTally{pending: map[originKey]*RefusedOrigin{}, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
}

// count records one refused request, if err is an origin refusal.
func (t *originTally) count(err error, now time.Time) {
	var refused *refusedOriginError
	if !errors.As(err, &refused) {
		return
	}
	origin := cleanOrigin(refused.origin)
	if origin == "" {
		return
	}
	k := originKey{refused.appID, origin}
	t.mu.Lock()
	defer t.mu.Unlock()
	r := t.pending[k]
	if r == nil {
		if len(t.pending) >= maxPendingOrigins {
			return
		}
		r = &RefusedOrigin{AppID: k.appID, Origin: origin, FirstSeenAt: now, LastSeenAt: now}
		t.pending[k] = r
	}
	r.Count++
	r.LastSeenAt = now
	select {
	case t.wake <- struct{}{}:
	default:
	}
}

func (t *originTally) take() []*RefusedOrigin {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) == 0 {
		return nil
	}
	rows := make([]*RefusedOrigin, 0, len(t.pending))
	for _, r := range t.pending {
		rows = append(rows, r)
	}
	t.pending = map[originKey]*RefusedOrigin{}
	slices.SortFunc(rows, func(a, b *RefusedOrigin) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), strings.Compare(a.Origin, b.Origin))
	})
	return rows
}

// run writes the counts at most once per originFlushInterval until close.
func (t *originTally) run(db *gorm.DB, mysql bool, timeout time.Duration, log interface {
	Warn(string, ...any)
}) {
	defer close(t.done)
	flush := func() {
		rows := t.take()
		if len(rows) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			for _, s := range countRefusedOriginsSQL(mysql, rows) {
				if err := tx.Exec(s.query, s.args...).Error; err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			// The counts are advice to owners: a store fault loses them
			// rather than piling them up.
			log.Warn("counting refused origins", "origins", len(rows), "err", err)
		}
	}
	for {
		select {
		case <-t.stop:
			flush()
			return
		case <-t.wake:
			flush()
			select {
			case <-time.After(originFlushInterval):
			case <-t.stop:
				flush()
				return
			}
		}
	}
}

func (t *originTally) close() {
	select {
	case <-t.stop:
	default:
		close(t.stop)
	}
	<-t.done
}

// countRefusedOriginsSQL adds rows to their (app, origin) counters and
// trims each app touched to its maxRefusedOrigins most recently seen.
func countRefusedOriginsSQL(mysql bool, rows []*RefusedOrigin) []stmt {
	var sb strings.Builder
	sb.WriteString("INSERT INTO refused_origins (app_id, origin, count, first_seen_at, last_seen_at) VALUES ")
	args := make([]any, 0, len(rows)*5)
	for i, r := range rows {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?)")
		args = append(args, r.AppID, r.Origin, r.Count, r.FirstSeenAt, r.LastSeenAt)
	}
	if mysql {
		sb.WriteString(" ON DUPLICATE KEY UPDATE count = count + VALUES(count), last_seen_at = GREATEST(last_seen_at, VALUES(last_seen_at))")
	} else {
		sb.WriteString(" ON CONFLICT (app_id, origin) DO UPDATE SET count = count + excluded.count, last_seen_at = max(last_seen_at, excluded.last_seen_at)")
	}
	out := []stmt{{sb.String(), args}}
	trim := `DELETE FROM refused_origins WHERE app_id = ? AND origin IN (SELECT origin FROM refused_origins
		WHERE app_id = ? ORDER BY last_seen_at DESC, origin LIMIT -1 OFFSET ?)`
	if mysql {
		trim = `DELETE FROM refused_origins WHERE app_id = ? AND origin IN (SELECT origin FROM (SELECT origin FROM refused_origins
			WHERE app_id = ? ORDER BY last_seen_at DESC, origin LIMIT 18446744073709551615 OFFSET ?) AS evicted)`
	}
	for i, r := range rows {
		if i == 0 || r.AppID != rows[i-1].AppID {
			out = append(out, stmt{trim, []any{r.AppID, r.AppID, maxRefusedOrigins}})
		}
	}
	return out
}
