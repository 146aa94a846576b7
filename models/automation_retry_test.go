package models_test

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
)

// retrySchedule is an account of the retry schedule, as the README states
// it or as the code computes it (the jittered bounds to the minute).
type retrySchedule struct {
	backoff, maxWait, span, shortest, longest time.Duration
	attempts                                  int
	jitter                                    float64
}

func (s retrySchedule) String() string {
	return fmt.Sprintf("%d attempts, backoff %v doubling up to %v ±%g%%: %v (%v to %v)",
		s.attempts, s.backoff, s.maxWait, s.jitter*100, s.span, s.shortest, s.longest)
}

// NominalRetrySpan sums the waits between the attempts: Backoff doubled
// per failure, capped at 8 hours, with no wait after the last attempt.
func TestNominalRetrySpan(t *testing.T) {
	for _, c := range []struct {
		opts models.DispatcherOptions
		want time.Duration
	}{
		{models.DispatcherOptions{Backoff: time.Second, MaxAttempts: 1}, 0},
		{models.DispatcherOptions{Backoff: time.Second, MaxAttempts: 4}, 7 * time.Second},
		{models.DispatcherOptions{Backoff: 5 * time.Hour, MaxAttempts: 3}, 13 * time.Hour},
		{models.DispatcherOptions{Backoff: 1000 * time.Hour, MaxAttempts: 3}, 16 * time.Hour},
		{models.DispatcherOptions{Backoff: time.Minute, MaxAttempts: 100}, 511*time.Minute + 90*8*time.Hour}, // 1m to 4h16m, then 8h
	} {
		if got := models.NominalRetrySpan(c.opts); got != c.want {
			t.Errorf("backoff %v, %d attempts: span %v, want %v", c.opts.Backoff, c.opts.MaxAttempts, got, c.want)
		}
	}
}

// The issue asks for retries "over about a day (at least 8 attempts)".
// The defaults give that, and the README states the schedule's figures as
// NominalRetrySpan computes them: they are read from its text here, so
// that they cannot drift from the code.
func TestDefaultRetryScheduleSpansADay(t *testing.T) {
	def := models.DispatcherOptions{}.WithDefaults()
	if def.MaxAttempts < 8 {
		t.Errorf("%d attempts by default, want at least 8", def.MaxAttempts)
	}
	span := models.NominalRetrySpan(models.DispatcherOptions{})
	shortest := time.Duration(float64(span) * (1 - models.RetryJitter))
	longest := time.Duration(float64(span) * (1 + models.RetryJitter))
	if span < 21*time.Hour || span > 27*time.Hour || shortest > 24*time.Hour || longest < 24*time.Hour {
		t.Errorf("the default retries span %v (%v to %v with the jitter), not about a day", span, shortest, longest)
	}
	maxWait := models.NominalRetrySpan(models.DispatcherOptions{Backoff: 1000 * time.Hour, MaxAttempts: 2})
	t.Logf("defaults: %d attempts, backoff %v doubling up to %v: %v (%v to %v)", def.MaxAttempts, def.Backoff, maxWait, span, shortest, longest)

	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := strings.Join(strings.Fields(string(b)), " ") // paragraphs wrap anywhere
	find := func(where string, re *regexp.Regexp) []string {
		t.Helper()
		m := re.FindStringSubmatch(readme)
		if m == nil {
			t.Fatalf("the README's %s does not match %s", where, re)
		}
		return m[1:]
	}
	duration := func(s string) time.Duration {
		t.Helper()
		d, err := time.ParseDuration(strings.ReplaceAll(s, " ", ""))
		if err != nil {
			t.Fatalf("the README says %q: %v", s, err)
		}
		return d
	}
	number := func(s string) float64 {
		t.Helper()
		n, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatalf("the README says %q: %v", s, err)
		}
		return n
	}
	want := retrySchedule{def.Backoff, maxWait, span, shortest.Truncate(time.Minute), longest.Truncate(time.Minute), def.MaxAttempts, models.RetryJitter}
	check := func(where string, got retrySchedule) {
		t.Helper()
		if got != want {
			t.Errorf("the README's %s states %v; the code computes %v", where, got, want)
		}
	}

	// The configuration table's rows.
	backoffRow := find("CRUMBS_WEBHOOK_BACKOFF row", regexp.MustCompile(
		"\\| `CRUMBS_WEBHOOK_BACKOFF` \\| `-webhook-backoff` \\| `([^`]+)` \\| [^|]*? doubled after each further failure up to (\\S+), each wait ±(\\d+)% \\(jitter\\)"))
	attemptsRow := find("CRUMBS_WEBHOOK_ATTEMPTS row", regexp.MustCompile(
		"\\| `CRUMBS_WEBHOOK_ATTEMPTS` \\| `-webhook-attempts` \\| `(\\d+)` \\| [^|]*? the retries span (\\S+) from the first failed attempt to the last, (\\S+) to (\\S+) with the jitter"))
	check("configuration table", retrySchedule{backoff: duration(backoffRow[0]), maxWait: duration(backoffRow[1]), jitter: number(backoffRow[2]) / 100,
		attempts: int(number(attemptsRow[0])), span: duration(attemptsRow[1]), shortest: duration(attemptsRow[2]), longest: duration(attemptsRow[3])})

	// The Automations section's retry guarantee.
	retries := find("Automations section", regexp.MustCompile(
		"\\*Retries\\.\\*.*? `CRUMBS_WEBHOOK_BACKOFF` \\(([\\d ]+s)\\) doubled per failure up to (\\d+) hours, each wait ±(\\d+)% \\(jitter\\).*? `CRUMBS_WEBHOOK_ATTEMPTS` \\((\\d+): retries over (\\S+), (\\S+) to (\\S+) with the jitter\\)"))
	check("Automations section", retrySchedule{backoff: duration(retries[0]), maxWait: duration(retries[1] + "h"), jitter: number(retries[2]) / 100,
		attempts: int(number(retries[3])), span: duration(retries[4]), shortest: duration(retries[5]), longest: duration(retries[6])})
}
