package models

import (
	"gorm.io/gorm"
)

// redactDeliveryErrors rewrites the errors in the delivery log that show
// more of their action's URL than its scheme and host, or the value of one
// of its custom headers, as hideSecretsIn does for new ones; it is the data
// step of migrations 2026120501_redact_delivery_errors and
// 2026120507_redact_delivery_header_values. Releases before the first
// recorded Go's transport errors as printed, `Post "<the whole URL>": dial
// tcp ...`, and a Slack webhook's path (or a CRM URL's path or query) is
// its credential; releases before the second recorded receivers' answers
// that echo a header's value ("invalid key crm_live_…"), which viewers of
// the delivery log may not read.
//
// Replicas of the previous release still running during a rolling upgrade
// keep recording whole URLs until they are replaced; what they record
// meanwhile is not rewritten.
func redactDeliveryErrors(tx *gorm.DB) error {
	if err := redactErrorColumn(tx, "automation_deliveries", "last_error",
		"JOIN automation_actions a ON a.id = x.action_id"); err != nil {
		return err
	}
	return redactErrorColumn(tx, "automation_attempts", "error",
		"JOIN automation_deliveries d ON d.id = x.delivery_id JOIN automation_actions a ON a.id = d.action_id")
}

// redactErrorColumn reads the table once in id order, 500 rows with an
// error at a time, each with its action's URL and headers (join names the
// action a), and
// rewrites a batch's changed rows in one transaction, each only if its
// error is still the one read: another replica may have attempted the
// delivery since.
func redactErrorColumn(tx *gorm.DB, table, column, join string) error {
	type row struct {
		ID      uint64
		Text    string
		URL     string
		Headers HeaderList
	}
	var after uint64
	for {
		var rows []row
		err := tx.Table(table+" x").Joins(join).Select("x.id, x."+column+" AS text, a.url, a.headers").
			Where("x.id > ? AND x."+column+" <> ''", after).Order("x.id").Limit(500).Scan(&rows).Error
		if err != nil || len(rows) == 0 {
			return err
		}
		after = rows[len(rows)-1].ID
		err = tx.Transaction(func(tx *gorm.DB) error {
			for _, r := range rows {
				a := &AutomationAction{URL: r.URL, Headers: r.Headers}
				if hidden := a.hideSecretsIn(r.Text); hidden != r.Text {
					if err := tx.Table(table).Where("id = ? AND "+column+" = ?", r.ID, r.Text).Update(column, hidden).Error; err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
}
