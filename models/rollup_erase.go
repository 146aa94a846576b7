package models

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
)

// eraseFromRollups takes erased events (already deleted) out of the rollups
// inside the erase's transaction. It holds the rollups consumer's lock
// until the erase commits, so the consumer's watermark cannot move: events
// up to it are in the rollups and are taken out, the others never will be.
// Counts are decremented exactly. Sketches cannot forget a device, so each
// hourly sketch the events touched is rebuilt from the remaining derived
// events of its hour, and each daily one from the hourly sketches of its
// day. That reads the app's events of the affected hours only, not of
// whole days. Hours before expired (the app's expiredBefore, read under
// the app's lock) may have lost raw events to retention, whose devices
// their sketches still count: rebuilt from the events left, they would
// drop those devices, so they are kept as they are, and an erased device
// may stay counted in them (a sketch holds hashed registers, no device
// ids) while the counts lose its events.
func eraseFromRollups(tx *gorm.DB, appID uint64, erased []*Event, expired time.Time) error {
	if len(erased) == 0 {
		return nil
	}
	derived, err := lockConsumer(tx, rollupsConsumerName)
	if err != nil {
		return err
	}
	neg := newRollupBatchOf(kindsAll, false)
	hours := map[time.Time]bool{}
	for _, e := range erased {
		if e.ID > derived {
			continue
		}
		neg.add(e)
		hours[e.OccurredAt.UTC().Truncate(time.Hour)] = true
	}
	if len(hours) == 0 {
		return nil
	}
	deltas := neg.sorted()
	for _, d := range deltas {
		d.count = -d.count
	}
	for chunk := range slices.Chunk(deltas, 500) {
		if _, err := readSketches(tx, chunk, true); err != nil { // locks the rows in key order
			return err
		}
		if err := upsertRollups(tx, chunk); err != nil {
			return err
		}
		cond, args := keysCondition(chunk)
		if err := tx.Exec("DELETE FROM rollups WHERE ("+cond+") AND count <= 0", args...).Error; err != nil {
			return err
		}
	}
	affected := map[rollupKey]bool{}
	for _, d := range deltas {
		affected[d.key] = true
	}
	days := map[int64]bool{}
	for _, hour := range slices.SortedFunc(maps.Keys(hours), time.Time.Compare) {
		if hour.Before(expired) {
			continue
		}
		if err := rebuildHourSketches(tx, appID, hour, derived, affected); err != nil {
			return err
		}
		days[utcDay(hour).Unix()] = true
	}
	for _, d := range deltas {
		if d.key.grain == grainDay && d.key.sketched() && days[d.key.bucket] {
			if err := rebuildDaySketch(tx, d.key); err != nil {
				return err
			}
		}
	}
	return nil
}

// rebuildHourSketches recomputes the affected hourly sketches of the app's
// hour from its events derived so far (ids up to derived). Only keys the
// erased events counted in can hold their devices, and those rows are
// already locked. The events are read with a locking read, which sees the
// latest commit rather than the transaction's snapshot.
func rebuildHourSketches(tx *gorm.DB, appID uint64, hour time.Time, derived uint64, affected map[rollupKey]bool) error {
	b := newRollupBatch()
	if err := b.addStored(forUpdate(tx), appID, hour, hour.Add(time.Hour), derived); err != nil {
		return err
	}
	var fresh []*rollupDelta
	for _, d := range b.sorted() {
		if d.key.grain != grainHour || !d.key.sketched() || !affected[d.key] {
			continue
		}
		sketch, err := mergeSketch(nil, d.devices)
		if err != nil {
			return err
		}
		d.sketch, d.count = sketch, 0 // the counts are already right
		fresh = append(fresh, d)
	}
	for chunk := range slices.Chunk(fresh, 500) {
		if err := upsertRollups(tx, chunk); err != nil {
			return err
		}
	}
	return nil
}

// rebuildDaySketch sets a daily sketch to the union of its hourly ones. A
// plain read is enough: a writer changing another hour of this key must
// also change the daily row, which this transaction holds.
func rebuildDaySketch(tx *gorm.DB, k rollupKey) error {
	var stored [][]byte
	err := tx.Table("rollups").Where("app_id = ? AND kind = ? AND grain = ? AND definition_id = ? AND bucket >= ? AND bucket < ? AND dim = ?",
		k.appID, k.kind, grainHour, k.defID, k.at(), k.at().AddDate(0, 0, 1), k.dim).Pluck("sketch", &stored).Error
	if err != nil {
		return err
	}
	sk := newSketch()
	for _, raw := range stored {
		if len(raw) == 0 {
			continue
		}
		part := newSketch()
		if err := part.UnmarshalBinary(raw); err != nil {
			return err
		}
		if err := sk.Merge(part); err != nil {
			return err
		}
	}
	out, err := sk.MarshalBinary()
	if err != nil {
		return err
	}
	return tx.Exec("UPDATE rollups SET sketch = ? WHERE app_id = ? AND kind = ? AND grain = ? AND definition_id = ? AND bucket = ? AND dim = ?",
		out, k.appID, k.kind, k.grain, k.defID, k.at(), k.dim).Error
}

// Retention keeps the rollups of expired hours, and a page row's value is
// its path with the query string: a link may carry a person's email
// (?email=ann@example.com). Their events are gone, so erasing the lead
// cannot take them out of those rows by its events; it deletes instead
// the page rows of expired buckets whose value names the lead's email.
// Hours at or after the cutoff need none of this: there the rows count
// stored events only, and the erased ones are taken out exactly (a row
// left naming the email counts another device's event, whose URL holds it
// too).

// pageDim is a page rollup's kind and value hash: the same in every bucket.
type pageDim struct {
	Kind string
	Dim  int64
}

// expiredPagesNaming returns the app's page rows of buckets before its
// retention cutoff whose value holds email, as is or URL-encoded, and the
// cutoff. A plain read outside the erasure's transaction: expired buckets
// only change when an event is backdated into them.
func expiredPagesNaming(ctx context.Context, db *gorm.DB, appID uint64, email string) ([]pageDim, time.Time, error) {
	var expired dbTime
	if err := db.WithContext(ctx).Table("apps").Select("expired_before").Where("id = ?", appID).Row().Scan(&expired); err != nil || email == "" || expired.IsZero() {
		return nil, expired.Time, err
	}
	var cond []string
	var args []any
	forms := []string{email, url.QueryEscape(email), url.PathEscape(email)}
	for _, f := range slices.Compact(slices.Sorted(slices.Values(forms))) {
		cond = append(cond, "LOWER(value) LIKE ? ESCAPE '!'")
		args = append(args, "%"+likeEscaper.Replace(strings.ToLower(f))+"%")
	}
	var dims []pageDim
	err := db.WithContext(ctx).Table("rollups").Distinct("kind", "dim").
		Where("app_id = ? AND kind IN ? AND bucket < ?", appID, []string{kindPath, kindURL}, expired.Time).
		Where(strings.Join(cond, " OR "), args...).Find(&dims).Error
	return dims, expired.Time, err
}

var likeEscaper = strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")

// eraseExpiredPages deletes the page rows of the dims in buckets before
// expired, in the erasure's transaction, under the rollups consumer's lock.
func eraseExpiredPages(tx *gorm.DB, appID uint64, expired time.Time, dims []pageDim) error {
	if len(dims) == 0 {
		return nil
	}
	if _, err := lockConsumer(tx, rollupsConsumerName); err != nil {
		return err
	}
	for _, d := range dims {
		if err := tx.Exec("DELETE FROM rollups WHERE app_id = ? AND kind = ? AND dim = ? AND bucket < ?", appID, d.Kind, d.Dim, expired).Error; err != nil {
			return err
		}
	}
	return nil
}
