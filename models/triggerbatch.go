package models

import (
	"context"
	"errors"
)

// Trigger records the inputs and answers once they are durably stored. Results
// come in input order; a refused input does not affect the others.
func (w *Writer) Trigger(ctx context.Context, inputs []TriggerInput) []TriggerResult {
	results := make([]TriggerResult, len(inputs))
	defer func() { w.observer.Triggered(inputs, results) }()
	err := checkBatchSize(inputs)
	if err == nil {
		err = refusedCredential(w.limits, inputs)
	}
	if err != nil {
		for i := range results {
			results[i].Err = err
		}
		return results
	}
	w.store(ctx, w.check(ctx, inputs, results))
	return results
}

// refusedCredential refuses a call whose inputs carry a refused credential
// (they come from one request and share it), counted once against the
// client's per-IP limit (refuseCredential).
func refusedCredential(limits *RateLimits, inputs []TriggerInput) error {
	for _, in := range inputs {
		if in.Credential != nil {
			return refuseCredential(limits, in.ClientIP, in.Credential, Now())
		}
	}
	return nil
}

// triggerBatch is one call's triggers between their checks and their group
// commit.
type triggerBatch struct {
	results []TriggerResult
	items   []*pending
	index   []int // the input of each item
}

// check validates and resolves every input not refused already (its result
// holds an error), setting the refusals in results. It writes nothing: an
// unknown code passes, to be counted when the batch is stored.
func (w *Writer) check(ctx context.Context, inputs []TriggerInput, results []TriggerResult) *triggerBatch {
	b := &triggerBatch{results: results}
	now := Now()
	var senders senderMemo
	originCounted := false
	for i, in := range inputs {
		if results[i].Err != nil {
			continue
		}
		if !in.keyed() && w.bots.Match(in.UserAgent) {
			results[i].Err = errBotFiltered
			continue
		}
		p, err := prepare(ctx, w.catalog, w.limits, in, now, &senders)
		if err != nil {
			results[i].Err = err
			if !originCounted {
				// Once per request, as the JSON API counts a refused batch.
				var refused *refusedOriginError
				originCounted = errors.As(err, &refused)
				w.origins.count(err, now)
			}
			continue
		}
		b.items = append(b.items, p)
		b.index = append(b.index, i)
	}
	return b
}

// store submits the checked triggers in one group commit and sets their
// results; those refused since their checks (their result holds an error)
// are left out.
func (w *Writer) store(ctx context.Context, b *triggerBatch) {
	var items []*pending
	var index []int
	for k, p := range b.items {
		if i := b.index[k]; b.results[i].Err == nil {
			items, index = append(items, p), append(index, i)
		}
	}
	if len(items) == 0 {
		return
	}
	if err := w.submit(ctx, items); err != nil {
		for _, i := range index {
			b.results[i].Err = err
		}
		return
	}
	for k, p := range items {
		b.results[index[k]] = p.result
	}
}

// checkBatchSize refuses a batch over the cap of whoever vouches for all of
// it: a webhook's ingest token (every input Verified), the secret key (every
// input keyed), else a browser. The inputs of one call come from one sender,
// so a single unvouched input holds the batch to the browser's cap.
func checkBatchSize(inputs []TriggerInput) error {
	verified, keyed := true, true
	for i := range inputs {
		verified = verified && inputs[i].Verified
		keyed = keyed && inputs[i].keyed()
	}
	switch {
	case verified && len(inputs) > MaxWebhookBatch:
		return Invalid("inputs", "at most %d triggers per batch", MaxWebhookBatch)
	case !verified && len(inputs) > MaxBatch:
		return Invalid("inputs", "at most %d triggers per batch", MaxBatch)
	case !keyed && len(inputs) > MaxBrowserBatch:
		return Invalid("inputs", "at most %d triggers per batch without the secret key", MaxBrowserBatch)
	}
	return nil
}
