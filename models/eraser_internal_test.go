package models

import (
	"testing"
	"time"
)

// A failed erasure waits half the lease after its first failure, twice as
// long after each further one, at most an hour.
func TestEraseRetryDelay(t *testing.T) {
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{{1, 30 * time.Second}, {2, time.Minute}, {3, 2 * time.Minute}, {7, 32 * time.Minute}, {8, time.Hour}, {1000, time.Hour}} {
		if got := eraseRetryDelay(c.failures, time.Minute); got != c.want {
			t.Errorf("after %d failures: %v, want %v", c.failures, got, c.want)
		}
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(ago time.Duration) *time.Time { t := now.Add(-ago); return &t }
	for _, c := range []struct {
		job  EraseJob
		want bool
	}{
		{EraseJob{}, true},
		{EraseJob{Failures: 3, LastFailureAt: at(time.Minute)}, false},
		{EraseJob{Failures: 3, LastFailureAt: at(2 * time.Minute)}, true},
		{EraseJob{Failures: 20, LastFailureAt: at(59 * time.Minute)}, false},
		{EraseJob{Failures: 20, LastFailureAt: at(time.Hour)}, true},
	} {
		if got := c.job.eraseDue(now, time.Minute); got != c.want {
			t.Errorf("%d failures, the last %v ago: due %v, want %v", c.job.Failures, now.Sub(*c.job.LastFailureAt), got, c.want)
		}
	}
}
