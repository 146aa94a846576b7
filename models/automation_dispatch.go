package models

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The dispatcher's database work is batched, so that a delivery costs a
// share of a few statements rather than a dozen of its own: one loop
// claims due deliveries in batches (a conditional UPDATE and a SELECT),
// loads what their bodies need with one query per kind, and hands them to
// workers, at most Workers at once, PerRule per rule and Rate a second
// per rule (deliveries over it wait claimed, then pending); a recorder
// writes the outcomes of many attempts in one transaction.

// hookJob is one claimed delivery on its way through the dispatcher.
type hookJob struct {
	dl     *Delivery
	token  string
	action *AutomationAction
	body   []byte
	gone   bool // the event was erased: dead without an attempt
	res    sendResult
	first  *firstBatch // a first attempt for the automations consumer: no row yet, no lease
	sent   bool        // first attempts: the request was made and answered by the budget
	handed *handover   // a first attempt still in flight at the budget: its row is leased to token
}

func (d *Dispatcher) run() {
	results := make(chan *hookJob, 4*d.opts.Workers)
	recorded := make(chan struct{})
	go func() {
		d.recorder(results)
		close(recorded)
	}()
	d.loop(results)
	d.handing.Wait()
	close(results)
	<-recorded
	close(d.done)
}

// loop claims, prepares and starts deliveries until the dispatcher closes.
func (d *Dispatcher) loop(results chan<- *hookJob) {
	// The caps are per rule: these maps are keyed by rule id.
	queues := map[uint64][]*hookJob{}  // claimed, not started
	firsts := map[uint64][]*hookJob{}  // first attempts, not started: before the claimed ones
	var batches []*firstBatch          // of the waiting first attempts
	budget := time.NewTimer(time.Hour) // the earliest of their budgets
	budget.Stop()
	defer budget.Stop()
	inflight := map[uint64]int{} // started
	runningFirsts := map[*hookJob]bool{}
	queued, running := 0, 0
	finished := make(chan *hookJob, d.opts.Workers)
	timer := time.NewTimer(0)
	defer timer.Stop()
	pruned := time.Now()
	idle := false         // the last claim found nothing: wait for the timer
	var claimed time.Time // the last claim
	// room is how many more deliveries a rule may hold waiting.
	room := func(ruleID uint64) int {
		q := len(queues[ruleID])
		return min(d.queueCap()-q, 2*d.opts.PerRule-q-inflight[ruleID])
	}
	buckets := &rateBuckets{rate: d.opts.Rate, m: map[uint64]*bucket{}}
	throttle := time.NewTimer(time.Hour)
	throttle.Stop()
	defer throttle.Stop()
	for {
		// Start what may start: within the worker, per-rule and rate caps.
		now := time.Now()
		var wake time.Duration // until a throttled action has a token again
		buckets.forget(now)
		// First attempts whose budget ended go back: unsent if they have not
		// started, handed over to this dispatcher if they are in flight
		// (unless it is closing: then they end cut short, and go back
		// unsent). The others start first, within the same caps.
		if expired := slices.ContainsFunc(batches, func(b *firstBatch) bool { return b.ctx.Err() != nil }); expired {
			for j := range runningFirsts {
				if j.first.ctx.Err() != nil && d.ctx.Err() == nil {
					delete(runningFirsts, j)
					j.handed = &handover{settled: make(chan struct{})}
					j.token = fmt.Sprintf("%s:%d", d.owner, d.seq.Add(1))
					j.first.done <- j
				}
			}
			for ruleID, q := range firsts {
				kept := q[:0]
				for _, j := range q {
					if j.first.ctx.Err() != nil {
						j.first.done <- j
					} else {
						kept = append(kept, j)
					}
				}
				if len(kept) == 0 {
					delete(firsts, ruleID)
				} else {
					firsts[ruleID] = kept
				}
			}
			batches = slices.DeleteFunc(batches, func(b *firstBatch) bool { return b.ctx.Err() != nil })
			budget.Stop()
			if len(batches) > 0 {
				dl, _ := batches[0].ctx.Deadline()
				budget.Reset(time.Until(dl))
			}
		}
		// start starts what the caps allow of each rule's queue in qs and
		// returns how many it started; throttled says what becomes of the
		// queue of a rule over its rate.
		start := func(qs map[uint64][]*hookJob, throttled func(q []*hookJob) []*hookJob) int {
			started := 0
			for ruleID, q := range qs {
				for len(q) > 0 && running < d.opts.Workers && inflight[ruleID] < d.opts.PerRule {
					if !buckets.take(ruleID, now) {
						if w := buckets.wait(ruleID, now); wake == 0 || w < wake {
							wake = max(w, time.Millisecond)
						}
						q = throttled(q)
						break
					}
					j := q[0]
					q = q[1:]
					started++
					running++
					inflight[ruleID]++
					if j.first != nil {
						runningFirsts[j] = true
					}
					go func() {
						j.res = d.send(d.ctx, j.action, j.dl.WebhookID(), j.body)
						finished <- j
					}()
				}
				if len(q) == 0 {
					delete(qs, ruleID)
				} else {
					qs[ruleID] = q
				}
			}
			return started
		}
		start(firsts, func(q []*hookJob) []*hookJob {
			// Over the rule's rate: back unsent now, pending for the
			// dispatcher, rather than hold the consumer's flush.
			for _, j := range q {
				j.first.done <- j
			}
			return nil
		})
		queued -= start(queues, func(q []*hookJob) []*hookJob { return q })
		// Claim more while there is room, keeping each rule's queue short
		// enough to start within its lease; while deliveries wait to start,
		// at most once per claimEvery, so that a claim (a dozen statements)
		// is shared by many deliveries rather than made after each attempt.
		if !idle && queued+running < 2*d.opts.Workers && (queued == 0 || time.Since(claimed) >= claimEvery) && d.ctx.Err() == nil {
			claimed = time.Now()
			var full []uint64
			for ruleID := range queues {
				if room(ruleID) <= 0 {
					full = append(full, ruleID)
				}
			}
			for ruleID := range inflight {
				if _, ok := queues[ruleID]; !ok && room(ruleID) <= 0 {
					full = append(full, ruleID)
				}
			}
			jobs, err := d.claim(4*d.opts.Workers-queued-running, full, room)
			if err != nil && d.ctx.Err() == nil {
				d.warn("automations: claiming deliveries", "err", err)
			}
			idle = len(jobs) == 0
			var excess []*hookJob // more than a rule may hold waiting: back to pending
			for _, j := range jobs {
				if j.gone {
					results <- j // dead without an attempt
					continue
				}
				if j.action.Disabled() { // since the claim: waits until enabled again
					d.release([]*hookJob{j})
					continue
				}
				if len(queues[j.dl.RuleID]) >= d.queueCap() {
					excess = append(excess, j)
					continue
				}
				queues[j.dl.RuleID] = append(queues[j.dl.RuleID], j)
				queued++
			}
			d.release(excess)
			if len(jobs) > 0 {
				continue
			}
		}
		if time.Since(pruned) > d.opts.PruneEvery {
			pruned = time.Now()
			if n, err := PruneDeliveries(d.ctx, d.db, Now().Add(-d.opts.Retention)); err != nil {
				d.warn("automations: pruning the delivery log", "err", err)
			} else if n > 0 {
				d.opts.Log.Info("automations: pruned the delivery log", "deliveries", n)
			}
		}
		if wake > 0 {
			throttle.Reset(wake)
		}
		select {
		case <-throttle.C:
		case <-budget.C:
		case jobs := <-d.firsts:
			b := jobs[0].first
			if len(batches) == 0 {
				dl, _ := b.ctx.Deadline()
				budget.Reset(time.Until(dl))
			}
			batches = append(batches, b)
			for _, j := range jobs {
				firsts[j.dl.RuleID] = append(firsts[j.dl.RuleID], j)
			}
		case j := <-finished:
			if room(j.dl.RuleID) <= 0 {
				// Its rule was left out of the last claim for want of
				// room, and may have more due: claim again, not at the next poll.
				idle = false
			}
			running--
			if inflight[j.dl.RuleID]--; inflight[j.dl.RuleID] == 0 {
				delete(inflight, j.dl.RuleID)
			}
			delete(runningFirsts, j)
			d.finish(j, results)
		case <-timer.C:
			idle = false
			timer.Reset(d.opts.Poll)
		case <-d.ctx.Done():
			for running > 0 {
				d.finish(<-finished, results) // cut short: released by the recorder, or left pending
				running--
			}
			for _, q := range firsts {
				for _, j := range q {
					j.first.done <- j // unsent: recorded pending
				}
			}
			var left []*hookJob
			for _, q := range queues {
				left = append(left, q...)
			}
			d.release(left)
			return
		}
	}
}

// finish hands an attempt's result on: a first attempt back to its
// consumer (sent unless a closing dispatcher cut it short), one handed over
// at its budget to the recorder once its row has committed, any other to
// the recorder.
func (d *Dispatcher) finish(j *hookJob, results chan<- *hookJob) {
	switch {
	case j.handed != nil:
		d.handing.Add(1)
		go d.recordHandedOver(j, results)
	case j.first != nil:
		j.sent = !(j.res.err != nil && d.ctx.Err() != nil)
		j.first.done <- j
	default:
		results <- j
	}
}

// recordHandedOver passes the outcome of a first attempt handed over at its
// budget to the recorder once the consumer's transaction has inserted its
// delivery, leased to the attempt. If that transaction failed, the outcome
// goes with it (the consumer sends again); if the dispatcher closes first,
// the lease lapses and the delivery is claimed again.
func (d *Dispatcher) recordHandedOver(j *hookJob, results chan<- *hookJob) {
	defer d.handing.Done()
	select {
	case <-j.handed.settled:
	default:
		select {
		case <-j.handed.settled:
		case <-d.ctx.Done():
			return
		}
	}
	if j.handed.ok && j.handed.id != 0 {
		j.dl.ID = j.handed.id
		results <- j
	}
}

var dueStatuses = []string{DeliveryPending, DeliveryRetrying}

// claim leases up to limit due deliveries, none of the rules in skip and
// no more of a rule than its room, and prepares them.
func (d *Dispatcher) claim(limit int, skip []uint64, room func(ruleID uint64) int) ([]*hookJob, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(d.ctx, dbCallTimeout)
	defer cancel()
	db := d.db.WithContext(ctx)
	now := time.Now().UnixMilli()
	// One query per due status, each reading the (status, due_at) index in
	// order and stopping at limit: a single "status IN" query sorts every
	// due delivery of both statuses first, which costs as much as the
	// backlog is long.
	type due struct {
		ID, RuleID uint64
		DueAt      int64
	}
	var dues []due
	for _, status := range dueStatuses {
		q := db.Model(&Delivery{}).Select("id", "rule_id", "due_at").
			Where("status = ? AND due_at <= ? AND lease_until < ?", status, now, now).
			Where("action_id NOT IN (?)", d.db.Model(&AutomationAction{}).Select("id").Where("disabled_at IS NOT NULL"))
		if len(skip) > 0 {
			q = q.Where("rule_id NOT IN ?", skip)
		}
		var some []due
		if err := q.Order("due_at").Limit(limit).Find(&some).Error; err != nil {
			return nil, err
		}
		dues = append(dues, some...)
	}
	slices.SortFunc(dues, func(a, b due) int { return cmp.Compare(a.DueAt, b.DueAt) })
	// Lease no more of a rule than it may hold: the rest would only be
	// released again.
	var ids []uint64
	taken := map[uint64]int{}
	for _, x := range dues {
		if len(ids) == limit {
			break
		}
		if taken[x.RuleID] < room(x.RuleID) {
			taken[x.RuleID]++
			ids = append(ids, x.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	token := fmt.Sprintf("%s:%d", d.owner, d.seq.Add(1))
	err := db.Model(&Delivery{}).Where("id IN ? AND status IN ? AND due_at <= ? AND lease_until < ?", ids, dueStatuses, now, now).
		UpdateColumns(map[string]any{"lease_owner": token, "lease_until": now + d.leaseTTL().Milliseconds()}).Error
	if err != nil {
		return nil, err
	}
	var claimed []*Delivery
	if err := db.Where("id IN ? AND lease_owner = ?", ids, token).Find(&claimed).Error; err != nil {
		return nil, err
	}
	jobs := make([]*hookJob, len(claimed))
	for i, dl := range claimed {
		jobs[i] = &hookJob{dl: dl, token: token}
	}
	if err := d.prepare(ctx, jobs, nil); err != nil {
		d.release(jobs)
		return nil, err
	}
	return jobs, nil
}

// leaseTTL is how long a delivery stays leased to an attempt: an attempt
// takes at most Timeout, and waits in the queue about as long; recording
// it a few seconds more.
func (d *Dispatcher) leaseTTL() time.Duration { return 2*d.opts.Timeout + 5*time.Second }

// prepare loads the actions, rules, apps and events of the jobs (those
// not in known) and what their bodies refer to, a query per kind, and
// builds the bodies.
func (d *Dispatcher) prepare(ctx context.Context, jobs []*hookJob, known map[uint64]*Event) error {
	actionIDs, ruleIDs, appIDs, eventIDs := map[uint64]bool{}, map[uint64]bool{}, map[uint64]bool{}, map[uint64]bool{}
	for _, j := range jobs {
		actionIDs[j.dl.ActionID], ruleIDs[j.dl.RuleID], appIDs[j.dl.AppID], eventIDs[j.dl.EventID] = true, true, true, true
	}
	actions, err := loadByID(ctx, d.db, keysOf(actionIDs), func(a *AutomationAction) uint64 { return a.ID })
	if err != nil {
		return err
	}
	rules, err := loadByID(ctx, d.db, keysOf(ruleIDs), func(r *AutomationRule) uint64 { return r.ID })
	if err != nil {
		return err
	}
	apps, err := loadByID(ctx, d.db, keysOf(appIDs), func(a *App) uint64 { return a.ID })
	if err != nil {
		return err
	}
	var events []*Event
	for id := range eventIDs {
		if e := known[id]; e != nil {
			events = append(events, e)
			delete(eventIDs, id)
		}
	}
	for chunk := range inChunks(keysOf(eventIDs), 500) {
		var es []*Event
		if err := d.db.WithContext(ctx).Where("id IN ?", chunk).Find(&es).Error; err != nil {
			return err
		}
		events = append(events, es...)
	}
	byID := make(map[uint64]*Event, len(events))
	for _, e := range events {
		byID[e.ID] = e
	}
	parts, err := loadPayloadParts(ctx, d.db, events)
	if err != nil {
		return err
	}
	for _, j := range jobs {
		j.action = actions[j.dl.ActionID]
		rule, app, e := rules[j.dl.RuleID], apps[j.dl.AppID], byID[j.dl.EventID]
		if j.action == nil || rule == nil || app == nil || app.DeletedAt != nil || e == nil || e.AppID != j.dl.AppID {
			// Deleted meanwhile: the rule or action with its log, the event
			// by an erasure, the app by its owner (its rows go next).
			j.gone = true
			if j.action == nil {
				j.action = &AutomationAction{ID: j.dl.ActionID}
			}
			continue
		}
		payload, err := parts.payload(app, rule, e)
		if errors.Is(err, errEventGone) {
			j.gone = true
			continue
		}
		if err != nil {
			return err
		}
		if j.body, err = actionBody(j.action, payload); err != nil {
			return err
		}
	}
	return nil
}

// claimEvery spaces the claims made while deliveries wait to start.
const claimEvery = 20 * time.Millisecond

// recordGather is how long the recorder waits for more outcomes before it
// writes a batch; the deliveries' leases cover it many times over.
const recordGather = 50 * time.Millisecond

// recorder stores the outcomes of attempts, as many as have arrived in one
// transaction, until results closes.
func (d *Dispatcher) recorder(results <-chan *hookJob) {
	gather := time.NewTimer(time.Hour)
	gather.Stop()
	defer gather.Stop()
	for j := range results {
		// Gather what arrives within recordGather of the first: a batch
		// costs a few statements and a commit whatever its size.
		batch := []*hookJob{j}
		gather.Reset(recordGather)
	more:
		for len(batch) < 500 {
			select {
			case j, ok := <-results:
				if !ok {
					break more
				}
				batch = append(batch, j)
			case <-gather.C:
				break more
			}
		}
		if !gather.Stop() {
			select {
			case <-gather.C:
			default:
			}
		}
		if err := d.record(batch); err != nil {
			d.warn("automations: recording deliveries", "deliveries", len(batch), "err", err)
			d.release(batch) // retried once their lease is given back
		}
	}
}

// record stores a batch of outcomes in one transaction: it locks the
// batch's deliveries in id order, keeps those still leased to the attempt
// that made them (another replica may have taken over an expired lease),
// and writes every outcome in one UPDATE per 200 deliveries and every
// attempt in one multi-row INSERT, rather than a statement per delivery.
// A delivery replayed since its attempt began keeps the replay's state: the
// attempt is logged and its lease given back, nothing else. Attempts cut
// short by a shutdown are released instead.
func (d *Dispatcher) record(batch []*hookJob) error {
	ctx, cancel := context.WithTimeout(context.Background(), dbCallTimeout)
	defer cancel()
	now := Now()
	var cut []*hookJob
	var outcomes []int
	err := withRetry(ctx, func() error {
		cut, outcomes = nil, outcomes[:0]
		return d.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var live []*hookJob
			for _, j := range batch {
				if !j.gone && j.res.err != nil && d.ctx.Err() != nil && errors.Is(j.res.err, context.Canceled) {
					cut = append(cut, j)
					continue
				}
				live = append(live, j)
			}
			owned, replayed, err := stillLeased(tx, live)
			if err != nil {
				return err
			}
			var rows []deliveryOutcome
			var attempts []*DeliveryAttempt
			var gone []uint64 // actions that answered 410
			for i, j := range slices.Concat(owned, replayed) {
				o := d.outcome(j, now)
				if o.kind == outcomeDisabled {
					gone = append(gone, j.action.ID) // replayed or not: the receiver is gone
				}
				if i < len(owned) {
					rows = append(rows, o)
				} else if o.kind == outcomeDead {
					o.kind = outcomeFailed // counted as failed: the replay retries it
				}
				outcomes = append(outcomes, o.kind)
				attempts = append(attempts, &DeliveryAttempt{DeliveryID: j.dl.ID, AppID: j.dl.AppID, At: now, StatusCode: o.code,
					LatencyMs: o.latencyMs, Error: o.errText})
			}
			for chunk := range inChunks(rows, 200) {
				if err := writeOutcomes(tx, chunk, now); err != nil {
					return err
				}
			}
			if err := releaseReplayed(tx, replayed); err != nil {
				return err
			}
			if err := disableGone(tx, gone, now); err != nil {
				return err
			}
			if len(attempts) == 0 {
				return nil
			}
			return tx.CreateInBatches(attempts, 500).Error
		})
	})
	if err != nil {
		return fmt.Errorf("models.Dispatcher.record: %w", err)
	}
	for _, o := range outcomes {
		d.counts[o].Add(1)
	}
	d.release(cut)
	return nil
}

// disableGone disables the actions whose receiver answered 410 Gone.
func disableGone(tx *gorm.DB, actionIDs []uint64, now time.Time) error {
	if len(actionIDs) == 0 {
		return nil
	}
	return tx.Model(&AutomationAction{}).Where("id IN ? AND disabled_at IS NULL", actionIDs).
		Updates(map[string]any{"disabled_at": now, "disabled_reason": "the receiver answered 410 Gone", "updated_at": now}).Error
}

// stillLeased locks the jobs' deliveries (in id order, as deleteDeliveries
// and replayDelivery do) and returns the jobs whose delivery is still
// leased to them: in owned those whose delivery was not replayed since the
// claim, in replayed those whose delivery was.
func stillLeased(tx *gorm.DB, jobs []*hookJob) (owned, replayed []*hookJob, err error) {
	if len(jobs) == 0 {
		return nil, nil, nil
	}
	ids := make([]uint64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.dl.ID
	}
	type lease struct {
		ID         uint64
		LeaseOwner string
		Replays    int
	}
	leases := make(map[uint64]lease, len(jobs))
	for chunk := range inChunks(ids, 500) {
		var some []lease
		if err := forUpdate(tx.Model(&Delivery{})).Select("id", "lease_owner", "replays").Where("id IN ?", chunk).Order("id").Find(&some).Error; err != nil {
			return nil, nil, err
		}
		for _, l := range some {
			leases[l.ID] = l
		}
	}
	for _, j := range jobs {
		l, ok := leases[j.dl.ID]
		if !ok || l.LeaseOwner != j.token {
			continue
		}
		if l.Replays == j.dl.Replays {
			owned = append(owned, j)
		} else {
			replayed = append(replayed, j)
		}
		delete(leases, j.dl.ID) // one outcome per delivery
	}
	return owned, replayed, nil
}

// releaseReplayed gives back the leases of deliveries replayed during their
// attempt, so the replay goes out now rather than when the lease expires.
// The caller holds the rows.
func releaseReplayed(tx *gorm.DB, jobs []*hookJob) error {
	if len(jobs) == 0 {
		return nil
	}
	ids := make([]uint64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.dl.ID
	}
	return tx.Model(&Delivery{}).Where("id IN ?", ids).UpdateColumns(map[string]any{"lease_owner": "", "lease_until": 0}).Error
}

// deliveryOutcome is what an attempt's result changes in its delivery.
type deliveryOutcome struct {
	id        uint64
	kind      int
	status    string
	dueAt     int64 // the next attempt, when kind is outcomeFailed
	attempts  int
	code      int
	errText   string
	latencyMs int64
}

// writeOutcomes records outcomes in one UPDATE, a CASE per column. The
// caller holds the deliveries' rows.
func writeOutcomes(tx *gorm.DB, rows []deliveryOutcome, now time.Time) error {
	if len(rows) == 0 {
		return nil
	}
	ids := make([]uint64, len(rows))
	cases := func(col string, val func(o deliveryOutcome) (any, bool)) clause.Expr {
		sql := strings.Builder{}
		var args []any
		sql.WriteString("CASE id")
		for _, o := range rows {
			if v, ok := val(o); ok {
				sql.WriteString(" WHEN ? THEN ?")
				args = append(args, o.id, v)
			}
		}
		if len(args) == 0 {
			return gorm.Expr(col)
		}
		sql.WriteString(" ELSE " + col + " END")
		return gorm.Expr(sql.String(), args...)
	}
	for i, o := range rows {
		ids[i] = o.id
	}
	return tx.Model(&Delivery{}).Where("id IN ?", ids).Updates(map[string]any{
		"status":           cases("status", func(o deliveryOutcome) (any, bool) { return o.status, true }),
		"due_at":           cases("due_at", func(o deliveryOutcome) (any, bool) { return o.dueAt, o.kind == outcomeFailed }),
		"attempts":         cases("attempts", func(o deliveryOutcome) (any, bool) { return o.attempts, true }),
		"last_status_code": cases("last_status_code", func(o deliveryOutcome) (any, bool) { return o.code, true }),
		"last_error":       cases("last_error", func(o deliveryOutcome) (any, bool) { return o.errText, true }),
		"last_latency_ms":  cases("last_latency_ms", func(o deliveryOutcome) (any, bool) { return o.latencyMs, true }),
		"lease_owner":      "",
		"lease_until":      0,
		"updated_at":       now,
	}).Error
}

// outcome is what an attempt's result changes in its delivery.
func (d *Dispatcher) outcome(j *hookJob, now time.Time) deliveryOutcome {
	res := j.res
	o := deliveryOutcome{id: j.dl.ID, attempts: j.dl.Attempts + 1, code: res.code, errText: res.errorText(), latencyMs: res.latency.Milliseconds()}
	switch {
	case j.gone:
		o.kind, o.status, o.errText = outcomeDead, DeliveryDead, "not sent: "+errEventGone.Error()+" or its rule deleted"
	case res.ok():
		o.kind, o.status = outcomeSucceeded, DeliverySucceeded
	case res.code == http.StatusGone:
		o.kind, o.status, o.errText = outcomeDisabled, DeliveryDead, "the receiver answered 410 Gone: the action is disabled"
	case o.attempts >= d.opts.MaxAttempts:
		o.kind, o.status = outcomeDead, DeliveryDead
	default:
		o.kind, o.status = outcomeFailed, DeliveryRetrying
		o.dueAt = now.Add(d.backoff(o.attempts, res.retryAfter)).UnixMilli()
	}
	return o
}

// release gives deliveries back without an attempt (shutdown, store fault,
// a disabled action), so that they are claimed again.
func (d *Dispatcher) release(jobs []*hookJob) {
	if len(jobs) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	byToken := map[string][]uint64{}
	for _, j := range jobs {
		byToken[j.token] = append(byToken[j.token], j.dl.ID)
	}
	for token, ids := range byToken {
		for chunk := range inChunks(ids, 500) {
			// A failure leaves the lease to expire: the deliveries are claimed again then.
			d.db.WithContext(ctx).Model(&Delivery{}).Where("id IN ? AND lease_owner = ?", chunk, token).
				UpdateColumns(map[string]any{"lease_owner": "", "lease_until": 0})
		}
	}
}
