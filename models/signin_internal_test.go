package models

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// rateLimited returns the wait of a RATE_LIMITED refusal, or 0 for none.
func rateLimited(t *testing.T, err error) time.Duration {
	t.Helper()
	if err == nil {
		return 0
	}
	var limited *RateLimitError
	if !errors.As(err, &limited) || !errors.Is(err, ErrRateLimited) {
		t.Fatalf("not a rate limit: %v", err)
	}
	return limited.RetryAfter
}

func TestSignInBackoffGrows(t *testing.T) {
	l := NewSignInLimits()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	fail := func(account string) error {
		_, err := l.begin("", account, now)
		return err
	}
	// Five failures cost nothing; the sixth waits 1 s after the fifth.
	for i := range 5 {
		if err := fail("ada@example.com"); err != nil {
			t.Fatalf("failure %d refused: %v", i+1, err)
		}
	}
	if wait := rateLimited(t, fail("ADA@example.com ")); wait != time.Second {
		t.Fatalf("sixth attempt (same email, other case): wait %v, want 1s", wait)
	}
	// Each further failure doubles the wait: 1, 2, 4, 8 s ...
	for _, want := range []time.Duration{2, 4, 8, 16} {
		now = now.Add(want / 2 * time.Second)
		if err := fail("ada@example.com"); err != nil {
			t.Fatalf("attempt after the wait refused: %v", err)
		}
		if wait := rateLimited(t, fail("ada@example.com")); wait != want*time.Second {
			t.Fatalf("wait %v, want %v", wait, want*time.Second)
		}
	}
	// ... up to 15 minutes.
	for range 20 {
		now = now.Add(time.Hour - time.Second)
		fail("ada@example.com")
	}
	if wait := rateLimited(t, fail("ada@example.com")); wait != 15*time.Minute {
		t.Fatalf("longest wait %v", wait)
	}
	// An email that has no account is throttled the same way.
	for range 5 {
		fail("nobody@example.com")
	}
	if rateLimited(t, fail("nobody@example.com")) != time.Second {
		t.Fatal("an unknown email was not throttled like a known one")
	}
	// An hour without failures forgets them.
	now = now.Add(time.Hour + 16*time.Minute)
	if err := fail("ada@example.com"); err != nil {
		t.Fatalf("failures were not forgotten: %v", err)
	}
}

func TestSignInSuccessTakesTheAttemptBack(t *testing.T) {
	l := NewSignInLimits()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for range 4 {
		l.begin("198.51.100.7", "ada@example.com", now)
	}
	a, err := l.begin("198.51.100.7", "ada@example.com", now)
	if err != nil {
		t.Fatal(err)
	}
	a.succeeded()
	// The account starts over; the IP keeps its 4 failures.
	for i := range 5 {
		if _, err := l.begin("203.0.113.1", "ada@example.com", now); err != nil {
			t.Fatalf("account not reset after success, attempt %d: %v", i+1, err)
		}
	}
	for i := range 16 {
		if _, err := l.begin("198.51.100.7", fmt.Sprintf("u%d@example.com", i), now); err != nil {
			t.Fatalf("IP refused after %d failures: %v", 4+i, err)
		}
	}
	if rateLimited(t, func() error { _, err := l.begin("198.51.100.7", "fresh@example.com", now); return err }()) == 0 {
		t.Fatal("the IP was not limited after 20 failures")
	}
}

func TestSignInIPv6SharesItsSlash64(t *testing.T) {
	l := NewSignInLimits()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i := range 20 {
		if _, err := l.begin(fmt.Sprintf("2001:db8:1:2::%x", i+1), "", now); err != nil {
			t.Fatal(err)
		}
	}
	if rateLimited(t, func() error { _, err := l.begin("2001:db8:1:2:ffff::1", "", now); return err }()) == 0 {
		t.Fatal("addresses of one /64 were counted apart")
	}
	if _, err := l.begin("2001:db8:1:3::1", "", now); err != nil {
		t.Fatalf("another /64 was limited: %v", err)
	}
}

// Concurrent guesses all count: none can slip in between a check and its
// failure.
func TestSignInConcurrentAttemptsCount(t *testing.T) {
	l := NewSignInLimits()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	results := make(chan error, 50)
	for range 50 {
		go func() {
			_, err := l.begin("", "ada@example.com", now)
			results <- err
		}()
	}
	allowed := 0
	for range 50 {
		if <-results == nil {
			allowed++
		}
	}
	if allowed != 5 {
		t.Fatalf("%d of 50 concurrent attempts went through, want 5", allowed)
	}
}

func TestPasswordRules(t *testing.T) {
	cases := []struct{ password, problem string }{
		{"correct horse battery", ""},
		{"  ten chars?  ", ""},
		{"Ünïcödé pässwörd", ""},
		{strings.Repeat(" ", 10), "only spaces"},
		{"\t \n \t \n \t \n", "control"},
		{"short", "at least 10"},
		{"   short    ", "at least 10"},
		{strings.Repeat("a", 12), "repeated"},
		{strings.Repeat("é", 12), "repeated"},
		{"password\x00hidden", "control"},
		{"ada@example.com", "email"},
		{strings.Repeat("ab", 37), "72 bytes"},
		{"valid-ish \xff\xfe password", "UTF-8"},
	}
	for _, c := range cases {
		err := validatePassword("password", c.password, "Ada@Example.com")
		var invalid *InvalidError
		switch {
		case c.problem == "" && err != nil:
			t.Errorf("%q refused: %v", c.password, err)
		case c.problem != "" && (!errors.As(err, &invalid) || invalid.Field != "password" || !strings.Contains(err.Error(), c.problem)):
			t.Errorf("%q: got %v, want a BAD_USER_INPUT on password about %q", c.password, err, c.problem)
		}
	}
}

// A sign-in with an unknown email compares against a hash of the same cost
// as a real user's, so both take the same time.
func TestUnknownEmailCostsOneComparison(t *testing.T) {
	old := PasswordCost
	PasswordCost = bcrypt.MinCost + 1
	defer func() { PasswordCost = old }()
	real, err := bcrypt.GenerateFromPassword([]byte("correct horse battery"), PasswordCost)
	if err != nil {
		t.Fatal(err)
	}
	dummy, _ := bcrypt.Cost(dummyHash())
	if cost, _ := bcrypt.Cost(real); cost != dummy {
		t.Fatalf("dummy hash cost %d, a user's %d", dummy, cost)
	}
}
