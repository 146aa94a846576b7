package models

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"
)

// Bucket is one point of a time series.
type Bucket struct {
	Start time.Time
	Count int64
}

// DefinitionStats are one definition's numbers in a range.
type DefinitionStats struct {
	Definition    *EventDefinition
	Count         int64
	UniqueDevices int64
	Series        []Bucket
}

// Overview is an app's activity in a range.
type Overview struct {
	From, To        time.Time
	Interval        Interval
	Timezone        string
	TotalEvents     int64
	UniqueDevices   int64
	IdentifiedLeads int64
	NewLeads        int64
	// Exact is true when unique devices were counted exactly rather than
	// estimated from sketches.
	Exact       bool
	Series      []Bucket
	Definitions []*DefinitionStats
}

// BucketStarts returns the start of every bucket of the series, in order.
func (o *Overview) BucketStarts() []time.Time {
	out := make([]time.Time, len(o.Series))
	for i, b := range o.Series {
		out[i] = b.Start
	}
	return out
}

// SeriesCounts returns the counts of the series, bucket by bucket.
func (o *Overview) SeriesCounts() []int64 { return seriesCounts(o.Series) }

// SeriesCounts returns the counts of the series, bucket by bucket.
func (d *DefinitionStats) SeriesCounts() []int64 { return seriesCounts(d.Series) }

func seriesCounts(series []Bucket) []int64 {
	out := make([]int64, len(series))
	for i, b := range series {
		out[i] = b.Count
	}
	return out
}

// AppOverview answers the dashboard's overview from the rollups: counts and
// series are exact; unique devices are HyperLogLog estimates (about 1%)
// unless exact is set, which counts distinct devices in the raw events.
// Zones whose offset is not a whole hour are answered from the raw events.
func AppOverview(ctx context.Context, db *gorm.DB, app *App, in RangeInput, exact bool) (*Overview, error) {
	s, err := resolveRange(app, in)
	if err != nil {
		return nil, err
	}
	db = db.WithContext(ctx)
	defs, err := EventDefinitions(ctx, db, app.ID, nil)
	if err != nil {
		return nil, err
	}
	o := &Overview{From: s.from(), To: s.end, Interval: s.interval, Timezone: s.loc.String(), Exact: exact || !s.aligned}
	byDef := map[uint64]*DefinitionStats{0: {Series: emptySeries(s)}}
	ids := []uint64{0}
	for _, d := range defs {
		st := &DefinitionStats{Definition: d, Series: emptySeries(s)}
		byDef[d.ID] = st
		ids = append(ids, d.ID)
		o.Definitions = append(o.Definitions, st)
	}
	// The parts read different rows and fill different fields: run them
	// side by side (MySQL answers them on separate connections).
	var g errgroup.Group
	if s.aligned {
		spec := tailSpec{kinds: kindsDef, devices: !exact, from: s.from(), to: s.end}
		g.Go(func() error {
			return readRollups(ctx, db, app.ID, spec, func(v *rollupView) error {
				for _, st := range byDef {
					st.Count, st.Series = 0, emptySeries(s)
				}
				parts := []func() error{func() error { return countsFromRollups(v, s, ids, byDef) }}
				if !exact {
					parts = append(parts, func() error { return uniquesFromSketches(v, s, ids, byDef) })
				}
				return v.run(parts...)
			})
		})
		if exact {
			g.Go(func() error { return exactUniques(db, app.ID, s.from(), s.end, byDef) })
		}
	} else {
		g.Go(func() error { return overviewFromEvents(db, app.ID, s, byDef) })
	}
	g.Go(func() (err error) {
		o.IdentifiedLeads, err = identifiedLeads(db, app.ID, s.from(), s.end)
		return err
	})
	g.Go(func() error {
		return db.Model(&Lead{}).Where("app_id = ? AND created_at >= ? AND created_at < ?", app.ID, s.from(), s.end).Count(&o.NewLeads).Error
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	total := byDef[0]
	o.TotalEvents, o.UniqueDevices, o.Series = total.Count, total.UniqueDevices, total.Series
	return o, nil
}

func emptySeries(s *span) []Bucket {
	out := make([]Bucket, len(s.starts))
	for i, st := range s.starts {
		out[i].Start = st
	}
	return out
}

func countsFromRollups(v *rollupView, s *span, ids []uint64, byDef map[uint64]*DefinitionStats) error {
	return v.bucketCounts(kindDef, ids, s, func(defID uint64, i int, n int64) {
		if st := byDef[defID]; st != nil {
			st.Series[i].Count += n
			st.Count += n
		}
	})
}

func uniquesFromSketches(v *rollupView, s *span, ids []uint64, byDef map[uint64]*DefinitionStats) error {
	est, err := v.sketchUnion(kindDef, ids, nil, s.from(), s.end)
	if err != nil {
		return err
	}
	for _, st := range byDef {
		st.UniqueDevices = 0
	}
	for k, n := range est {
		if st := byDef[k.defID]; st != nil {
			st.UniqueDevices = n
		}
	}
	return nil
}

func exactUniques(db *gorm.DB, appID uint64, from, to time.Time, byDef map[uint64]*DefinitionStats) error {
	var rows []struct {
		DefinitionID uint64
		N            int64
	}
	q := db.Model(&Event{}).Where("app_id = ? AND occurred_at >= ? AND occurred_at < ?", appID, from, to)
	if err := q.Select("definition_id, COUNT(DISTINCT device_id) AS n").Group("definition_id").Scan(&rows).Error; err != nil {
		return err
	}
	for _, r := range rows {
		if st := byDef[r.DefinitionID]; st != nil {
			st.UniqueDevices = r.N
		}
	}
	q = db.Model(&Event{}).Where("app_id = ? AND occurred_at >= ? AND occurred_at < ?", appID, from, to)
	return q.Select("COUNT(DISTINCT device_id)").Scan(&byDef[0].UniqueDevices).Error
}

// overviewFromEvents computes everything from the raw events, for zones
// whose bucket edges do not fall on whole UTC hours.
func overviewFromEvents(db *gorm.DB, appID uint64, s *span, byDef map[uint64]*DefinitionStats) error {
	rows, err := db.Model(&Event{}).Select("definition_id, device_id, occurred_at").
		Where("app_id = ? AND occurred_at >= ? AND occurred_at < ?", appID, s.from(), s.end).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	devices := map[uint64]map[string]bool{}
	for rows.Next() {
		var defID uint64
		var device string
		var at dbTime
		if err := rows.Scan(&defID, &device, &at); err != nil {
			return err
		}
		i := s.bucketOf(at.Time)
		for _, id := range []uint64{0, defID} {
			st := byDef[id]
			if st == nil || i < 0 {
				continue
			}
			st.Count++
			st.Series[i].Count++
			if devices[id] == nil {
				devices[id] = map[string]bool{}
			}
			devices[id][device] = true
		}
	}
	for id, set := range devices {
		byDef[id].UniqueDevices = int64(len(set))
	}
	return rows.Err()
}

// identifiedLeads counts the leads owning a device with an event in
// [from, to). A device first or last seen inside the range qualifies at once;
// only devices seen before and after it need a look at their events.
func identifiedLeads(db *gorm.DB, appID uint64, from, to time.Time) (int64, error) {
	var n int64
	err := db.Raw(`SELECT COUNT(DISTINCT d.lead_id) FROM devices d
		WHERE d.app_id = ? AND d.lead_id IS NOT NULL AND d.last_seen_at >= ? AND d.first_seen_at < ?
		AND ((d.first_seen_at >= ?) OR (d.last_seen_at < ?) OR EXISTS (
			SELECT 1 FROM events e WHERE e.app_id = d.app_id AND e.device_id = d.device_id AND e.occurred_at >= ? AND e.occurred_at < ?))`,
		appID, from, to, from, to, from, to).Scan(&n).Error
	return n, err
}
