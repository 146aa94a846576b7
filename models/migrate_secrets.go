package models

import (
	"encoding/json"
	"time"

	"gorm.io/gorm"
)

// moveRetiredSecrets copies each action's previous signing secret, while it
// still signs, into retired_secrets as its only entry; it is the data step
// of migration 2026120503_retired_secrets. Expired ones are left out:
// NULL reads as none. An action whose retired_secrets is set already (by
// a replica of the new release, or a run cut short) is left as it is.
func moveRetiredSecrets(tx *gorm.DB) error {
	type row struct {
		ID             uint64
		PreviousSecret string
		PreviousUntil  *time.Time
	}
	type retired struct {
		Secret string    `json:"secret"`
		Until  time.Time `json:"until"`
	}
	var rows []row
	err := tx.Table("automation_actions").Select("id, previous_secret, previous_until").
		Where("previous_secret <> '' AND previous_until IS NOT NULL AND retired_secrets IS NULL").Scan(&rows).Error
	if err != nil {
		return err
	}
	now := time.Now()
	for _, r := range rows {
		if !now.Before(*r.PreviousUntil) {
			continue
		}
		list, _ := json.Marshal([]retired{{Secret: r.PreviousSecret, Until: r.PreviousUntil.UTC()}})
		if err := tx.Table("automation_actions").Where("id = ? AND retired_secrets IS NULL", r.ID).Update("retired_secrets", string(list)).Error; err != nil {
			return err
		}
	}
	return nil
}
