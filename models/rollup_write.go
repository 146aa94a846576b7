package models

import (
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// writeRollups applies a batch of rollup changes inside tx in three kinds of
// multi-row statements, always in primary-key order:
//  1. add the counts (creating rows as needed), which locks every row;
//  2. read the sketches of the locked rows that carry one;
//  3. write the merged sketches back.
//
// Reading after the rows are locked makes the read-modify-write of sketches
// safe with several writers (a locking read sees the latest commit).
func writeRollups(tx *gorm.DB, b *rollupBatch) error {
	deltas := b.sorted()
	if len(deltas) == 0 {
		return nil
	}
	for chunk := range slices.Chunk(deltas, 500) {
		if err := upsertRollupCounts(tx, chunk); err != nil {
			return err
		}
	}
	var sketched []*rollupDelta
	for _, d := range deltas {
		if d.key.sketched() {
			sketched = append(sketched, d)
		}
	}
	for chunk := range slices.Chunk(sketched, 200) {
		stored, err := readSketches(tx, chunk)
		if err != nil {
			return err
		}
		merged := make([][]byte, len(chunk))
		for i, d := range chunk {
			if merged[i], err = mergeSketch(stored[d.key], d.devices); err != nil {
				return err
			}
		}
		if err := writeSketches(tx, chunk, merged); err != nil {
			return err
		}
	}
	return nil
}

const rollupCols = "app_id, kind, grain, definition_id, bucket, dim"

func upsertRollupCounts(tx *gorm.DB, chunk []*rollupDelta) error {
	var sb strings.Builder
	sb.WriteString("INSERT INTO rollups (" + rollupCols + ", value, count) VALUES ")
	args := make([]any, 0, len(chunk)*8)
	for i, d := range chunk {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,?)")
		k := d.key
		args = append(args, k.appID, k.kind, k.grain, k.defID, k.bucket, k.dim, d.value, d.count)
	}
	if isMySQL(tx) {
		sb.WriteString(" ON DUPLICATE KEY UPDATE count = count + VALUES(count)")
	} else {
		sb.WriteString(" ON CONFLICT (" + rollupCols + ") DO UPDATE SET count = count + excluded.count")
	}
	return tx.Exec(sb.String(), args...).Error
}

// readSketches reads the stored sketches of the keys, one query per bucket
// and kind: definitions and dimensions become IN lists on the primary key
// (in practice one of them has a single value, so nothing extra is read).
func readSketches(tx *gorm.DB, chunk []*rollupDelta) (map[rollupKey][]byte, error) {
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
	out := make(map[rollupKey][]byte, len(chunk))
	for _, g := range order {
		q := tx.Table("rollups").Select(rollupCols+", sketch").
			Where("app_id = ? AND kind = ? AND grain = ? AND definition_id IN ? AND bucket = ? AND dim IN ?",
				g.appID, g.kind, g.grain, slices.Compact(defs[g]), g.bucket, slices.Compact(dims[g]))
		rows, err := forUpdate(q).Rows()
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k rollupKey
			var bucket dbTime
			var sketch []byte
			if err := rows.Scan(&k.appID, &k.kind, &k.grain, &k.defID, &bucket, &k.dim, &sketch); err != nil {
				rows.Close()
				return nil, err
			}
			k.bucket = bucket.Time
			out[k] = sketch
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func writeSketches(tx *gorm.DB, chunk []*rollupDelta, sketches [][]byte) error {
	var sb strings.Builder
	sb.WriteString("INSERT INTO rollups (" + rollupCols + ", value, count, sketch) VALUES ")
	args := make([]any, 0, len(chunk)*9)
	for i, d := range chunk {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString("(?,?,?,?,?,?,?,0,?)")
		k := d.key
		args = append(args, k.appID, k.kind, k.grain, k.defID, k.bucket, k.dim, d.value, sketches[i])
	}
	if isMySQL(tx) {
		sb.WriteString(" ON DUPLICATE KEY UPDATE sketch = VALUES(sketch)")
	} else {
		sb.WriteString(" ON CONFLICT (" + rollupCols + ") DO UPDATE SET sketch = excluded.sketch")
	}
	return tx.Exec(sb.String(), args...).Error
}

// rebuildRollupDays recomputes every rollup of the app in the given UTC days
// from the raw events, e.g. after events were erased: sketches cannot forget
// a device, so the affected buckets are rebuilt. The caller holds the locks
// that keep the writer from storing events of this app meanwhile.
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
		rows, err := tx.Model(&Event{}).Select("app_id, definition_id, device_id, url, referrer, source, occurred_at").
			Where("app_id = ? AND occurred_at >= ? AND occurred_at < ?", appID, day, end).Rows()
		if err != nil {
			return err
		}
		for rows.Next() {
			var e Event
			var at dbTime
			if err := rows.Scan(&e.AppID, &e.DefinitionID, &e.DeviceID, &e.URL, &e.Referrer, &e.Source, &at); err != nil {
				rows.Close()
				return err
			}
			e.OccurredAt = at.Time
			b.add(&e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if err := writeRollups(tx, b); err != nil {
			return err
		}
	}
	return nil
}
