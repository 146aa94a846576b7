package models

import (
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// writeRollups applies a batch of rollup changes inside tx: it reads the
// stored sketches of the touched keys and merges the batch's devices into
// them, then adds the counts and stores the sketches with multi-row upserts
// in primary-key order. Rollups change only under the rollups consumer's
// row lock (the consumer's flush, erasure, the backfill), so nothing else
// writes these rows meanwhile.
func writeRollups(tx *gorm.DB, b *rollupBatch) error {
	deltas, err := mergeStoredSketches(tx, b)
	if err != nil {
		return err
	}
	return upsertRollupDeltas(tx, deltas)
}

// mergeStoredSketches returns the batch's changes in key order, with the
// sketches to store: each stored sketch merged with the batch's devices.
func mergeStoredSketches(q *gorm.DB, b *rollupBatch) ([]*rollupDelta, error) {
	deltas := b.sorted()
	var sketched []*rollupDelta
	for _, d := range deltas {
		if d.key.sketched() && d.devices != nil {
			sketched = append(sketched, d)
		}
	}
	for chunk := range slices.Chunk(sketched, 500) {
		stored, err := readSketches(q, chunk, false)
		if err != nil {
			return nil, err
		}
		for _, d := range chunk {
			if d.sketch, err = mergeSketch(stored[d.key], d.devices); err != nil {
				return nil, err
			}
		}
	}
	return deltas, nil
}

func upsertRollupDeltas(tx *gorm.DB, deltas []*rollupDelta) error {
	for chunk := range slices.Chunk(deltas, 500) {
		if err := upsertRollups(tx, chunk); err != nil {
			return err
		}
	}
	return nil
}

const rollupCols = "app_id, kind, grain, definition_id, bucket, dim"

// upsertRollups adds the chunk's counts and stores its sketches. On MySQL
// the statement is prepared on the server, so sketches travel as raw
// bytes in the binary protocol rather than escaped (or hex-encoded) into
// the statement's text: a flush writes hundreds of them.
func upsertRollups(tx *gorm.DB, chunk []*rollupDelta) error {
	mysql := isMySQL(tx)
	var sb strings.Builder
	sb.WriteString("INSERT INTO rollups (" + rollupCols + ", value, count, sketch) VALUES ")
	args := make([]any, 0, len(chunk)*9)
	for i, d := range chunk {
		if i > 0 {
			sb.WriteByte(',')
		}
		k := d.key
		sb.WriteString("(?,?,?,?,?,?,?,?,?)")
		var sketch any // NULL keeps the stored sketch
		if d.sketch != nil {
			sketch = d.sketch
		}
		args = append(args, k.appID, k.kind, k.grain, k.defID, k.at(), k.dim, d.value, d.count, sketch)
	}
	if mysql {
		sb.WriteString(" ON DUPLICATE KEY UPDATE count = count + VALUES(count), sketch = COALESCE(VALUES(sketch), sketch)")
	} else {
		sb.WriteString(" ON CONFLICT (" + rollupCols + ") DO UPDATE SET count = count + excluded.count, sketch = COALESCE(excluded.sketch, sketch)")
	}
	// Straight to the connection: gorm would copy the statement byte by byte.
	conn, ctx := tx.Statement.ConnPool, tx.Statement.Context
	if !mysql {
		_, err := conn.ExecContext(ctx, sb.String(), args...)
		return err
	}
	stmt, err := conn.PrepareContext(ctx, sb.String())
	if err != nil {
		return err
	}
	defer stmt.Close()
	_, err = stmt.ExecContext(ctx, args...)
	return err
}

// readSketches reads the stored sketches of the keys in one statement, in
// key order; with lock set it also locks their rows on MySQL.
func readSketches(q *gorm.DB, chunk []*rollupDelta, lock bool) (map[rollupKey][]byte, error) {
	cond, args := keysCondition(chunk)
	query := "SELECT " + rollupCols + ", sketch FROM rollups WHERE " + cond + " ORDER BY " + rollupCols
	if lock && isMySQL(q) {
		query += " FOR UPDATE"
	}
	rows, err := q.Raw(query, args...).Rows()
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
		k.bucket = bucket.Time.Unix()
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
		g := group{d.key.appID, d.key.kind, d.key.grain, d.key.at()}
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
		if err := b.addStored(tx, appID, day, end, 0); err != nil {
			return err
		}
		if err := writeRollups(tx, b); err != nil {
			return err
		}
	}
	return nil
}
