package models

import (
	"sort"
	"strings"
	"time"
)

// Interval is the bucket size of an insights time series.
type Interval string

// Intervals of a time series; days, weeks (from Monday) and months follow
// the timezone's calendar, across daylight-saving changes.
const (
	IntervalHour  Interval = "hour"
	IntervalDay   Interval = "day"
	IntervalWeek  Interval = "week"
	IntervalMonth Interval = "month"
)

// RangeInput is the time range of an insights query.
type RangeInput struct {
	From, To time.Time
	Interval Interval
	// Timezone is an IANA name; empty means the app's timezone.
	Timezone string
}

const maxBuckets = 2000

// span is a resolved range: whole buckets of the interval in the timezone.
type span struct {
	loc      *time.Location
	interval Interval
	starts   []time.Time // bucket starts, UTC
	end      time.Time   // end of the last bucket, UTC
	// aligned is true when every bucket edge is a whole UTC hour, so hourly
	// rollups answer exactly (all zones with whole-hour offsets).
	aligned bool
}

func (s *span) from() time.Time { return s.starts[0] }

// bucketOf returns the index of the bucket holding t, or -1.
func (s *span) bucketOf(t time.Time) int {
	if t.Before(s.starts[0]) || !t.Before(s.end) {
		return -1
	}
	return sort.Search(len(s.starts), func(i int) bool { return s.starts[i].After(t) }) - 1
}

// resolveRange widens [From, To) to whole buckets in the timezone.
func resolveRange(app *App, in RangeInput) (*span, error) {
	tz := strings.TrimSpace(in.Timezone)
	if tz == "" {
		tz = app.Timezone
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "Local" {
		return nil, Invalid("timezone", "unknown IANA timezone %q", tz)
	}
	if in.Interval == "" {
		in.Interval = IntervalDay
	}
	switch in.Interval {
	case IntervalHour, IntervalDay, IntervalWeek, IntervalMonth:
	default:
		return nil, Invalid("interval", "must be hour, day, week or month")
	}
	if in.From.Before(minStoredTime) || !in.From.Before(maxStoredTime) {
		return nil, Invalid("from", "must be in the years 1000 to 9999")
	}
	if !in.From.Before(in.To) {
		return nil, Invalid("to", "must be after from")
	}
	if in.To.Sub(in.From) > 3*366*24*time.Hour {
		return nil, Invalid("to", "the range may span at most 3 years")
	}
	s := &span{loc: loc, interval: in.Interval, aligned: true}
	for start := floorBucket(in.From.In(loc), in.Interval); start.Before(in.To); {
		if len(s.starts) == maxBuckets {
			return nil, Invalid("interval", "the range holds more than %d buckets; use a larger interval", maxBuckets)
		}
		next := nextBucket(start, in.Interval)
		s.starts = append(s.starts, start.UTC())
		s.aligned = s.aligned && start.Unix()%3600 == 0
		start = next
		s.end = next.UTC()
	}
	if s.starts[0].Before(minStoredTime) {
		return nil, Invalid("from", "must be in the years 1000 to 9999, its whole bucket in the timezone included")
	}
	if !s.end.Before(maxStoredTime) {
		return nil, Invalid("to", "must be in the years 1000 to 9999, its whole bucket in the timezone included")
	}
	s.aligned = s.aligned && s.end.Unix()%3600 == 0
	return s, nil
}

func floorBucket(t time.Time, iv Interval) time.Time {
	y, m, d := t.Date()
	loc := t.Location()
	switch iv {
	case IntervalHour:
		return time.Date(y, m, d, t.Hour(), 0, 0, 0, loc)
	case IntervalWeek:
		day := time.Date(y, m, d, 0, 0, 0, 0, loc)
		return day.AddDate(0, 0, -((int(day.Weekday()) + 6) % 7))
	case IntervalMonth:
		return time.Date(y, m, 1, 0, 0, 0, 0, loc)
	}
	return time.Date(y, m, d, 0, 0, 0, 0, loc)
}

func nextBucket(t time.Time, iv Interval) time.Time {
	switch iv {
	case IntervalHour:
		// Absolute hours: the repeated hour of a DST change is its own bucket.
		return t.Add(time.Hour)
	case IntervalWeek:
		return t.AddDate(0, 0, 7)
	case IntervalMonth:
		return t.AddDate(0, 1, 0)
	}
	return t.AddDate(0, 0, 1)
}

// rangeParts splits [from, to), both whole UTC hours, into whole UTC days
// (answered by daily rollups) and the hours before and after them.
type rangeParts struct {
	days       [2]time.Time // [start, end); empty when start == end
	hoursLeft  [2]time.Time
	hoursRight [2]time.Time
}

func splitRange(from, to time.Time) rangeParts {
	d0 := utcDay(from)
	if d0.Before(from) {
		d0 = d0.AddDate(0, 0, 1)
	}
	d1 := utcDay(to)
	if !d0.Before(d1) {
		return rangeParts{days: [2]time.Time{d0, d0}, hoursLeft: [2]time.Time{from, to}, hoursRight: [2]time.Time{to, to}}
	}
	return rangeParts{days: [2]time.Time{d0, d1}, hoursLeft: [2]time.Time{from, d0}, hoursRight: [2]time.Time{d1, to}}
}

// union returns a query selecting cols of the rollup rows of the parts that
// also meet cond: one UNION ALL branch per grain range, so that each is a
// seek on the primary key (app, kind, grain, definition, bucket). An OR of
// the three ranges used only the (app, kind) prefix on SQLite and scanned
// every row of the kind.
func (p rangeParts) union(cols, cond string, args ...any) (string, []any) {
	ranges := []struct {
		grain    int8
		from, to time.Time
	}{{grainDay, p.days[0], p.days[1]}, {grainHour, p.hoursLeft[0], p.hoursLeft[1]}, {grainHour, p.hoursRight[0], p.hoursRight[1]}}
	var b strings.Builder
	var all []any
	for i, r := range ranges {
		if i > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT " + cols + " FROM rollups WHERE " + cond + " AND grain = ? AND bucket >= ? AND bucket < ?")
		all = append(append(all, args...), r.grain, r.from, r.to)
	}
	return b.String(), all
}

// unionBuckets is union naming every bucket of each grain range (bucket IN
// a list) rather than a range of buckets, for queries that also name the
// dimensions: the primary key orders dimensions after buckets, so with a
// range of buckets every dimension of every bucket is read and filtered
// (285,000 rows for the engagement of 20 pages over 30 days at 10M events),
// with the list each (definition, bucket, dimension) is one seek.
func (p rangeParts) unionBuckets(cols, cond string, args ...any) (string, []any) {
	type branch struct {
		grain   int8
		buckets []time.Time
	}
	list := func(r [2]time.Time, step time.Duration) []time.Time {
		var out []time.Time
		for t := r[0]; t.Before(r[1]); t = t.Add(step) {
			out = append(out, t)
		}
		return out
	}
	branches := []branch{{grainDay, list(p.days, 24*time.Hour)}, {grainHour, append(list(p.hoursLeft, time.Hour), list(p.hoursRight, time.Hour)...)}}
	var b strings.Builder
	var all []any
	for _, br := range branches {
		if len(br.buckets) == 0 {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT " + cols + " FROM rollups WHERE " + cond + " AND grain = ? AND bucket IN ?")
		all = append(append(all, args...), br.grain, br.buckets)
	}
	if b.Len() == 0 {
		b.WriteString("SELECT " + cols + " FROM rollups WHERE 1 = 0")
	}
	return b.String(), all
}

// hourEdges rounds a span's edges down to whole UTC hours, for breakdowns
// read from rollups in zones whose offset is not a whole hour.
func (s *span) hourEdges() (time.Time, time.Time) {
	return s.from().Truncate(time.Hour), s.end.Truncate(time.Hour)
}
