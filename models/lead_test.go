package models_test

import (
	"testing"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

func TestIdentifyAttachesDevicesAndRecordsMoves(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		catalog := e.writer.Catalog()
		// Anonymous history on two devices first.
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "laptop"})
		e.mustTrigger(models.TriggerInput{Code: "click", DeviceID: "laptop"})
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "phone"})

		identify := func(device, email string) *models.IdentifyResult {
			t.Helper()
			res, err := models.Identify(e.ctx, db, catalog, models.IdentifyInput{
				AppPublicID: e.app.PublicID, DeviceID: device, Email: email, Secret: e.secret,
				Name: ptr("Ann"), Fields: map[string]any{"plan": "pro"},
			})
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		ann := identify("laptop", "Ann@Example.com")
		if ann.Moved || ann.Lead.Email != "Ann@Example.com" || *ann.Lead.Name != "Ann" || ann.Lead.Fields["plan"] != "pro" {
			t.Fatalf("first identify %+v", ann.Lead)
		}
		again := identify("phone", "ann@example.COM")
		if again.Lead.ID != ann.Lead.ID || again.Moved {
			t.Fatalf("email not matched case-insensitively: %d vs %d", again.Lead.ID, ann.Lead.ID)
		}
		page, err := models.LeadTimeline(e.ctx, db, ann.Lead, 50, "")
		if err != nil || len(page.Events) != 3 {
			t.Fatalf("lead timeline has %d events (%v), want the 3 anonymous ones", len(page.Events), err)
		}
		stats, _ := models.LeadStatsByID(e.ctx, db, []uint64{ann.Lead.ID})
		if stats[ann.Lead.ID] == nil || stats[ann.Lead.ID].EventCount != 3 || stats[ann.Lead.ID].FirstSeenAt == nil {
			t.Fatalf("lead stats %+v", stats[ann.Lead.ID])
		}
		devices, _ := models.DevicesByLead(e.ctx, db, []uint64{ann.Lead.ID})
		if len(devices[ann.Lead.ID]) != 2 {
			t.Fatalf("lead owns %d devices, want 2", len(devices[ann.Lead.ID]))
		}

		// Re-identifying the phone as Bob moves it, with its history, and records the move.
		bob := identify("phone", "bob@example.com")
		if !bob.Moved || bob.Lead.ID == ann.Lead.ID {
			t.Fatalf("move not reported: %+v", bob)
		}
		annPage, _ := models.LeadTimeline(e.ctx, db, ann.Lead, 50, "")
		bobPage, _ := models.LeadTimeline(e.ctx, db, bob.Lead, 50, "")
		if len(annPage.Events) != 2 || len(bobPage.Events) != 1 {
			t.Fatalf("after move: ann %d events, bob %d; want 2 and 1", len(annPage.Events), len(bobPage.Events))
		}
		moves, _ := models.DeviceMovesByLead(e.ctx, db, []uint64{ann.Lead.ID, bob.Lead.ID})
		for _, id := range []uint64{ann.Lead.ID, bob.Lead.ID} {
			if len(moves[id]) != 1 || moves[id][0].DeviceID != "phone" || *moves[id][0].FromLeadID != ann.Lead.ID || moves[id][0].ToLeadID != bob.Lead.ID {
				t.Fatalf("moves of lead %d: %+v", id, moves[id])
			}
		}

		// A device identified before it ever triggered is created.
		fresh := identify("tablet", "carol@example.com")
		if fresh.Device.DeviceID != "tablet" {
			t.Fatalf("device %+v", fresh.Device)
		}

		list, err := models.Leads(e.ctx, db, e.owner, e.app.PublicID, "EXAMPLE.com", 2, "")
		if err != nil || len(list.Leads) != 2 || !list.HasNextPage || list.Leads[0].Email != "carol@example.com" {
			t.Fatalf("leads page 1: %v %+v", err, list)
		}
		rest, _ := models.Leads(e.ctx, db, e.owner, e.app.PublicID, "example.com", 2, models.FormatID(list.Leads[1].ID))
		if len(rest.Leads) != 1 || rest.HasNextPage || rest.Leads[0].Email != "Ann@Example.com" {
			t.Fatalf("leads page 2: %+v", rest)
		}
		// Names fold case beyond ASCII, as in rules, on every store.
		if _, err := models.Identify(e.ctx, db, catalog, models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "d-emile", Email: "ez@example.org", Name: ptr("Émile Zola"), Secret: e.secret}); err != nil {
			t.Fatal(err)
		}
		if found, err := models.Leads(e.ctx, db, e.owner, e.app.PublicID, "émile", 10, ""); err != nil || len(found.Leads) != 1 || found.Leads[0].Email != "ez@example.org" {
			t.Fatalf("search émile: %v %+v", err, found)
		}
		none, _ := models.Leads(e.ctx, db, e.owner, e.app.PublicID, "100%_", 10, "")
		if len(none.Leads) != 0 {
			t.Fatalf("LIKE wildcards not escaped: %d leads", len(none.Leads))
		}

		_, err = models.Identify(e.ctx, db, catalog, models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "x", Email: "not an email", Secret: e.secret})
		wantField(t, err, "email")
		_, err = models.Identify(e.ctx, db, catalog, models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "", Email: "a@b.c", Secret: e.secret})
		wantField(t, err, "deviceId")
	})
}

func TestEraseLead(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "d1"})
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "d1"})
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "other"})
		if _, err := models.Identify(e.ctx, db, e.writer.Catalog(), models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "d1", Email: "gone@example.com", Secret: e.secret}); err != nil {
			t.Fatal(err)
		}
		res, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "GONE@example.com")
		if err != nil || !res.Erased || res.DeletedEvents != 2 || res.DeletedDevices != 1 {
			t.Fatalf("erase: %v %+v", err, res)
		}
		if lead, err := models.LeadByEmail(e.ctx, db, e.owner, e.app.PublicID, "gone@example.com"); lead != nil || err != nil {
			t.Fatalf("erased lead still found: %+v %v", lead, err)
		}
		if n := e.countEvents("1 = 1"); n != 1 {
			t.Fatalf("%d events left, want the other device's 1", n)
		}
		defs, _ := models.EventDefinitions(e.ctx, db, e.app.ID, nil)
		for _, d := range defs {
			if d.Code == "view" && d.TriggerCount != 1 {
				t.Fatalf("view trigger count after erase = %d, want 1", d.TriggerCount)
			}
		}
		// The device comes back, as a stranger, when it triggers again.
		e.mustTrigger(models.TriggerInput{Code: "view", DeviceID: "d1"})
		if d, err := models.DeviceByID(e.ctx, db, e.owner, e.app.PublicID, "d1"); err != nil || d.LeadID != nil {
			t.Fatalf("device after erase and a new trigger: %+v %v", d, err)
		}
		again, err := models.EraseLead(e.ctx, db, e.owner, e.app.PublicID, "gone@example.com")
		if err != nil || again.Erased {
			t.Fatalf("second erase: %v %+v", err, again)
		}
	})
}

// TestLookAlikeEmailsAreRefused: an address with a letter outside ASCII
// whose lowercase is ASCII (the Kelvin sign, the dotted capital I) is
// refused. It had the key of the ASCII address, so a browser identifying
// first as "Kate@example.com" with the Kelvin sign made the lead that
// kate@example.com then joined, shown and exported with the look-alike
// spelling. Other letters outside ASCII still match case-insensitively.
func TestLookAlikeEmailsAreRefused(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		identify := func(device, email string) (*models.IdentifyResult, error) {
			return e.writer.Identify(e.ctx, db, models.IdentifyInput{
				AppPublicID: e.app.PublicID, DeviceID: device, Email: email, Origin: "https://site.example",
			})
		}
		for _, email := range []string{"\u212aate@example.com", "\u0130nfo@example.com", "kate@\u212aelvin.example"} {
			_, err := identify("look-alike", email)
			wantField(t, err, "email")
		}
		var leads int64
		db.Model(&models.Lead{}).Where("app_id = ?", e.app.ID).Count(&leads)
		if leads != 0 {
			t.Fatalf("%d leads made by refused identifies", leads)
		}
		first, err := identify("a", "Émile@example.com")
		if err != nil {
			t.Fatal(err)
		}
		second, err := identify("b", "émile@EXAMPLE.com")
		if err != nil || second.Lead.ID != first.Lead.ID {
			t.Fatalf("Émile and émile: %v, leads %d and %d", err, first.Lead.ID, second.Lead.ID)
		}
	})
}

// TestInvisibleCharactersInEmailsAreRefused: an address holding a character
// that shows nothing or reorders the text (a zero-width space, a soft
// hyphen, a word joiner, a byte-order mark, U+202E, a private-use or
// no-break space) is refused when stored. A browser, without the key,
// made with one a lead shown exactly as a real visitor's email, with its
// own key: found by no search or look-up for the address, and left behind
// by its erasure. Look-ups still take such an address, so a lead stored
// before stays found, exported and erased.
func TestInvisibleCharactersInEmailsAreRefused(t *testing.T) {
	modelstest.Each(t, func(t *testing.T, db *gorm.DB) {
		e := newEnv(t, db)
		for _, email := range []string{"ann\u200b@example.com", "ann@example.com\u200b", "a\u00adnn@example.com", "ann@exam\u2060ple.com",
			"\ufeffann@example.com", "\u202eann@example.com", "ann@e\ue000xample.com", "ann\u00a0@example.com"} {
			_, err := e.writer.Identify(e.ctx, db, models.IdentifyInput{
				AppPublicID: e.app.PublicID, DeviceID: "invisible", Email: email, Origin: "https://site.example",
			})
			wantField(t, err, "email")
			if lead, err := models.LeadByEmail(e.ctx, db, e.owner, e.app.PublicID, email); lead != nil || err != nil {
				t.Errorf("look-up of %q: %v, %v", email, lead, err)
			}
		}
		var leads int64
		db.Model(&models.Lead{}).Where("app_id = ?", e.app.ID).Count(&leads)
		if leads != 0 {
			t.Fatalf("%d leads made by refused identifies", leads)
		}
		if _, err := e.writer.Identify(e.ctx, db, models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "combining", Email: "ex\u0301ample@example.com", Origin: "https://site.example"}); err != nil {
			t.Fatalf("a combining accent is a visible part of an address: %v", err)
		}
		// A joiner after a virama (क्‍ष against क्ष) changes how the
		// letters are drawn: RFC 5892 allows it in domain names. Not after
		// a letter, where it shows nothing.
		if _, err := e.writer.Identify(e.ctx, db, models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "joiner", Email: "क्‍ष@example.com", Origin: "https://site.example"}); err != nil {
			t.Fatalf("a joiner after a virama is a visible part of an address: %v", err)
		}
		_, err := e.writer.Identify(e.ctx, db, models.IdentifyInput{AppPublicID: e.app.PublicID, DeviceID: "joiner", Email: "क‍ष@example.com", Origin: "https://site.example"})
		wantField(t, err, "email")
	})
}
