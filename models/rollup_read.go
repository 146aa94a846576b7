package models

import (
	"cmp"
	"context"
	"database/sql"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/axiomhq/hyperloglog"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"
)

// Every read of rollups goes through a rollupView, which keeps insights
// exact at every instant although rollups are derived after the events
// are acknowledged: it reads the rollups as derived up to the rollups
// consumer's watermark and adds the app's events past the watermark (a
// short range of the primary key), counted by the same code the consumer
// uses. Rollups and watermark move together in one transaction; a view
// notices when they moved (or an erasure changed them) while it read, and
// reads again (see readRollups).

// rollupView is a consistent view of an app's rollups.
type rollupView struct {
	db      *gorm.DB
	appID   uint64
	derived uint64       // the watermark: events with ids up to it are in the rollups
	tail    *rollupBatch // the app's events past it, within the view's time range
	// sequential is set inside a transaction, whose connection serves one
	// query at a time.
	sequential bool
}

// tailSpec says which events past the watermark a view needs: those that
// occurred in [from, to), counted in kinds, with device sketches or not.
type tailSpec struct {
	kinds    kindSet
	devices  bool
	from, to time.Time
}

// readRollups runs read against a consistent view of the app's rollups.
// read may run more than once (when the consumer flushed or an erasure
// committed meanwhile) and must start from scratch each time; after three
// such collisions it runs in a read-only transaction instead, whose
// snapshot nothing moves, with its queries one after the other.
func readRollups(ctx context.Context, db *gorm.DB, appID uint64, spec tailSpec, read func(v *rollupView) error) error {
	db = db.WithContext(ctx)
	for range 3 {
		pos, gen, err := rollupsWatermark(db)
		if err != nil {
			return err
		}
		v := &rollupView{db: db, appID: appID, derived: pos}
		if err := v.loadTail(spec); err != nil {
			return err
		}
		if err := read(v); err != nil {
			return err
		}
		_, again, err := rollupsWatermark(db)
		if err != nil || again == gen {
			return err
		}
	}
	opts := &sql.TxOptions{ReadOnly: true}
	if isMySQL(db) {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return db.Transaction(func(tx *gorm.DB) error {
		pos, _, err := rollupsWatermark(tx)
		if err != nil {
			return err
		}
		v := &rollupView{db: tx, appID: appID, derived: pos, sequential: true}
		if err := v.loadTail(spec); err != nil {
			return err
		}
		return read(v)
	}, opts)
}

func rollupsWatermark(db *gorm.DB) (position, generation uint64, err error) {
	var row struct{ Position, Generation uint64 }
	err = db.Raw("SELECT position, generation FROM event_log_consumers WHERE name = ?", rollupsConsumerName).Scan(&row).Error
	return row.Position, row.Generation, err
}

// run runs the parts side by side (MySQL answers them on separate
// connections), or one after the other inside a transaction.
func (v *rollupView) run(parts ...func() error) error {
	var g errgroup.Group
	for _, part := range parts {
		if v.sequential {
			if err := part(); err != nil {
				return err
			}
			continue
		}
		g.Go(part)
	}
	return g.Wait()
}

// loadTail counts the app's events past the watermark that occurred in the
// spec's range.
func (v *rollupView) loadTail(spec tailSpec) error {
	v.tail = newRollupBatchOf(spec.kinds, spec.devices)
	cols := []string{"definition_id", "occurred_at"}
	if spec.devices {
		cols = append(cols, "device_id")
	}
	if spec.kinds&(kindsPath|kindsURL) != 0 {
		cols = append(cols, "url")
	}
	if spec.kinds&kindsSource != 0 {
		cols = append(cols, "source")
	}
	if spec.kinds&kindsRef != 0 {
		cols = append(cols, "referrer")
	}
	// The tail is the newest second or so of events: a short range of the
	// (app_id, id) index. SQLite's planner, seeing a range on occurred_at
	// too, walked the (app_id, occurred_at) index over every event of the
	// range instead (186 ms of CPU per overview at 1M events); MariaDB picks
	// the id range by itself.
	table := "events"
	if v.db.Dialector.Name() == "sqlite" {
		table = "events INDEXED BY idx_events_app_id"
	}
	rows, err := v.db.Table(table).Select(strings.Join(cols, ", ")).
		Where("app_id = ? AND id > ? AND occurred_at >= ? AND occurred_at < ?", v.appID, v.derived, spec.from, spec.to).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	e := Event{AppID: v.appID}
	var at dbTime
	dest := []any{&e.DefinitionID, &at}
	for _, c := range cols[2:] {
		switch c {
		case "device_id":
			dest = append(dest, &e.DeviceID)
		case "url":
			dest = append(dest, &e.URL)
		case "source":
			dest = append(dest, &e.Source)
		case "referrer":
			dest = append(dest, &e.Referrer)
		}
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		e.OccurredAt = at.Time
		v.tail.add(&e)
	}
	return rows.Err()
}

// tailDeltas returns the tail's changes of kind for the definitions, the
// dimensions (nil: any) and the buckets that in accepts.
func (v *rollupView) tailDeltas(kind string, defIDs []uint64, dims []int64, in func(grain int8, bucket time.Time) bool) []*rollupDelta {
	var out []*rollupDelta
	for _, d := range v.tail.byKey {
		k := d.key
		if k.kind == kind && slices.Contains(defIDs, k.defID) && (dims == nil || slices.Contains(dims, k.dim)) && in(k.grain, k.at()) {
			out = append(out, d)
		}
	}
	return out
}

// bucketCounts calls add with the counts of kind per definition and bucket of
// an aligned span (every bucket edge a whole UTC hour). Each bucket is made of
// rollup rows per UTC day it overlaps, whichever takes fewer rows: the daily
// row when the day lies inside the bucket, the hourly rows of the hours
// inside, or the daily row minus the hourly rows of the hours outside (a
// summer day in Amsterdam, UTC+2, is 22 hours of one UTC day, read as that day
// minus two hours, and 2 hours of the day before). A 30-day overview by day
// reads 5 rows per bucket and definition instead of 24; counts stay exact,
// since daily rows are the sums of their hours.
func (v *rollupView) bucketCounts(kind string, defIDs []uint64, s *span, add func(defID uint64, bucket int, n int64)) error {
	type slot struct {
		grain int8
		at    int64
	}
	type use struct {
		bucket int
		sign   int64
	}
	uses := map[slot][]use{}
	var days, hours []int64
	put := func(grain int8, at time.Time, bucket int, sign int64) {
		k := slot{grain, at.Unix()}
		if uses[k] == nil {
			if grain == grainDay {
				days = append(days, k.at)
			} else {
				hours = append(hours, k.at)
			}
		}
		uses[k] = append(uses[k], use{bucket, sign})
	}
	putHours := func(from, to time.Time, bucket int, sign int64) {
		for h := from; h.Before(to); h = h.Add(time.Hour) {
			put(grainHour, h, bucket, sign)
		}
	}
	for i, a := range s.starts {
		b := s.end
		if i+1 < len(s.starts) {
			b = s.starts[i+1]
		}
		for d := utcDay(a); d.Before(b); d = d.Add(24 * time.Hour) {
			lo, hi := maxTime(a, d), minTime(b, d.Add(24*time.Hour))
			inside := int(hi.Sub(lo) / time.Hour)
			switch {
			case inside == 24:
				put(grainDay, d, i, 1)
			case 1+24-inside < inside:
				put(grainDay, d, i, 1)
				putHours(d, lo, i, -1)
				putHours(hi, d.Add(24*time.Hour), i, -1)
			default:
				putHours(lo, hi, i, 1)
			}
		}
	}
	slices.Sort(days)
	slices.Sort(hours)
	sql, args := countRowsQuery(v.appID, kind, defIDs, days, hours)
	rows, err := v.db.Raw(sql, args...).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	apply := func(defID uint64, grain int8, at int64, n int64) {
		for _, u := range uses[slot{grain, at}] {
			add(defID, u.bucket, u.sign*n)
		}
	}
	for rows.Next() {
		var defID uint64
		var grain int8
		var bucket dbTime
		var n int64
		if err := rows.Scan(&defID, &grain, &bucket, &n); err != nil {
			return err
		}
		apply(defID, grain, bucket.Unix(), n)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	used := func(grain int8, bucket time.Time) bool { return uses[slot{grain, bucket.Unix()}] != nil }
	for _, d := range v.tailDeltas(kind, defIDs, nil, used) {
		apply(d.key.defID, d.key.grain, d.key.bucket, d.count)
	}
	return nil
}

// countRowsQuery selects (definition, grain, bucket, count) of the rollup
// rows of kind at the given daily and hourly bucket starts (unix seconds,
// ascending): each grain as one range of the primary key when the starts
// fill most of it, else as a list, so that every branch is a seek.
func countRowsQuery(appID uint64, kind string, defIDs []uint64, days, hours []int64) (string, []any) {
	var b strings.Builder
	var args []any
	branch := func(grain int8, starts []int64, step int64) {
		if len(starts) == 0 {
			return
		}
		if b.Len() > 0 {
			b.WriteString(" UNION ALL ")
		}
		b.WriteString("SELECT definition_id, grain, bucket, count FROM rollups WHERE app_id = ? AND kind = ? AND grain = ? AND definition_id IN ?")
		args = append(args, appID, kind, grain, defIDs)
		first, last := starts[0], starts[len(starts)-1]
		if int64(len(starts))*2 >= (last-first)/step+1 {
			b.WriteString(" AND bucket >= ? AND bucket <= ?")
			args = append(args, time.Unix(first, 0).UTC(), time.Unix(last, 0).UTC())
			return
		}
		list := make([]time.Time, len(starts))
		for i, t := range starts {
			list[i] = time.Unix(t, 0).UTC()
		}
		b.WriteString(" AND bucket IN ?")
		args = append(args, list)
	}
	branch(grainDay, days, 24*3600)
	branch(grainHour, hours, 3600)
	if b.Len() == 0 {
		b.WriteString("SELECT definition_id, grain, bucket, count FROM rollups WHERE 1 = 0")
	}
	return b.String(), args
}

type sketchKey struct {
	defID uint64
	dim   int64
}

// sketchUnion estimates the distinct devices per (definition, dimension) in
// [from, to), whole UTC hours, by merging daily sketches for whole days and
// hourly ones for the edges. A nil dims means every dimension.
func (v *rollupView) sketchUnion(kind string, defIDs []uint64, dims []int64, from, to time.Time) (map[sketchKey]int64, error) {
	parts := splitRange(from, to)
	cond, args := "app_id = ? AND kind = ? AND definition_id IN ?", []any{v.appID, kind, defIDs}
	if dims != nil {
		cond, args = cond+" AND dim IN ?", append(args, dims)
	}
	sql, all := parts.union("definition_id, dim, sketch", cond, args...)
	if dims != nil {
		sql, all = parts.unionBuckets("definition_id, dim, sketch", cond, args...)
	}
	rows, err := v.db.Raw(sql, all...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	merged := map[sketchKey]*sketchAcc{}
	acc := func(k sketchKey) *sketchAcc {
		a := merged[k]
		if a == nil {
			a = &sketchAcc{}
			merged[k] = a
		}
		return a
	}
	for rows.Next() {
		var k sketchKey
		var raw []byte
		if err := rows.Scan(&k.defID, &k.dim, &raw); err != nil {
			return nil, err
		}
		if len(raw) == 0 {
			continue
		}
		if err := acc(k).add(raw); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, d := range v.tailDeltas(kind, defIDs, dims, parts.contains) {
		if d.devices != nil {
			if err := acc(sketchKey{d.key.defID, d.key.dim}).merge(d.devices); err != nil {
				return nil, err
			}
		}
	}
	out := make(map[sketchKey]int64, len(merged))
	for k, a := range merged {
		out[k] = a.estimate()
	}
	return out, nil
}

// dimTotal is one dimension value's count.
type dimTotal struct {
	Dim   int64
	Value string
	N     int64
}

// topDims returns the first values of kind over all definitions by count
// in the range parts, most first (ties by value).
func (v *rollupView) topDims(kind string, parts rangeParts, first int) ([]dimTotal, error) {
	var top []dimTotal
	sql, args := parts.union("dim, value, count", "app_id = ? AND kind = ? AND definition_id = 0", v.appID, kind)
	err := v.db.Raw("SELECT dim, MAX(value) AS value, SUM(count) AS n FROM ("+sql+") r GROUP BY dim ORDER BY n DESC, value LIMIT ?",
		append(args, first)...).Scan(&top).Error
	if err != nil {
		return nil, err
	}
	tail := v.tailDeltas(kind, []uint64{0}, nil, parts.contains)
	if len(tail) == 0 {
		return top, nil
	}
	// A value outside the stored top can enter it only through the tail, so
	// the tail's values are the only others to weigh.
	totals := map[int64]dimTotal{}
	for _, t := range top {
		totals[t.Dim] = t
	}
	var others []int64
	for _, d := range tail {
		if _, ok := totals[d.key.dim]; !ok && !slices.Contains(others, d.key.dim) {
			others = append(others, d.key.dim)
		}
	}
	if len(others) > 0 {
		var stored []dimTotal
		sql, args := parts.union("dim, value, count", "app_id = ? AND kind = ? AND definition_id = 0 AND dim IN ?", v.appID, kind, others)
		err := v.db.Raw("SELECT dim, MAX(value) AS value, SUM(count) AS n FROM ("+sql+") r GROUP BY dim", args...).Scan(&stored).Error
		if err != nil {
			return nil, err
		}
		for _, t := range stored {
			totals[t.Dim] = t
		}
	}
	for _, d := range tail {
		t, ok := totals[d.key.dim]
		if !ok {
			t = dimTotal{Dim: d.key.dim, Value: d.value}
		}
		t.N += d.count
		totals[d.key.dim] = t
	}
	all := slices.Collect(maps.Values(totals))
	slices.SortFunc(all, func(a, b dimTotal) int { return cmp.Or(cmp.Compare(b.N, a.N), strings.Compare(a.Value, b.Value)) })
	return all[:min(first, len(all))], nil
}

// dimDefinitionCount is how often one definition fired on one dimension value.
type dimDefinitionCount struct {
	Dim          int64
	DefinitionID uint64
	N            int64
}

// dimDefinitionCounts returns the counts of kind per dimension value and
// definition in the range parts, most first per value (ties by definition).
func (v *rollupView) dimDefinitionCounts(kind string, defIDs []uint64, dims []int64, parts rangeParts) ([]dimDefinitionCount, error) {
	var out []dimDefinitionCount
	// Naming the definitions lets the primary key seek each one's range of
	// buckets instead of scanning every definition's history.
	sql, args := parts.unionBuckets("dim, definition_id, count", "app_id = ? AND kind = ? AND definition_id IN ? AND dim IN ?", v.appID, kind, defIDs, dims)
	err := v.db.Raw("SELECT dim, definition_id, SUM(count) AS n FROM ("+sql+") r GROUP BY dim, definition_id", args...).Scan(&out).Error
	if err != nil {
		return nil, err
	}
	type key struct {
		dim int64
		def uint64
	}
	index := map[key]int{}
	for i, c := range out {
		index[key{c.Dim, c.DefinitionID}] = i
	}
	for _, d := range v.tailDeltas(kind, defIDs, dims, parts.contains) {
		k := key{d.key.dim, d.key.defID}
		if i, ok := index[k]; ok {
			out[i].N += d.count
			continue
		}
		index[k] = len(out)
		out = append(out, dimDefinitionCount{Dim: k.dim, DefinitionID: k.def, N: d.count})
	}
	slices.SortFunc(out, func(a, b dimDefinitionCount) int {
		return cmp.Or(cmp.Compare(b.N, a.N), cmp.Compare(a.DefinitionID, b.DefinitionID))
	})
	return out, nil
}

// contains reports whether union() selects a rollup row of this grain and
// bucket.
func (p rangeParts) contains(grain int8, bucket time.Time) bool {
	in := func(r [2]time.Time) bool { return !bucket.Before(r[0]) && bucket.Before(r[1]) }
	if grain == grainDay {
		return in(p.days)
	}
	return grain == grainHour && (in(p.hoursLeft) || in(p.hoursRight))
}

// merge adds a sketch of devices to the union.
func (a *sketchAcc) merge(sk *hyperloglog.Sketch) error {
	if a.sk == nil {
		a.sk, _ = hyperloglog.NewSketch(sketchPrecision, false)
	}
	return a.sk.Merge(sk)
}
