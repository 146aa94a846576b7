package models

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Identify finds or creates the lead by email (case-insensitively) and attaches
// the device to it, recording a move when the device belonged to another lead.
// It is an anonymous write like a trigger, under the same per-IP and
// per-device limits (the same buckets: an identify costs one trigger), from
// which a caller with the secret key is exempt.
func Identify(ctx context.Context, db *gorm.DB, catalog *Catalog, in IdentifyInput) (*IdentifyResult, error) {
	plan, err := checkIdentify(ctx, catalog, in)
	if err != nil {
		return nil, err
	}
	res, err := writeIdentifies(ctx, db, []*identifyPlan{plan})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// identifyChunk is how many identifies IdentifyEach and IdentifyGroups
// write in one transaction: an import of a thousand leads holds the store's
// write lock (SQLite's, for every trigger) a chunk at a time.
const identifyChunk = 100

// IdentifyEach is Identify for many leads at once, each on its own (an
// import of subscribers): every input is checked, those that pass are
// written a chunk at a time in order, and errs holds each input's refusal.
// err is a store fault: the inputs not yet written were not, and writing
// them all again is safe, since an identify written twice changes nothing.
func (w *Writer) IdentifyEach(ctx context.Context, db *gorm.DB, ins []IdentifyInput) (res []*IdentifyResult, errs []error, err error) {
	groups := make([][]IdentifyInput, len(ins))
	for i := range ins {
		groups[i] = ins[i : i+1]
	}
	written, errs, err := w.identifyGroups(ctx, db, groups)
	if err != nil {
		return nil, nil, err
	}
	res = make([]*IdentifyResult, len(ins))
	for i, r := range written {
		if r != nil {
			res[i] = r[0]
		}
	}
	return res, errs, nil
}

// IdentifyGroups is IdentifyEach for groups of identifies that go together
// (a Segment identify names the anonymousId's and the userId's device):
// a group's devices all join their leads, or, when any of its inputs is
// refused, none does. The groups are written in order, a chunk at a time,
// and errs holds each group's refusal, an *InputError saying which input it
// is about when the group has several. err is a store fault, as for
// IdentifyEach.
func (w *Writer) IdentifyGroups(ctx context.Context, db *gorm.DB, groups [][]IdentifyInput) (errs []error, err error) {
	_, errs, err = w.identifyGroups(ctx, db, groups)
	return errs, err
}

func (w *Writer) identifyGroups(ctx context.Context, db *gorm.DB, groups [][]IdentifyInput) (res [][]*IdentifyResult, errs []error, err error) {
	res, errs = make([][]*IdentifyResult, len(groups)), make([]error, len(groups))
	// refuse names the input of a group of several that err is about.
	refuse := func(g, k int, err error) {
		if len(groups[g]) > 1 {
			err = &InputError{Index: k, Err: err}
		}
		errs[g] = err
	}
	type checked struct {
		at    int // the group's index
		plans []*identifyPlan
	}
	var todo []checked
	for g, ins := range groups {
		c := checked{at: g}
		for k := range ins {
			ins[k].Limits = w.limits
			plan, err := checkIdentify(ctx, w.catalog, ins[k])
			if err != nil {
				w.origins.count(err, Now())
				refuse(g, k, err)
				break
			}
			c.plans = append(c.plans, plan)
		}
		if errs[g] == nil {
			todo = append(todo, c)
		}
	}
	for len(todo) > 0 {
		n := min(identifyChunk, len(todo))
		var plans []*identifyPlan
		var group, input []int // each plan's group (in todo) and input
		for t, c := range todo[:n] {
			for k, p := range c.plans {
				plans, group, input = append(plans, p), append(group, t), append(input, k)
			}
		}
		written, err := writeIdentifies(ctx, db, plans)
		// Fields that would grow too large refuse their group only; the
		// rest of the chunk is written again without it (writeIdentifies
		// names the input when there are several).
		var one *InputError
		var invalid *InvalidError
		if !errors.As(err, &one) && len(plans) == 1 && errors.As(err, &invalid) {
			one = &InputError{Index: 0, Err: err}
		}
		if one != nil {
			t := group[one.Index]
			refuse(todo[t].at, input[one.Index], one.Err)
			todo = append(todo[:t:t], todo[t+1:]...)
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		for i, r := range written {
			g := todo[group[i]].at
			res[g] = append(res[g], r)
		}
		todo = todo[n:]
	}
	return res, errs, nil
}

// identifyPlan is an identify that passed every check, ready to write.
type identifyPlan struct {
	in         IdentifyInput
	app        *App
	email, key string
}

// checkIdentify runs every check of an identify that needs no write: its
// fields, its credentials, its rate limits and its app.
func checkIdentify(ctx context.Context, catalog *Catalog, in IdentifyInput) (*identifyPlan, error) {
	limits := in.Limits
	if in.Credential != nil {
		return nil, refuseCredential(limits, in.ClientIP, in.Credential, Now())
	}
	if err := checkAppID(in.AppPublicID); err != nil {
		return nil, err
	}
	if err := validateSentDeviceID(in.DeviceID); err != nil {
		return nil, err
	}
	email, key, err := NormalizeEmail(in.Email)
	if err != nil {
		return nil, err
	}
	if in.Name != nil {
		name := strings.TrimSpace(*in.Name)
		if utf8.RuneCountInString(name) > 200 || strings.IndexFunc(name, unicode.IsControl) >= 0 {
			return nil, Invalid("name", "must be at most 200 characters, without control characters")
		}
		name = strings.ToValidUTF8(name, "\uFFFD")
		in.Name = &name
	}
	if in.Fields != nil {
		if in.Fields, err = checkLeadFields(in.Fields); err != nil {
			return nil, err
		}
	}
	keyed := in.Secret != "" || in.Verified
	if !keyed && in.Origin == "" {
		return nil, newError(ErrUnauthenticated, "identify from a server needs the app's secret key")
	}
	now := Now()
	if err := limits.beforeLookup(in.ClientIP, keyed, now); err != nil {
		return nil, err
	}
	app, err := catalog.App(ctx, in.AppPublicID)
	if err != nil {
		limits.lookupFailed(in.ClientIP, keyed, err, now)
		return nil, err
	}
	switch {
	case in.Verified:
	case in.Secret != "" && !app.SecretMatches(in.Secret):
		limits.lookupFailed(in.ClientIP, true, ErrUnauthenticated, now)
		return nil, newError(ErrUnauthenticated, "the secret key is not this app's current key")
	case in.Secret == "" && !app.OriginAllowed(in.Origin):
		return nil, &refusedOriginError{newError(ErrForbidden, "origin %q may not identify visitors of this app", truncate(in.Origin, 100)), app.ID, in.Origin}
	}
	if err := limits.allowDevice(in.AppPublicID+"\x00"+in.DeviceID, keyed, now); err != nil {
		return nil, err
	}
	return &identifyPlan{in: in, app: app, email: email, key: key}, nil
}

// checkLeadFields validates fields to merge into a lead's and returns them
// as they will be stored.
func checkLeadFields(fields map[string]any) (map[string]any, error) {
	if jsonSizeOver(fields, maxFieldsBytes) {
		return nil, Invalid("fields", "must be at most %d bytes as JSON", maxFieldsBytes)
	}
	fields, err := cleanJSONObject("fields", fields)
	if err != nil {
		return nil, err
	}
	if b, _ := json.Marshal(fields); len(b) > maxFieldsBytes {
		return nil, Invalid("fields", "must be at most %d bytes as JSON", maxFieldsBytes)
	}
	return fields, nil
}

// writeIdentifies writes checked identifies in one transaction, in order:
// all of them or none. A refusal found while writing (fields that would
// grow too large) is an *InputError when there are several.
func writeIdentifies(ctx context.Context, db *gorm.DB, plans []*identifyPlan) ([]*IdentifyResult, error) {
	var out []*IdentifyResult
	err := withRetry(ctx, func() error {
		out = make([]*IdentifyResult, len(plans))
		return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			for i, p := range plans {
				res, err := p.write(tx)
				var invalid *InvalidError
				if len(plans) > 1 && errors.As(err, &invalid) {
					return &InputError{Index: i, Err: err}
				}
				if err != nil {
					return err
				}
				out[i] = res
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// write finds or creates the lead, merges the input into it and attaches
// the device, in tx.
func (p *identifyPlan) write(tx *gorm.DB) (*IdentifyResult, error) {
	in, app := p.in, p.app
	res := &IdentifyResult{}
	lead, err := findOrCreateLead(tx, app.ID, p.email, p.key)
	if err != nil {
		return nil, err
	}
	before, _ := json.Marshal(lead.Fields)
	applyLeadInput(lead, in)
	after, _ := json.Marshal(lead.Fields)
	if len(after) > maxFieldsBytes {
		return nil, Invalid("fields", "would make the lead's fields larger than %d bytes as JSON", maxFieldsBytes)
	}
	// Anyone may claim a browser's Origin: without this, a keyless caller
	// could fill any lead's fields to the limit, and the app's own
	// identifies and webhook events for that lead would be refused.
	if keyless := in.Secret == "" && !in.Verified; keyless && len(after) > max(len(before), maxKeylessFieldsBytes) {
		return nil, Invalid("fields", "without the secret key may make the lead's fields at most %d bytes as JSON", maxKeylessFieldsBytes)
	}
	if err := tx.Select("Name", "Fields", "UpdatedAt").Save(lead).Error; err != nil {
		return nil, err
	}
	now := Now()
	device := &Device{AppID: app.ID, DeviceID: in.DeviceID, UserAgent: clampUTF8(in.UserAgent, maxUserAgentBytes), FirstSeenAt: now, LastSeenAt: now}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(device).Error; err != nil {
		return nil, err
	}
	if err := forUpdate(tx).Where("app_id = ? AND device_id = ?", app.ID, in.DeviceID).Take(device).Error; err != nil {
		return nil, err
	}
	if device.LeadID == nil || *device.LeadID != lead.ID {
		if device.LeadID != nil {
			res.Moved = true
			move := &DeviceMove{AppID: app.ID, DeviceID: in.DeviceID, FromLeadID: device.LeadID, ToLeadID: lead.ID, MovedAt: now}
			if err := tx.Create(move).Error; err != nil {
				return nil, err
			}
		}
		device.LeadID = &lead.ID
		err := tx.Model(&Device{}).Where("app_id = ? AND device_id = ?", app.ID, in.DeviceID).Update("lead_id", lead.ID).Error
		if err != nil {
			return nil, err
		}
	}
	res.Lead, res.Device = lead, device
	return res, nil
}

func findOrCreateLead(tx *gorm.DB, appID uint64, email, key string) (*Lead, error) {
	var lead Lead
	err := tx.Where("app_id = ? AND email_key = ?", appID, key).Take(&lead).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		lead = Lead{AppID: appID, Email: email, EmailKey: key, Fields: JSONObject{}}
		err = tx.Create(&lead).Error
	}
	return &lead, err
}

// Identify is the package's Identify with this writer's catalog and
// limits, counting a browser refused for its origin in the app's
// refusedOrigins as a trigger is.
func (w *Writer) Identify(ctx context.Context, db *gorm.DB, in IdentifyInput) (*IdentifyResult, error) {
	in.Limits = w.limits
	res, err := Identify(ctx, db, w.catalog, in)
	w.origins.count(err, Now())
	return res, err
}

func applyLeadInput(lead *Lead, in IdentifyInput) {
	if in.Name != nil {
		lead.Name = in.Name
		if *in.Name == "" {
			lead.Name = nil
		}
	}
	if lead.Fields == nil {
		lead.Fields = JSONObject{}
	}
	for k, v := range in.Fields {
		if v == nil {
			delete(lead.Fields, k)
		} else {
			lead.Fields[k] = v
		}
	}
	lead.UpdatedAt = Now()
}
