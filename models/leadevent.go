package models

import (
	"context"

	"gorm.io/gorm"
)

// LeadEvent is a trigger on behalf of a lead known by email, as a webhook
// sends it: the lead is created if new, Fields merge into its fields, and
// the event lands on Trigger.DeviceID, which becomes the lead's.
type LeadEvent struct {
	Trigger TriggerInput
	Email   string
	Fields  map[string]any
}

// TriggerLeadEvents records the events of leads known by email (a
// webhook's batch): it checks every event and every lead first, then
// identifies each lead that has an event to store (one transaction per
// lead, the fields of its events merged in order), then stores the events
// in one group commit. A refused event writes nothing: no lead is created
// for it and its fields are not merged (an unknown code is only counted,
// as on every trigger). Results come in input order.
//
// A definition disabled or deleted between the checks and the commit
// refuses its events after their leads were written, as a store fault
// during the commit does (the sender resends those).
func (w *Writer) TriggerLeadEvents(ctx context.Context, db *gorm.DB, events []LeadEvent) []TriggerResult {
	inputs := make([]TriggerInput, len(events))
	for i := range events {
		inputs[i] = events[i].Trigger
	}
	results := make([]TriggerResult, len(events))
	defer func() { w.observer.Triggered(inputs, results) }()
	if err := checkBatchSize(inputs); err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	// Each event's lead on its own, so that a bad email or bad fields
	// refuse only their event rather than every event of the lead.
	keys := make([]string, len(events))
	fields := make([]map[string]any, len(events))
	for i, e := range events {
		var err error
		if _, keys[i], err = NormalizeEmail(e.Email); err == nil && len(e.Fields) > 0 {
			fields[i], err = checkLeadFields(e.Fields)
		}
		results[i].Err = err
	}
	b := w.check(ctx, inputs, results)

	type lead struct {
		plan   *identifyPlan
		in     IdentifyInput
		events []int
	}
	byKey := map[string]*lead{}
	var leads []*lead
	for k, p := range b.items {
		if p.unknown {
			continue
		}
		i := b.index[k]
		t := &inputs[i]
		key := t.DeviceID + "\x00" + keys[i]
		l := byKey[key]
		if l == nil {
			l = &lead{in: IdentifyInput{
				AppPublicID: t.AppPublicID, DeviceID: t.DeviceID, Email: events[i].Email, Fields: map[string]any{},
				UserAgent: t.UserAgent, Secret: t.Secret, Origin: t.Origin, ClientIP: t.ClientIP, Verified: t.Verified, Limits: w.limits,
			}}
			byKey[key] = l
			leads = append(leads, l)
		}
		for name, v := range fields[i] {
			l.in.Fields[name] = v
		}
		l.events = append(l.events, i)
	}
	refuse := func(l *lead, err error) {
		for _, i := range l.events {
			results[i].Err = err
		}
	}
	// Every lead is checked before any is written.
	for _, l := range leads {
		var err error
		if l.plan, err = checkIdentify(ctx, w.catalog, l.in); err != nil {
			w.origins.count(err, Now())
			refuse(l, err)
		}
	}
	for _, l := range leads {
		if l.plan == nil {
			continue
		}
		if _, err := writeIdentifies(ctx, db, []*identifyPlan{l.plan}); err != nil {
			refuse(l, err)
		}
	}
	w.store(ctx, b)
	return results
}
