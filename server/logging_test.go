package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"github.com/crumbs-dev/crumbs/server/metrics"
)

// logLine is one JSON log record, as far as these tests read it.
type logLine struct {
	Msg   string
	Count int
	N     int
}

func logLines(t *testing.T, s string) []logLine {
	t.Helper()
	var out []logLine
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, l)
	}
	return out
}

// faults counts the store-fault lines and the faults they stand for.
func faults(lines []logLine) (n, sum int) {
	for _, l := range lines {
		if l.Msg == models.MsgStoreUnavailable {
			n++
			sum += max(l.Count, 1)
		}
	}
	return n, sum
}

// TestStoreFaultLogThrottle sends a burst of store faults, from many
// goroutines, mixed with other records: the first fault is written at once,
// the rest are held and written as one line with their count, and nothing
// else is held back.
func TestStoreFaultLogThrottle(t *testing.T) {
	var buf lockedBuffer
	h := throttleStoreFaults(slog.NewJSONHandler(&buf, nil), time.Hour)
	log := slog.New(h).With("component", "test")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 125 {
				log.Error(models.MsgStoreUnavailable, "n", g*125+i)
			}
			log.Info("something else", "n", g)
		})
	}
	wg.Wait()
	lines := logLines(t, buf.String())
	if n, sum := faults(lines); n != 1 || sum != 1 {
		t.Fatalf("%d fault lines standing for %d faults after a burst of 1000 within the interval, want the first one only", n, sum)
	}
	if others := len(lines) - 1; others != 8 {
		t.Fatalf("%d other lines, want all 8", others)
	}

	h.Flush()
	lines = logLines(t, buf.String())
	last := lines[len(lines)-1]
	if n, sum := faults(lines); n != 2 || sum != 1000 || last.Msg != models.MsgStoreUnavailable || last.Count != 999 {
		t.Fatalf("after the flush: %d fault lines for %d faults, last %+v; want a second line with count 999", n, sum, last)
	}
	h.Flush() // nothing held: writes nothing
	log.Error(models.MsgStoreUnavailable, "n", 1000)
	if n, _ := faults(logLines(t, buf.String())); n != 2 {
		t.Fatalf("%d fault lines: a fault within the interval after a flush must be held", n)
	}
	h.Flush()
	if n, sum := faults(logLines(t, buf.String())); n != 3 || sum != 1001 {
		t.Fatalf("%d fault lines for %d faults, want 3 for 1001", n, sum)
	}
}

// TestStoreFaultLogFlushesItself: the held line is written when the interval
// is up, without another fault or a flush.
func TestStoreFaultLogFlushesItself(t *testing.T) {
	var buf lockedBuffer
	log := slog.New(throttleStoreFaults(slog.NewJSONHandler(&buf, nil), 20*time.Millisecond))
	for range 6 {
		log.Error(models.MsgStoreUnavailable)
	}
	for end := time.Now().Add(hangGuard); ; time.Sleep(5 * time.Millisecond) {
		if n, sum := faults(logLines(t, buf.String())); n == 2 && sum == 6 {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("log %s: want the 5 held faults written as one line with count 5", buf.String())
		}
	}
}

// TestStoppedStoreLogsOncePerSecond fires a burst of triggers at a server
// whose database is stopped, through the server's own logger: instead of a
// line per request, at most one store-fault line per second is written, and
// the lines account for every request.
func TestStoppedStoreLogsOncePerSecond(t *testing.T) {
	proxy, dsn := modelstest.ProxiedMySQL(t)
	db, err := models.Open(context.Background(), dsn, models.DBOptions{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	var logged lockedBuffer
	a := newAPI(t, db)
	cfg, err := parseConfig(nil, func(k string) string {
		return map[string]string{"CRUMBS_ENV": "production", "CRUMBS_JWT_SECRET": testJWTSecret, "CRUMBS_RATE_IP": "0", "CRUMBS_RATE_DEVICE": "0"}[k]
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	log := cfg.logger(&logged)
	m := metrics.New()
	resolver, closeResolver, err := newResolver(cfg, db, log, m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeResolver)
	httpSrv := httptest.NewServer(routes(cfg, log, resolver, m))
	t.Cleanup(httpSrv.Close)
	srv := httpSrv.URL
	appID, _ := a.createApp("Log burst")
	ack(t, func() httpAnswer { return triggerOver(srv, appID, "burst-acked") })

	proxy.Stop()
	const burst = 200
	start := time.Now()
	answers := make(chan httpAnswer, burst)
	for i := range burst {
		go func() { answers <- triggerOver(srv, appID, fmt.Sprintf("burst-%d", i)) }()
	}
	for _, ans := range collectAnswers(t, answers, burst, proxy.Start) {
		wantUnavailable(t, ans, "the store is unavailable; retry later")
	}
	elapsed := time.Since(start)
	flushLog(log)
	n, sum := faults(logLines(t, logged.String()))
	// One line at once, then at most one per second, plus the flush.
	if limit := 2 + int(elapsed/time.Second); n > limit {
		t.Fatalf("%d store-fault lines for %d failed requests in %s, want at most %d", n, burst, elapsed, limit)
	}
	if sum < burst {
		t.Fatalf("the %d fault lines stand for %d faults, want at least one per request (%d)", n, sum, burst)
	}
	proxy.Start()
}

// mutableError is an error its owner goes on to change, as the GraphQL
// error presenter does with the error it has just logged.
type mutableError struct{ msg string }

func (e *mutableError) Error() string { return e.msg }

// TestHeldStoreFaultKeepsItsValues: a held fault is written as it was when
// logged, not as its values read by the time the line is written (reading
// them then was a data race with the request that owns them).
func TestHeldStoreFaultKeepsItsValues(t *testing.T) {
	var buf lockedBuffer
	h := throttleStoreFaults(slog.NewJSONHandler(&buf, nil), time.Hour)
	log := slog.New(h)
	log.Error(models.MsgStoreUnavailable, "err", errors.New("first"))
	err := &mutableError{msg: "connection refused"}
	log.Error(models.MsgStoreUnavailable, "err", err, slog.Group("req", "err", err))
	err.msg = "the store is unavailable; retry later"
	h.Flush()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	var last struct {
		Err   string
		Req   struct{ Err string }
		Count int
	}
	if len(lines) != 2 || json.Unmarshal([]byte(lines[1]), &last) != nil {
		t.Fatalf("log %q: want two lines", buf.String())
	}
	if last.Err != "connection refused" || last.Req.Err != "connection refused" || last.Count != 1 {
		t.Fatalf("held line %s: want the error as logged", lines[1])
	}
}
