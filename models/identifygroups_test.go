package models_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// IdentifyGroups writes many groups in one transaction a chunk, each group
// all or none: a group refused when checked (a bad device id) or when
// written (fields that would grow its lead's too large) writes nothing of
// it, and the groups around it are written.
func TestIdentifyGroupsAllOrNone(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		in := func(device, email string, fields map[string]any) models.IdentifyInput {
			return models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: device, Email: email, Secret: e.secret, Fields: fields}
		}
		// Strings are at most 2 KB each, fields 8 KB in all.
		half := map[string]any{}
		for _, k := range []string{"n1", "n2", "n3"} {
			half[k] = strings.Repeat("n", 1800)
		}
		if errs, err := e.writer.IdentifyGroups(e.ctx, db, [][]models.IdentifyInput{{in("big-0", "big@example.com", half)}}); err != nil || errs[0] != nil {
			t.Fatal(err, errs)
		}
		errs, err := e.writer.IdentifyGroups(e.ctx, db, [][]models.IdentifyInput{
			{in("a-0", "ann@example.com", nil), in("a-1", "ann@example.com", nil)},
			{in("b-0", "bob@example.com", nil), in("b-1", "big@example.com", map[string]any{"m1": strings.Repeat("m", 1800), "m2": strings.Repeat("m", 1800), "m3": strings.Repeat("m", 1800)})},
			{in("c-0", "cat@example.com", nil), in("..", "cat@example.com", nil)},
			{in("d-0", "dan@example.com", nil)},
		})
		if err != nil {
			t.Fatal(err)
		}
		for g, want := range []struct {
			index int
			field string
		}{{-1, ""}, {1, "fields"}, {1, "deviceId"}, {-1, ""}} {
			var one *models.InputError
			var bad *models.InvalidError
			switch {
			case want.index < 0 && errs[g] != nil:
				t.Errorf("group %d: %v", g, errs[g])
			case want.index >= 0 && (!errors.As(errs[g], &one) || one.Index != want.index || !errors.As(errs[g], &bad) || bad.Field != want.field):
				t.Errorf("group %d: %#v, want input %d refused for %s", g, errs[g], want.index, want.field)
			}
		}
		owners := map[string]string{}
		var rows []struct{ DeviceID, Email string }
		db.Table("devices").Select("devices.device_id, leads.email").Joins("JOIN leads ON leads.id = devices.lead_id").
			Where("devices.app_id = ?", e.app.ID).Scan(&rows)
		for _, r := range rows {
			owners[r.DeviceID] = r.Email
		}
		want := map[string]string{"big-0": "big@example.com", "a-0": "ann@example.com", "a-1": "ann@example.com", "d-0": "dan@example.com"}
		if len(owners) != len(want) {
			t.Errorf("devices with a lead: %v, want %v", owners, want)
		}
		for d, email := range want {
			if owners[d] != email {
				t.Errorf("%s belongs to %q, want %q", d, owners[d], email)
			}
		}
		var leads int64
		db.Table("leads").Where("app_id = ? AND email IN ?", e.app.ID, []string{"bob@example.com", "cat@example.com"}).Count(&leads)
		if leads != 0 {
			t.Errorf("refused groups made %d leads", leads)
		}
	})
}
