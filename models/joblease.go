package models

import (
	"context"
	"time"

	"gorm.io/gorm"
)

// Jobs that one replica at a time may run hold a lease in job_leases: the
// lifecycle job (lifecycle.go) and each erasure while it runs (eraser.go).
// A holder renews its lease after every chunk of work; a lease not renewed
// by its time lapses, and another replica (or this one, restarted) takes
// the job over.

// takeJobLease takes the lease name for owner until now+ttl, or renews it,
// and reports whether owner holds it.
func takeJobLease(ctx context.Context, db *gorm.DB, name, owner string, now time.Time, ttl time.Duration) (bool, error) {
	db = db.WithContext(ctx)
	conflict := " ON CONFLICT (name) DO NOTHING"
	if isMySQL(db) {
		conflict = " ON DUPLICATE KEY UPDATE name = name"
	}
	if err := db.Exec("INSERT INTO job_leases (name, lease_owner, lease_until) VALUES (?, '', 0)"+conflict, name).Error; err != nil {
		return false, err
	}
	until := now.Add(ttl).UnixMilli()
	res := db.Exec("UPDATE job_leases SET lease_owner = ?, lease_until = ? WHERE name = ? AND (lease_owner = ? OR lease_until < ?)",
		owner, until, name, owner, now.UnixMilli())
	if res.Error != nil || res.RowsAffected == 1 {
		return res.Error == nil, res.Error
	}
	// MySQL counts a renewal that changed nothing as no row: look.
	var held string
	err := db.Raw("SELECT lease_owner FROM job_leases WHERE name = ? AND lease_until = ?", name, until).Scan(&held).Error
	return err == nil && held == owner, err
}

// releaseJobLease ends owner's lease early, so that another replica may
// take the job at once. Its own deadline: it runs as its holder stops.
func releaseJobLease(db *gorm.DB, name, owner string, now time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db.WithContext(ctx).Exec("UPDATE job_leases SET lease_until = ? WHERE name = ? AND lease_owner = ?", now.UnixMilli()-1, name, owner)
}

// dropJobLease deletes owner's lease of a job that is over (a run that found
// its erasure finished by another), so that no row is left behind.
func dropJobLease(db *gorm.DB, name, owner string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db.WithContext(ctx).Exec("DELETE FROM job_leases WHERE name = ? AND lease_owner = ?", name, owner)
}
