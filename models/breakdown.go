package models

import (
	"context"

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
)

// MaxBreakdownValues is the most values a breakdown answers.
const MaxBreakdownValues = 100

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
	if first < 1 || first > MaxBreakdownValues {
		return nil, Invalid("first", "must be between 1 and %d", MaxBreakdownValues)
	}
	s, err := resolveRange(app, in)
	if err != nil {
		return nil, err
	}
	db = db.WithContext(ctx)
	from, to := s.hourEdges()
	parts := splitRange(from, to)
	var defIDs []uint64
	if kind == kindPath {
		if err := db.Model(&EventDefinition{}).Where("app_id = ?", app.ID).Pluck("id", &defIDs).Error; err != nil {
			return nil, err
		}
	}
	var out []*DimStat
	spec := tailSpec{kinds: kindsOf(kind), devices: true, from: from, to: to}
	err = readRollups(ctx, db, app.ID, spec, func(v *rollupView) error {
		top, err := v.topDims(kind, parts, first)
		if err != nil || len(top) == 0 {
			out = nil
			return err
		}
		out = make([]*DimStat, len(top))
		byDim := map[int64]*DimStat{}
		dims := make([]int64, len(top))
		for i, t := range top {
			out[i] = &DimStat{Value: t.Value, Count: t.N}
			byDim[t.Dim] = out[i]
			dims[i] = t.Dim
		}
		est, err := v.sketchUnion(kind, []uint64{0}, dims, from, to)
		if err != nil {
			return err
		}
		for k, n := range est {
			byDim[k.dim].UniqueDevices = n
		}
		if kind != kindPath || len(defIDs) == 0 {
			return nil
		}
		eng, err := v.dimDefinitionCounts(kind, defIDs, dims, parts)
		if err != nil {
			return err
		}
		for _, e := range eng {
			st := byDim[e.Dim]
			st.Engagement = append(st.Engagement, &DefinitionCount{DefinitionID: e.DefinitionID, Count: e.N})
		}
		return nil
	})
	return out, err
}
