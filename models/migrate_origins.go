package models

import (
	"encoding/json"
	"log/slog"
	"slices"

	"gorm.io/gorm"
)

// rewriteAllowedOrigins brings the allowed origins saved before
// normalizeOrigin checked them (releases before it stored the scheme and the
// lowercased host as given) into the form they are saved in now; it is the
// data step of migration 2026120410_allowed_origins. An entry no browser can
// send (a wildcard, a non-punycode name, a port out of range) matched
// nothing, so it leaves the list and is kept in set_aside_origins, which the
// API shows with the reason; an app whose every entry was such keeps
// refusing every browser (App.OriginAllowed).
//
// Replicas of the previous release may save an app meanwhile: a row is
// rewritten only if its list is still the one read, since a list saved
// since was normalised on save. Those replicas read the new lists as they
// are, with one difference: an app whose every entry was set aside has an
// empty list, which they read as "any origin" until they are replaced.
func rewriteAllowedOrigins(tx *gorm.DB) error {
	type row struct {
		ID             uint64
		AllowedOrigins string
	}
	var after uint64
	for {
		var rows []row
		err := tx.Table("apps").Select("id, allowed_origins").Where("id > ?", after).Order("id").Limit(500).Scan(&rows).Error
		if err != nil || len(rows) == 0 {
			return err
		}
		for _, r := range rows {
			after = r.ID
			var stored []string
			if err := json.Unmarshal([]byte(r.AllowedOrigins), &stored); err != nil {
				slog.Warn("migrate: an app's allowed origins are not a JSON list of strings; left as they are", "app_id", r.ID, "err", err)
				continue
			}
			allowed, setAside := splitAllowedOrigins(stored)
			if len(setAside) == 0 && slices.Equal(allowed, stored) {
				continue
			}
			allowedJSON, _ := json.Marshal(allowed)
			setAsideJSON, _ := json.Marshal(setAside)
			err := tx.Table("apps").Where("id = ? AND allowed_origins = ?", r.ID, r.AllowedOrigins).
				Updates(map[string]any{"allowed_origins": string(allowedJSON), "set_aside_origins": string(setAsideJSON)}).Error
			if err != nil {
				return err
			}
		}
	}
}

// splitAllowedOrigins normalises stored allowed-origin entries: allowed are
// the normalised ones, each once, in the order first listed; setAside the
// entries no browser can send, as stored, each once.
func splitAllowedOrigins(stored []string) (allowed, setAside []string) {
	allowed, setAside = []string{}, []string{}
	for _, entry := range stored {
		norm, err := normalizeOrigin(entry)
		switch {
		case err != nil:
			if !slices.Contains(setAside, entry) {
				setAside = append(setAside, entry)
			}
		case !slices.Contains(allowed, norm):
			allowed = append(allowed, norm)
		}
	}
	return allowed, setAside
}
