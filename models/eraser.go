package models

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"gorm.io/gorm"
)

// Erasures outlive the requests that ask for them. An Eraser (one per
// replica) runs each erasure it starts in a goroutine of its own, under its
// own context and a lease in job_leases renewed after every transaction,
// and answers the request when the erasure is done or after Wait,
// whichever comes first, with the counts so far: a caller that gives up or
// a write timeout that ends the answer does not stop it. Every replica
// looks for erasures left pending (their replica died, or the store failed
// them) every half lease, and resumes those whose lease lapsed.

// EraserOptions tune an Eraser.
type EraserOptions struct {
	// Wait is how long a request waits for its erasure before it is
	// answered with the counts so far (default 20s); negative waits until
	// the erasure is done.
	Wait time.Duration
	// LeaseTTL is how long a replica holds an erasure without renewing it
	// (default 1m): after a crash, the erasure resumes this long after its
	// last transaction.
	LeaseTTL time.Duration
	// Owner names this replica in the leases (default a random id).
	Owner string
	Log   *slog.Logger
}

// Eraser runs erasures detached from the requests that ask for them.
type Eraser struct {
	db      *gorm.DB
	opts    EraserOptions
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	closing sync.Once

	mu      sync.Mutex
	running map[uint64]*eraseRun
}

// eraseRun is one erasure running on this replica.
type eraseRun struct {
	done chan struct{}
	err  error // set before done closes
}

// NewEraser returns an Eraser over db and starts looking for pending
// erasures to resume. Close stops it.
func NewEraser(db *gorm.DB, opts EraserOptions) *Eraser {
	if opts.Wait == 0 {
		opts.Wait = 20 * time.Second
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = time.Minute
	}
	if opts.Owner == "" {
		opts.Owner = randomToken(12)
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	e := &Eraser{db: db, opts: opts, running: map[uint64]*eraseRun{}}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.wg.Go(e.resumeLoop)
	return e
}

// Close stops the erasures running here between two statements and
// releases their leases, so that the next replica to look (or this one,
// restarted) resumes them at once. It waits for them to stop.
func (e *Eraser) Close() {
	// Under mu, so that no erasure starts (wg.Go) once Close waits.
	e.mu.Lock()
	e.closing.Do(e.cancel)
	e.mu.Unlock()
	e.wg.Wait()
}

// EraseLead erases the lead with this email as EraseLead does, detached
// from ctx, and answers when done or after Wait.
func (e *Eraser) EraseLead(ctx context.Context, v Viewer, appPublicID, email string) (*EraseResult, error) {
	job, err := startEraseLead(context.WithoutCancel(ctx), e.db, v, appPublicID, email)
	return e.follow(ctx, job, err)
}

// EraseDevice erases the device as EraseDevice does, detached from ctx,
// and answers when done or after Wait.
func (e *Eraser) EraseDevice(ctx context.Context, v Viewer, appPublicID, deviceID string) (*EraseResult, error) {
	job, err := startEraseDevice(context.WithoutCancel(ctx), e.db, v, appPublicID, deviceID)
	return e.follow(ctx, job, err)
}

// EraseBefore erases the app's events before before as EraseBefore does,
// detached from ctx, and answers when done or after Wait.
func (e *Eraser) EraseBefore(ctx context.Context, v Viewer, appPublicID string, before time.Time) (*EraseResult, error) {
	job, err := startEraseBefore(context.WithoutCancel(ctx), e.db, v, appPublicID, before)
	return e.follow(ctx, job, err)
}

// The Eraser's methods store the erasure detached from ctx too (each
// statement keeps its deadline): a caller that hangs up as soon as it has
// asked still has its erasure.

// follow starts the job here unless it runs elsewhere, and waits for it
// until Wait has passed or ctx ends. A run that failed while the caller
// waited answers its error; the job stays pending and is resumed.
func (e *Eraser) follow(ctx context.Context, job *EraseJob, err error) (*EraseResult, error) {
	if err != nil || job == nil {
		return &EraseResult{Done: true}, err
	}
	if job.DoneAt != nil {
		return job.result(), nil
	}
	run, err := e.start(job)
	if err != nil {
		return nil, err
	}
	var timeout <-chan time.Time
	if e.opts.Wait > 0 {
		t := time.NewTimer(e.opts.Wait)
		defer t.Stop()
		timeout = t.C
	}
	var done <-chan struct{}
	var poll <-chan time.Time
	if run != nil {
		done = run.done
	} else {
		// Another replica runs it: look now and then.
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case <-done:
			if run.err != nil {
				return nil, run.err
			}
			return e.status(ctx, job.ID)
		case <-poll:
			res, err := e.status(ctx, job.ID)
			if err != nil || res.Done {
				return res, err
			}
		case <-timeout:
			return e.status(ctx, job.ID)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (e *Eraser) status(ctx context.Context, id uint64) (*EraseResult, error) {
	job, err := loadEraseJob(ctx, e.db, id)
	if err != nil {
		return nil, err
	}
	return job.result(), nil
}

// start runs the job here if no other replica holds it, and returns its
// run (nil when another replica holds it). A caller who hung up meanwhile
// does not keep it from starting.
func (e *Eraser) start(job *EraseJob) (*eraseRun, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if run, ok := e.running[job.ID]; ok {
		return run, nil
	}
	if e.ctx.Err() != nil {
		return nil, newError(ErrUnavailable, "models.Eraser: shutting down")
	}
	ok, err := takeJobLease(e.ctx, e.db, job.leaseName(), e.opts.Owner, time.Now(), e.opts.LeaseTTL)
	if err != nil || !ok {
		return nil, err
	}
	run := &eraseRun{done: make(chan struct{})}
	e.running[job.ID] = run
	e.wg.Go(func() {
		defer close(run.done)
		renew := func() error {
			ok, err := takeJobLease(e.ctx, e.db, job.leaseName(), e.opts.Owner, time.Now(), e.opts.LeaseTTL)
			if err == nil && !ok {
				err = errEraseLeaseLost
			}
			return err
		}
		_, err := runEraseJob(e.ctx, e.db, job, renew)
		e.mu.Lock()
		delete(e.running, job.ID)
		e.mu.Unlock()
		switch {
		case errors.Is(err, errEraseDone):
			// Another run finished it (this one started as it ended).
			dropJobLease(e.db, job.leaseName(), e.opts.Owner)
		case errors.Is(err, errEraseLeaseLost):
			// Another replica took it over.
		case err != nil:
			releaseJobLease(e.db, job.leaseName(), e.opts.Owner, time.Now())
			// Stopped by Close, it is no failure: a waiting request is
			// answered with the counts so far.
			if e.ctx.Err() == nil {
				run.err = err
				if nerr := noteEraseFailure(e.db, job.ID, err); nerr != nil {
					e.opts.Log.Warn("counting a failed erasure", "erasure", job.ID, "err", nerr)
				}
				e.opts.Log.Warn("erasure failed part way; it is resumed later", "erasure", job.ID, "kind", job.Kind,
					"failures", job.Failures+1, "err", err)
			}
		}
	})
	return run, nil
}

var errEraseLeaseLost = newError(ErrConflict, "another replica took over the erasure")

// resumeLoop resumes pending erasures whose lease has lapsed, at start and
// every half lease.
func (e *Eraser) resumeLoop() {
	t := time.NewTicker(e.opts.LeaseTTL / 2)
	defer t.Stop()
	for {
		if err := e.resume(); err != nil && e.ctx.Err() == nil {
			e.opts.Log.Warn("looking for pending erasures failed; looking again later", "err", err)
		}
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (e *Eraser) resume() error {
	var pending []*EraseJob
	// Those of a deleted app go with its data (AppDeleter).
	deleted := e.db.Model(&App{}).Select("id").Where("deleted_at IS NOT NULL")
	if err := e.db.WithContext(e.ctx).Where("done_at IS NULL AND app_id NOT IN (?)", deleted).Order("id").Find(&pending).Error; err != nil {
		return err
	}
	now := Now()
	for _, job := range pending {
		if !job.eraseDue(now, e.opts.LeaseTTL) {
			continue // failed lately: resumed after eraseRetryDelay
		}
		if _, err := e.start(job); err != nil {
			return err
		}
	}
	return nil
}

// eraseNow runs the job in ctx until it is done; when another run holds
// it, it waits for that one. On failure the job stays pending, its lease
// released, for the next attempt to finish.
func eraseNow(ctx context.Context, db *gorm.DB, job *EraseJob, err error) (*EraseResult, error) {
	if err != nil || job == nil {
		return &EraseResult{Done: true}, err
	}
	owner, ttl := randomToken(12), time.Minute
	for job.DoneAt == nil {
		ok, err := takeJobLease(ctx, db, job.leaseName(), owner, time.Now(), ttl)
		if err != nil {
			return nil, err
		}
		if ok {
			res, err := runEraseJob(ctx, db, job, func() error {
				ok, err := takeJobLease(ctx, db, job.leaseName(), owner, time.Now(), ttl)
				if err == nil && !ok {
					err = errEraseLeaseLost
				}
				return err
			})
			switch {
			case err == nil:
				return res, nil
			case errors.Is(err, errEraseDone): // another run finished it: read it below
				dropJobLease(db, job.leaseName(), owner)
			case errors.Is(err, errEraseLeaseLost): // another run holds it: wait for it
			default:
				releaseJobLease(db, job.leaseName(), owner, time.Now())
				if ctx.Err() == nil {
					noteEraseFailure(db, job.ID, err) // the error is answered; the count is best effort
				}
				return nil, err
			}
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if job, err = loadEraseJob(ctx, db, job.ID); err != nil {
			return nil, err
		}
	}
	return job.result(), nil
}
