package models

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// DeviceLinkInput says that a device (a browser or install, Segment's
// anonymousId) was used by the person of another (the user, Segment's
// userId), as a Segment track, page or screen call naming both says.
type DeviceLinkInput struct {
	AppPublicID string
	// DeviceID is the device that may join the user's lead.
	DeviceID string
	// UserDeviceID is the user's device, whose lead it joins.
	UserDeviceID string
	// UserAgent is the user agent of a device stored by the link.
	UserAgent string
	// Secret is the app's secret key: only a server may link devices.
	Secret string
	// ClientIP is the sender's address, for the per-IP limit on wrong keys.
	ClientIP string
}

// linkPlan is a link that passed every check.
type linkPlan struct {
	in    DeviceLinkInput
	appID uint64
}

// LinkDevices joins each device that belongs to no lead to the lead of
// its user's device, when that has one; the joining device is stored if
// it never was, as identify stores it. Only that way: a user's device
// never joins the lead of the browser it was used on (a shared computer
// identified as someone else would put this user's events, and their
// erasure and export, with another person), and nothing moves (a device
// that has a lead keeps it; only an identify, which names the email,
// moves a device). Every input is checked first (it needs the app's secret
// key), the pairs are read in one query a chunk, and only those that join
// are written, as identifies are: a transaction per identifyChunk joins,
// none when no device joins. errs holds each input's refusal; err is a
// store fault, after which linking them all again is safe.
func (w *Writer) LinkDevices(ctx context.Context, db *gorm.DB, ins []DeviceLinkInput) (errs []error, err error) {
	errs = make([]error, len(ins))
	var plans []linkPlan
	for i, in := range ins {
		appID, err := w.checkLink(ctx, in)
		if err != nil {
			errs[i] = err
			continue
		}
		plans = append(plans, linkPlan{in: in, appID: appID})
	}
	joins, err := pendingJoins(ctx, db, plans)
	if err != nil || len(joins) == 0 {
		return errs, err
	}
	for chunk := range slices.Chunk(joins, identifyChunk) {
		err := withRetry(ctx, func() error {
			return db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
				for _, j := range chunk {
					if err := j.write(tx); err != nil {
						return err
					}
				}
				return nil
			})
		})
		if err != nil {
			return nil, fmt.Errorf("models.LinkDevices: %w", err)
		}
	}
	return errs, nil
}

// checkLink checks a link's ids and its key, and answers its app's id.
func (w *Writer) checkLink(ctx context.Context, in DeviceLinkInput) (uint64, error) {
	if in.Secret == "" {
		return 0, newError(ErrUnauthenticated, "linking devices needs the app's secret key")
	}
	if err := checkAppID(in.AppPublicID); err != nil {
		return 0, err
	}
	if err := validateSentDeviceID(in.DeviceID); err != nil {
		return 0, err
	}
	if err := validateSentDeviceID(in.UserDeviceID); err != nil {
		var bad *InvalidError
		if errors.As(err, &bad) {
			err = Invalid("userDeviceId", "%s", bad.Message)
		}
		return 0, err
	}
	now := Now()
	if err := w.limits.beforeLookup(in.ClientIP, true, now); err != nil {
		return 0, err
	}
	app, err := w.catalog.App(ctx, in.AppPublicID)
	if err != nil {
		w.limits.lookupFailed(in.ClientIP, true, err, now)
		return 0, err
	}
	if !app.SecretMatches(in.Secret) {
		w.limits.lookupFailed(in.ClientIP, true, ErrUnauthenticated, now)
		return 0, newError(ErrUnauthenticated, "the secret key is not this app's current key")
	}
	return app.ID, nil
}

// deviceJoin is a device to join the lead of its user's device: owner
// (the user's) had a lead, joiner none, when read.
type deviceJoin struct {
	appID           uint64
	owner, joiner   string
	joinerUserAgent string
}

// pendingJoins reads the pairs' devices and answers the joins they call
// for, each pair once, in the order of the inputs.
func pendingJoins(ctx context.Context, db *gorm.DB, plans []linkPlan) ([]deviceJoin, error) {
	wanted := map[uint64]map[string]bool{}
	for _, p := range plans {
		if wanted[p.appID] == nil {
			wanted[p.appID] = map[string]bool{}
		}
		wanted[p.appID][p.in.DeviceID], wanted[p.appID][p.in.UserDeviceID] = true, true
	}
	leadOf := map[DeviceKey]*uint64{}
	for appID, ids := range wanted {
		for chunk := range inChunks(keysOf(ids), 500) {
			var rows []Device
			err := db.WithContext(ctx).Select("app_id, device_id, lead_id").Where("app_id = ? AND device_id IN ?", appID, chunk).Find(&rows).Error
			if err != nil {
				return nil, fmt.Errorf("models.LinkDevices: %w", err)
			}
			for _, d := range rows {
				leadOf[DeviceKey{AppID: d.AppID, DeviceID: d.DeviceID}] = d.LeadID
			}
		}
	}
	var out []deviceJoin
	seen := map[deviceJoin]bool{}
	for _, p := range plans {
		device, user := p.in.DeviceID, p.in.UserDeviceID
		if device == user || leadOf[DeviceKey{AppID: p.appID, DeviceID: device}] != nil || leadOf[DeviceKey{AppID: p.appID, DeviceID: user}] == nil {
			continue
		}
		j := deviceJoin{appID: p.appID, owner: user, joiner: device}
		if seen[j] {
			continue
		}
		seen[j] = true
		j.joinerUserAgent = clampUTF8(p.in.UserAgent, maxUserAgentBytes)
		out = append(out, j)
	}
	return out, nil
}

// write joins the device to the owner's lead, in tx, if the owner still
// has a lead and the joiner still none. The owner's row is locked first,
// as erasing its lead locks it: a lead erased meanwhile takes no device.
func (j deviceJoin) write(tx *gorm.DB) error {
	var owner Device
	err := forUpdate(tx).Where("app_id = ? AND device_id = ?", j.appID, j.owner).Take(&owner).Error
	if errors.Is(err, gorm.ErrRecordNotFound) || err == nil && owner.LeadID == nil {
		return nil
	}
	if err != nil {
		return err
	}
	now := Now()
	joiner := &Device{AppID: j.appID, DeviceID: j.joiner, UserAgent: j.joinerUserAgent, FirstSeenAt: now, LastSeenAt: now}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(joiner).Error; err != nil {
		return err
	}
	return tx.Model(&Device{}).Where("app_id = ? AND device_id = ? AND lead_id IS NULL", j.appID, j.joiner).Update("lead_id", *owner.LeadID).Error
}
