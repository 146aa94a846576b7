package models

import (
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// writeRollups applies a batch of rollup changes inside tx with two kinds
// of multi-row statements, keys always in primary-key order:
//  1. a locking read of every key's row (and sketch), so the read-modify-
//     write of sketches is safe with several writers (a locking read sees
//     the latest commit) and every writer takes the row locks in one order;
//  2. one upsert that adds the counts and stores the merged sketches.
//
// Two writers creating the same new row may still deadlock on the gap;
// the writer's retry settles that, and it happens once per key and bucket.
func writeRollups(tx *gorm.DB, b *rollupBatch) error {
	deltas := b.sorted()
	if len(deltas) == 0 {
		return nil
	}
	for chunk := range slices.Chunk(deltas, 500) {
		stored, err := readSketches(tx, chunk)
		if err != nil {
			return err
		}
		for _, d := range chunk {
			if d.key.sketched() {
				if d.sketch, err = mergeSketch(stored[d.key], d.devices); err != nil {
					return err
				}
			}
		}
	}
	for chunk := range slices.Chunk(deltas, 500) {
		if err := upsertRollups(tx, chunk); err != nil {
			return err
		}
	}
	return nil
}

const rollupCols = "app_id, kind, grain, definition_id, bucket, dim"

func upsertRollups(tx *gorm.DB, chunk []*rollupDelta) error {
	var sb strings.Builder
	sb.WriteString("INSERT INTO rollups (" + rollupCols + ", value, count, sketch) VALUES ")
	args := make([]any, 0, len(chunk)*9)
	for i, d := range chunk {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?,?)")
		k := d.key
		args = append(args, k.appID, k.kind, k.grain, k.defID, k.bucket, k.dim, d.value, d.count, d.sketch)
	}
	if isMySQL(tx) {
		sb.WriteString(" ON DUPLICATE KEY UPDATE count = count + VALUES(count), sketch = COALESCE(VALUES(sketch), sketch)")
	} else {
		sb.WriteString(" ON CONFLICT (" + rollupCols + ") DO UPDATE SET count = count + excluded.count, sketch = COALESCE(excluded.sketch, sketch)")
	}
	return tx.Exec(sb.String(), args...).Error
}

// readSketches reads (and on MySQL locks) the stored rows of the keys in
// one statement, in key order.
func readSketches(tx *gorm.DB, chunk []*rollupDelta) (map[rollupKey][]byte, error) {
	cond, args := keysCondition(chunk)
	query := "SELECT " + rollupCols + ", sketch FROM rollups WHERE " + cond + " ORDER BY " + rollupCols
	if isMySQL(tx) {
		query += " FOR UPDATE"
	}
	rows, err := tx.Raw(query, args...).Rows()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[rollupKey][]byte, len(chunk))
	for rows.Next() {
		var k rollupKey
		var bucket dbTime
		var sketch []byte
		if err := rows.Scan(&k.appID, &k.kind, &k.grain, &k.defID, &bucket, &k.dim, &sketch); err != nil {
			return nil, err
		}
		k.bucket = bucket.Time
		out[k] = sketch
	}
	return out, rows.Err()
}

// keysCondition selects the rows of the keys: grouped by bucket and kind,
// each group's definitions and dimensions become IN lists on the primary
// key (in practice one of them has a single value, so nothing extra matches).
func keysCondition(chunk []*rollupDelta) (string, []any) {
	type group struct {
		appID  uint64
		kind   string
		grain  int8
		bucket time.Time
	}
	defs, dims := map[group][]uint64{}, map[group][]int64{}
	var order []group
	for _, d := range chunk {
		g := group{d.key.appID, d.key.kind, d.key.grain, d.key.bucket}
		if _, ok := defs[g]; !ok {
			order = append(order, g)
		}
		defs[g] = append(defs[g], d.key.defID)
		dims[g] = append(dims[g], d.key.dim)
	}
	var sb strings.Builder
	var args []any
	for i, g := range order {
		if i > 0 {
			sb.WriteString(" OR ")
		}
		sb.WriteString("(app_id = ? AND kind = ? AND grain = ? AND bucket = ? AND definition_id IN ? AND dim IN ?)")
		ds, ms := slices.Sorted(slices.Values(defs[g])), slices.Sorted(slices.Values(dims[g]))
		args = append(args, g.appID, g.kind, g.grain, g.bucket, slices.Compact(ds), slices.Compact(ms))
	}
	return sb.String(), args
}

// rebuildRollupDays recomputes every rollup of the app in the given UTC days
// from the raw events (the backfill of the rollups migration). The caller
// holds the locks that keep the writer from storing events of this app
// meanwhile.
func rebuildRollupDays(tx *gorm.DB, appID uint64, days []time.Time) error {
	slices.SortFunc(days, time.Time.Compare)
	days = slices.Compact(days)
	var defIDs []uint64
	if err := tx.Model(&EventDefinition{}).Where("app_id = ?", appID).Order("id").Pluck("id", &defIDs).Error; err != nil {
		return err
	}
	defIDs = append([]uint64{0}, defIDs...)
	for _, day := range days {
		end := day.AddDate(0, 0, 1)
		// Naming every key prefix lets both engines delete by primary-key ranges.
		err := tx.Exec("DELETE FROM rollups WHERE app_id = ? AND kind IN ? AND grain IN ? AND definition_id IN ? AND bucket >= ? AND bucket < ?",
			appID, []string{kindDef, kindPath, kindURL, kindSource, kindRef}, []int8{grainHour, grainDay}, defIDs, day, end).Error
		if err != nil {
			return err
		}
		b := newRollupBatch()
		if err := b.addStored(tx, appID, day, end); err != nil {
			return err
		}
		if err := writeRollups(tx, b); err != nil {
			return err
		}
	}
	return nil
}
