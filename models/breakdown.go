package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// DimStat is one value of a breakdown (a page, a source, a referrer host).
type DimStat struct {
	Value         string
	Count         int64
	UniqueDevices int64
	// Engagement lists the definitions triggered on a page path, most first
	// (pages grouped without query string only).
	Engagement []*DefinitionCount
}

// DefinitionCount is how often one definition fired.
type DefinitionCount struct {
	DefinitionID uint64
	Count        int64
}

// Breakdown kinds.
const (
	BreakdownPages          = "pages"
	BreakdownPagesWithQuery = "pagesWithQuery"
	BreakdownSources        = "sources"
	BreakdownReferrers      = "referrers"
	maxBreakdownValues      = 100
)

var breakdownKinds = map[string]string{
	BreakdownPages: kindPath, BreakdownPagesWithQuery: kindURL, BreakdownSources: kindSource, BreakdownReferrers: kindRef,
}

// AppBreakdown returns the top values of a dimension in a range by event
// count, with unique devices (estimated) and, for pages, the events fired on
// each. It reads rollups only; in a zone whose offset is not a whole hour the
// range edges are rounded down to whole UTC hours.
func AppBreakdown(ctx context.Context, db *gorm.DB, app *App, in RangeInput, by string, first int) ([]*DimStat, error) {
	kind, ok := breakdownKinds[by]
	if !ok {
		return nil, Invalid("by", "must be pages, pagesWithQuery, sources or referrers")
	}
	if first < 1 || first > maxBreakdownValues {
		return nil, Invalid("first", "must be between 1 and %d", maxBreakdownValues)
	}
	s, err := resolveRange(app, in)
	if err != nil {
		return nil, err
	}
	db = db.WithContext(ctx)
	from, to := s.hourEdges()
	cond, args := splitRange(from, to).where()
	var top []struct {
		Dim   int64
		Value string
		N     int64
	}
	err = db.Table("rollups").Select("dim, MAX(value) AS value, SUM(count) AS n").
		Where("app_id = ? AND kind = ? AND definition_id = 0", app.ID, kind).Where(cond, args...).
		Group("dim").Order("n DESC, value").Limit(first).Scan(&top).Error
	if err != nil || len(top) == 0 {
		return nil, err
	}
	out := make([]*DimStat, len(top))
	byDim := map[int64]*DimStat{}
	dims := make([]int64, len(top))
	for i, t := range top {
		out[i] = &DimStat{Value: t.Value, Count: t.N}
		byDim[t.Dim] = out[i]
		dims[i] = t.Dim
	}
	est, err := sketchUnion(db, app.ID, kind, []uint64{0}, dims, from, to)
	if err != nil {
		return nil, err
	}
	for k, n := range est {
		byDim[k.dim].UniqueDevices = n
	}
	if kind == kindPath {
		// Naming the definitions lets the primary key seek each one's range
		// of buckets instead of scanning every definition's history.
		var defIDs []uint64
		if err := db.Model(&EventDefinition{}).Where("app_id = ?", app.ID).Pluck("id", &defIDs).Error; err != nil {
			return nil, err
		}
		var eng []struct {
			Dim          int64
			DefinitionID uint64
			N            int64
		}
		err = db.Table("rollups").Select("dim, definition_id, SUM(count) AS n").
			Where("app_id = ? AND kind = ? AND definition_id IN ? AND dim IN ?", app.ID, kind, defIDs, dims).Where(cond, args...).
			Group("dim, definition_id").Order("n DESC, definition_id").Scan(&eng).Error
		if err != nil {
			return nil, err
		}
		for _, e := range eng {
			st := byDim[e.Dim]
			st.Engagement = append(st.Engagement, &DefinitionCount{DefinitionID: e.DefinitionID, Count: e.N})
		}
	}
	return out, nil
}

type sketchKey struct {
	defID uint64
	dim   int64
}

// sketchUnion estimates the distinct devices per (definition, dimension) in
// [from, to), whole UTC hours, by merging daily sketches for whole days and
// hourly ones for the edges. A nil dims means every dimension.
func sketchUnion(db *gorm.DB, appID uint64, kind string, defIDs []uint64, dims []int64, from, to time.Time) (map[sketchKey]int64, error) {
	cond, args := splitRange(from, to).where()
	q := db.Table("rollups").Select("definition_id, dim, sketch").
		Where("app_id = ? AND kind = ? AND definition_id IN ?", appID, kind, defIDs).Where(cond, args...)
	if dims != nil {
		q = q.Where("dim IN ?", dims)
	}
	rows, err := q.Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	merged := map[sketchKey]*sketchAcc{}
	for rows.Next() {
		var k sketchKey
		var raw []byte
		if err := rows.Scan(&k.defID, &k.dim, &raw); err != nil {
			return nil, err
		}
		if len(raw) == 0 {
			continue
		}
		acc := merged[k]
		if acc == nil {
			acc = &sketchAcc{}
			merged[k] = acc
		}
		if err := acc.add(raw); err != nil {
			return nil, err
		}
	}
	out := make(map[sketchKey]int64, len(merged))
	for k, acc := range merged {
		out[k] = acc.estimate()
	}
	return out, rows.Err()
}
