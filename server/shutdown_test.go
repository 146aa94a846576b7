package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/crumbs-dev/crumbs/models"
	"github.com/crumbs-dev/crumbs/models/modelstest"
	"gorm.io/gorm"
)

// lockedBuffer collects a child process's output for the test to read.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// serverProcess is the real server binary running as a child process.
type serverProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	base   string
	stderr *lockedBuffer
	exited chan error
}

// serverBinary is the server built once per test binary; TestMain removes
// its directory.
var serverBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func buildServer(t *testing.T) string {
	t.Helper()
	b := &serverBinary
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "crumbs-server-test-"); b.err != nil {
			return
		}
		b.path = filepath.Join(b.dir, "crumbs")
		if out, err := exec.Command("go", "build", "-o", b.path, ".").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build ./server: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.path
}

// startServer runs the server binary with env (and nothing else of the
// test's environment but PATH and HOME).
func startServer(t *testing.T, env map[string]string) *serverProcess {
	t.Helper()
	cmd := exec.Command(buildServer(t))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, stderr := &lockedBuffer{}, &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{t: t, cmd: cmd, stderr: stderr, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill() // ours, by its pid; a no-op once it has exited
		<-p.exited
		if t.Failed() {
			t.Logf("server log:\n%s", stderr.String())
		}
	})
	listening := regexp.MustCompile(`crumbs listening on (http://\S+)`)
	for end := time.Now().Add(hangGuard); ; time.Sleep(10 * time.Millisecond) {
		if m := listening.FindStringSubmatch(stdout.String()); m != nil {
			p.base = m[1]
			return p
		}
		select {
		case err := <-p.exited:
			t.Fatalf("server exited before listening: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("server not listening after %s:\n%s", hangGuard, stderr.String())
		}
	}
}

// signal sends sig to the server process.
func (p *serverProcess) signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// waitExit waits for the process to end; if it has not within hangGuard,
// it lets the store recover (mend) and fails the test.
func (p *serverProcess) waitExit(mend func()) error {
	p.t.Helper()
	select {
	case err := <-p.exited:
		p.exited <- err // for the cleanup
		return err
	case <-time.After(hangGuard):
		mend()
		p.t.Fatalf("the server still runs %s after SIGTERM", hangGuard)
		return nil
	}
}

// waitLog waits until the server's log contains s.
func (p *serverProcess) waitLog(s string, mend func()) {
	p.t.Helper()
	for end := time.Now().Add(hangGuard); !strings.Contains(p.stderr.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(end) {
			mend()
			p.t.Fatalf("the server never logged %q", s)
		}
	}
}

// frozenServerEnv runs the server on the proxied store with a database
// timeout far beyond the test, so that only shutdown can end a request
// stuck on the frozen store.
func frozenServerEnv(dsn, shutdownTimeout string) map[string]string {
	return map[string]string{
		"CRUMBS_ADDR":             "127.0.0.1:0",
		"CRUMBS_DATABASE_URL":     dsn,
		"CRUMBS_ENV":              "production",
		"CRUMBS_JWT_SECRET":       testJWTSecret,
		"CRUMBS_DB_TIMEOUT":       "10m",
		"CRUMBS_CACHE_TTL":        "10m", // the warm app's triggers reach the writer without a lookup
		"CRUMBS_SHUTDOWN_TIMEOUT": shutdownTimeout,
		"CRUMBS_LOG_FORMAT":       "json",
	}
}

// newApps makes n apps of one owner directly in the store.
func newApps(t *testing.T, db *gorm.DB, n int) []string {
	t.Helper()
	ctx := context.Background()
	email := fmt.Sprintf("shutdown%d-%d@example.com", time.Now().UnixNano(), userSeq.Add(1))
	u, err := models.CreateUser(ctx, db, email, "Shutdown", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, n)
	for i := range ids {
		name := fmt.Sprintf("Shutdown %d", i)
		app, _, err := models.CreateApp(ctx, db, models.Viewer{UserID: u.ID}, models.AppInput{Name: &name})
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = app.PublicID
	}
	return ids
}

// TestSIGTERMWithFrozenStore runs the real server binary on a store that
// freezes under it, with requests in flight both in the group-commit writer
// and in reads. SIGTERM ends the process within CRUMBS_SHUTDOWN_TIMEOUT
// although the database timeout is ten minutes, every request in flight is
// answered UNAVAILABLE (503, Retry-After) rather than cut off, and every
// trigger acknowledged before is in the store afterwards; retried, the
// others are stored exactly once.
func TestSIGTERMWithFrozenStore(t *testing.T) {
	proxy, dsn := modelstest.ProxiedMySQL(t)
	direct := modelstest.MySQL(t)
	apps := newApps(t, direct, 4)
	warm, cold := apps[0], apps[1:]
	srv := startServer(t, frozenServerEnv(dsn, "8s"))

	acked := messageIDs("sigterm-acked", 4)
	for _, id := range acked {
		wantAccepted(t, triggerOver(srv.base, warm, id))
	}

	proxy.Freeze()
	answers := make(chan httpAnswer, len(apps))
	go func() { answers <- triggerOver(srv.base, warm, "sigterm-writer") }()
	proxy.WaitHeld(1, hangGuard) // its group commit waits on the store
	for i, app := range cold {
		// A first trigger of an app reads the app and its definitions.
		go func() { answers <- triggerOver(srv.base, app, fmt.Sprintf("sigterm-read-%d", i)) }()
	}
	proxy.WaitHeld(len(apps), hangGuard)

	srv.signal(syscall.SIGTERM)
	if err := srv.waitExit(proxy.Thaw); err != nil {
		proxy.Thaw()
		t.Fatalf("server exit: %v, want status 0", err)
	}
	for _, a := range collectAnswers(t, answers, len(apps), proxy.Thaw) {
		want := "the store is unavailable; retry later"
		if a.what == "trigger sigterm-writer" {
			want = "the server is shutting down"
		}
		wantUnavailable(t, a, want)
	}
	log := srv.stderr.String()
	if !strings.Contains(log, `"msg":"shutting down"`) || !strings.Contains(log, "answering the requests still in flight UNAVAILABLE") {
		t.Fatalf("log %s: want the shutdown and its cut-off announced", log)
	}

	proxy.Thaw()
	_, base := faultAPI(t, direct, 10*time.Second)
	wantStoredOnce(t, direct, base, warm, append(acked, "sigterm-writer"))
	for i, app := range cold {
		wantStoredOnce(t, direct, base, app, []string{fmt.Sprintf("sigterm-read-%d", i)})
	}
}

// TestSecondSIGTERMEndsAtOnce: with a shutdown timeout of ten minutes and a
// request stuck on a frozen store, the first SIGTERM starts the graceful
// shutdown and a second one ends the process.
func TestSecondSIGTERMEndsAtOnce(t *testing.T) {
	proxy, dsn := modelstest.ProxiedMySQL(t)
	direct := modelstest.MySQL(t)
	app := newApps(t, direct, 1)[0]
	srv := startServer(t, frozenServerEnv(dsn, "10m"))
	wantAccepted(t, triggerOver(srv.base, app, "second-acked"))

	proxy.Freeze()
	go triggerOver(srv.base, app, "second-stuck")
	proxy.WaitHeld(1, hangGuard)
	srv.signal(syscall.SIGTERM)
	srv.waitLog(`"msg":"shutting down"`, proxy.Thaw)

	// The first signal's handler may not have finished when the log line
	// appears; the process cannot end on its own for ten minutes, so repeat
	// the second signal until it ends.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
				srv.cmd.Process.Signal(syscall.SIGTERM)
			}
		}
	}()
	err := srv.waitExit(proxy.Thaw)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || !exit.Sys().(syscall.WaitStatus).Signaled() || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGTERM {
		proxy.Thaw()
		t.Fatalf("server exit: %v, want ended by the second SIGTERM", err)
	}

	proxy.Thaw()
	_, base := faultAPI(t, direct, 10*time.Second)
	wantStoredOnce(t, direct, base, app, []string{"second-acked", "second-stuck"})
}

// TestSIGTERMLetsInFlightFinish: a trigger whose group commit waits on a
// slow store when SIGTERM arrives is still acknowledged, and stored, once
// the store answers within the shutdown timeout; the process then exits 0.
func TestSIGTERMLetsInFlightFinish(t *testing.T) {
	proxy, dsn := modelstest.ProxiedMySQL(t)
	direct := modelstest.MySQL(t)
	app := newApps(t, direct, 1)[0]
	srv := startServer(t, frozenServerEnv(dsn, "20s"))
	wantAccepted(t, triggerOver(srv.base, app, "inflight-warm"))

	proxy.Freeze()
	answer := make(chan httpAnswer, 1)
	go func() { answer <- triggerOver(srv.base, app, "inflight-slow") }()
	proxy.WaitHeld(1, hangGuard)
	srv.signal(syscall.SIGTERM)
	srv.waitLog(`"msg":"shutting down"`, proxy.Thaw)
	time.Sleep(500 * time.Millisecond) // the store stays slow past the signal
	proxy.Thaw()
	wantAccepted(t, collectAnswers(t, answer, 1, proxy.Thaw)[0])
	if err := srv.waitExit(proxy.Thaw); err != nil {
		t.Fatalf("server exit: %v, want status 0", err)
	}
	if log := srv.stderr.String(); strings.Contains(log, "UNAVAILABLE") {
		t.Errorf("a request was cut off although the store answered in time:\n%s", log)
	}
	_, base := faultAPI(t, direct, 10*time.Second)
	wantStoredOnce(t, direct, base, app, []string{"inflight-warm", "inflight-slow"})
}
