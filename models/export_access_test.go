package models_test

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// An export stops within a chunk of its caller losing access: here an
// editor is removed from the app once the first 1,000 events are written,
// and the export ends with NOT_FOUND (what a removed member is told of the
// app) instead of writing the rest; its receipt counts what was written.
// The role was read once, when the export began (the authorization audit).
func TestExportStopsWhenAccessEnds(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for b := range 3 {
			var ins []models.TriggerInput
			for i := range 500 {
				ins = append(ins, models.TriggerInput{AppPublicID: e.app.PublicID, DeviceID: fmt.Sprint("d", i%7), Code: "view",
					MessageID: ptr(fmt.Sprint("export-access-", b, "-", i)), Secret: e.secret})
			}
			for _, r := range e.writer.Trigger(e.ctx, ins) {
				if r.Err != nil || !r.Accepted {
					t.Fatalf("%+v", r)
				}
			}
		}
		member := newUser(t, db)
		e.join(member, models.RoleEditor)
		x, err := models.PrepareExport(e.ctx, db, member, e.app.PublicID, models.ExportFilter{}, models.ExportNDJSON)
		if err != nil {
			t.Fatal(err)
		}
		removed := false
		var out bytes.Buffer
		res, err := x.Run(e.ctx, &out, func() {
			if !removed {
				removed = true
				if err := models.RemoveMember(e.ctx, db, e.owner, e.app.PublicID, models.FormatID(member.UserID)); err != nil {
					t.Fatal(err)
				}
			}
		})
		if !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("export after the member was removed: %v", err)
		}
		if lines := bytes.Count(out.Bytes(), []byte("\n")); res.Events != 1000 || lines != 1000 {
			t.Fatalf("%d events counted, %d written; want the first chunk's 1,000", res.Events, lines)
		}
		if res.ReceiptID == 0 {
			t.Fatal("no receipt for the part written")
		}
	})
}
